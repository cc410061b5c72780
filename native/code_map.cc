// The code map itself: live code by address, the graveyard of code that samples still
// on their way may need, and the lookup of an address as of a sample's event index.
// Filled by the listener (code_map_events.cc); addresses become frames in
// code_map_resolve.cc, frames name functions of code_map_functions.cc.
#include "code_map.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <string>

namespace sigprof {

CodeMap::CodeMap(v8::Isolate* isolate) : isolate_(isolate) {
  FunctionInfo unknown;
  unknown.name = "(unknown)";
  functions_.push_back(unknown);
}

CodeMap::~CodeMap() { StopListening(); }

void CodeMap::Bury(std::map<uintptr_t, CodeEntry>::iterator it, uint64_t idx) {
  if (keep_history_) {
    CodeEntry dead = std::move(it->second);
    dead.removed = idx;
    graveyard_.emplace(dead.start, std::move(dead));
  }
  live_.erase(it);
  live_gen_++;
}

void CodeMap::SetKeepHistory(bool keep) {
  std::lock_guard<std::mutex> lock(mu_);
  keep_history_ = keep;
  if (!keep) graveyard_.clear();
}

void CodeMap::PruneHistory(uint64_t min_seq) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = graveyard_.begin(); it != graveyard_.end();) {
    if (it->second.removed < min_seq) it = graveyard_.erase(it);
    else ++it;
  }
}

const CodeEntry* CodeMap::FindLiveLocked(uintptr_t addr) const {
  LookupSlot& slot = lookup_[(addr ^ (addr >> 11)) & (kLookupSlots - 1)];
  if (slot.addr == addr && slot.gen == live_gen_) return slot.entry;
  auto it = live_.upper_bound(addr);
  if (it == live_.begin()) return nullptr;
  --it;
  if (addr >= it->first + it->second.size) return nullptr;
  // Misses are not kept: code added later may cover them without burying anything.
  slot = {addr, live_gen_, &it->second};
  return &it->second;
}

const CodeEntry* CodeMap::FindLocked(uintptr_t addr, uint64_t seq) const {
  const CodeEntry* e = FindLiveLocked(addr);
  if (e && e->added < seq) return e;
  if (graveyard_.empty()) return nullptr;
  // Dead entries can overlap each other; scan the ones that could cover addr.
  uintptr_t lo = addr > max_code_size_ ? addr - max_code_size_ : 0;
  for (auto it = graveyard_.lower_bound(lo); it != graveyard_.end() && it->first <= addr; ++it) {
    const CodeEntry& d = it->second;
    if (addr < d.start + d.size && d.added < seq && seq <= d.removed) return &d;
  }
  return nullptr;
}

void CodeMap::DetectRemappedBuiltins() {
  // The embedded blob's copy is a second executable mapping of the node binary at a
  // different address for the same file offsets.
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return;
  exe[n] = 0;
  std::ifstream maps("/proc/self/maps");
  std::string line;
  struct Map { uintptr_t start, end, offset; };
  std::vector<Map> exec;
  while (std::getline(maps, line)) {
    unsigned long start, end, offset;
    char perms[8];
    int path_at = 0;
    if (sscanf(line.c_str(), "%lx-%lx %7s %lx %*s %*s %n", &start, &end, perms, &offset, &path_at) < 4) continue;
    if (perms[2] != 'x' || path_at <= 0) continue;
    if (line.compare(path_at, std::string::npos, exe) != 0) continue;
    exec.push_back({start, end, offset});
  }
  if (exec.size() < 2) return;
  // The original text is the mapping with the lowest address (the binary is not PIE-relocated
  // high); the copy is the one whose address-minus-offset differs from it.
  std::sort(exec.begin(), exec.end(), [](const Map& a, const Map& b) { return a.start < b.start; });
  const Map& base = exec.front();
  std::vector<Remap> found;
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 1; i < exec.size(); i++) {
    const Map& m = exec[i];
    if (m.start - m.offset == base.start - base.offset) continue;
    // Node 22+ reports code events inside the copy itself; translating there would be wrong.
    auto it = live_.lower_bound(m.start);
    bool events_inside = it != live_.end() && it->first < m.end;
    if (!events_inside) found.push_back({m.start, m.end, (m.start - m.offset) - (base.start - base.offset)});
  }
  remaps_ = std::move(found);
}

uintptr_t CodeMap::TranslateRemapped(uintptr_t addr) const {
  for (const Remap& r : remaps_) {
    if (addr >= r.start && addr < r.end) return addr - r.delta;
  }
  return addr;
}

CodeMap::Counts CodeMap::GetCounts() {
  std::lock_guard<std::mutex> lock(mu_);
  return {live_.size(), graveyard_.size(), functions_.size(), scripts_.size(), position_count_,
          seq_.load(std::memory_order_relaxed), handler_ns_.load(std::memory_order_relaxed)};
}

}  // namespace sigprof
