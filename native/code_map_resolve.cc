// Address to logical frames: the source position of the code offset, and the functions
// inlined there where the script's bytecode says whose a position is.
#include "code_map.h"

#include <algorithm>

namespace sigprof {

namespace {

int32_t PositionAt(const CodeEntry& e, uintptr_t offset) {
  if (!e.lines || e.lines->empty()) return -1;
  const LineTable& t = *e.lines;
  auto it = std::upper_bound(t.begin(), t.end(), static_cast<uint32_t>(offset),
                             [](uint32_t off, const std::pair<uint32_t, uint32_t>& p) { return off < p.first; });
  if (it == t.begin()) return static_cast<int32_t>(t.front().second);
  return static_cast<int32_t>(std::prev(it)->second);
}

}  // namespace

bool CodeMap::InEntryRange(const CodeEntry& e, uintptr_t addr) {
  // One range only: nothing tells the prologue from the body.
  if (!e.lines || e.lines->size() < 2 || addr < e.start) return false;
  return addr - e.start < (*e.lines)[1].first;
}

CodeMap::Frame CodeMap::FrameAt(const CodeEntry& e, uintptr_t addr) {
#if defined(__x86_64__)
  if (addr < e.start || !e.frame_windows) return Frame::kBuilt;
  return InFrameWindow(*e.frame_windows, static_cast<uint32_t>(addr - e.start)) ? Frame::kNotBuilt : Frame::kBuilt;
#else
  return InEntryRange(e, addr) ? Frame::kMaybe : Frame::kBuilt;
#endif
}

void CodeMap::ResolveLocked(uintptr_t addr, uint64_t seq, bool return_address, std::vector<ResolvedFrame>* out) {
  uintptr_t a = TranslateRemapped(addr);
  const CodeEntry* e = FindLocked(a, seq);
  bool jit_return = false;
  // A return address points after the call; the call itself is one byte earlier, and
  // in the same code unless the call was its last instruction. (No two entries valid at
  // one event index overlap, so the entry covering both is the one.)
  if (e && return_address && e->code_type != v8::JitCodeEvent::BYTE_CODE) {
    if (a - 1 < e->start) {
      const CodeEntry* before = FindLocked(a - 1, seq);
      if (before) e = before;
    }
    jit_return = true;
  }
  if (!e) {
    // Not JS code: a C++ frame between JS frames (e.g. a constructor calling back into JS)
    // is named by its symbol when it has one.
    out->push_back({SymbolFunctionLocked(a), -1});
    return;
  }
  if (e->interpreter_machinery) return;
  uintptr_t offset = a - e->start - (jit_return ? 1 : 0);
  int32_t pos = PositionAt(*e, offset);
  // Maglev code of Node 22-26 carries no source positions (V8 builds it with an empty
  // table), so the line executing is unknown: say so (line 0, encoded as a known line)
  // rather than give the function's first line, where nothing runs. docs/symbolization.md
  // Sparkplug (^) code never has a table: V8 maps its pcs to bytecode offsets through a
  // table no code event carries (docs/symbolization.md, "Sparkplug code").
  if (pos < 0 && (e->tier == '+' || e->tier == '^') && (!e->lines || e->lines->empty())) {
    pos = kUnknownLine;
    // A call out of Maglev code may come from a function Maglev inlined (it inlines by
    // default from Node 24), and with no positions nothing says whether one sits between
    // the callee and this frame: the gap is said rather than read as a direct call.
    // Sparkplug compiles one function's bytecode and inlines nothing.
    if (jit_return && e->tier == '+') {
      out->push_back({InlinedFramesFunction(), -1});
      out->push_back({e->fn, pos});
      return;
    }
  }
  if (pos >= 0 && e->code_type != v8::JitCodeEvent::BYTE_CODE) {
    // Optimized code's positions may belong to inlined functions, even from other
    // scripts. A position names a line only when the bytecode of this script says whose
    // it is: the physical function's own, or exactly one other function's, which then ran
    // inlined in the physical one (at a return address, and at the PC as node --cpu-prof
    // does from V8 13 on). Otherwise the frame keeps the function and its first line
    // rather than a wrong line.
    const FunctionInfo& f = functions_[e->fn];
    uint32_t owner = kAmbiguous;
    if (f.script_id >= 0) {
      auto it = positions_.find(f.script_id);
      if (it != positions_.end()) owner = it->second.Owner(static_cast<uint32_t>(pos));
    }
    if (owner == kAmbiguous) {
      pos = -1;
    } else if (owner != e->fn) {
      // Line tables carry script offsets only, not the inlining tree: the inlinee is
      // directly under the physical function only when nothing else was inlined there.
      // Otherwise frames between them are unknown, and the gap is said, not bridged by
      // a call edge that may never happen.
      out->push_back({owner, pos});
      if (!InlineChainKnown(*e)) out->push_back({InlinedFramesFunction(), -1});
      out->push_back({e->fn, -1});
      return;
    }
  }
  out->push_back({e->fn, pos});
}

// The chain is known when every position of the table belongs to the physical function
// or to one single other function of its script. A position no function of the script
// claims may be another script's (cross-file inlining) and hides who sits in between;
// the one exception is the entry position (the prologue's, first in the table: the
// function's own start, which no bytecode claims, and which V8 repeats at its stack
// checks).
bool CodeMap::InlineChainKnown(const CodeEntry& e) {
  if (e.inline_chain != 0) return e.inline_chain == 1;
  bool known = false;
  const FunctionInfo& f = functions_[e.fn];
  auto it = positions_.find(f.script_id);
  if (e.lines && !e.lines->empty() && it != positions_.end()) {
    known = true;
    uint32_t entry_pos = e.lines->front().second;  // the prologue's
    uint32_t inlinee = kAmbiguous;
    for (const auto& lp : *e.lines) {
      uint32_t o = it->second.Owner(lp.second);
      if (o == e.fn) continue;
      if (o == kAmbiguous) {
        if (lp.second == entry_pos) continue;
        known = false;
        break;
      }
      if (inlinee == kAmbiguous) inlinee = o;
      else if (o != inlinee) {
        known = false;
        break;
      }
    }
  }
  e.inline_chain = known ? 1 : 2;
  return known;
}

uint32_t CodeMap::InlinedFramesFunction() { return PseudoFunction("(inlined frames)", &inlined_frames_fn_); }

uint32_t CodeMap::PseudoFunction(const char* name, uint32_t* cache) {
  if (*cache == kUnknownFunction) {
    FunctionInfo info;
    info.kind = FunctionKind::kOther;
    info.name = name;
    *cache = Intern(std::move(info));
  }
  return *cache;
}

uint32_t CodeMap::PositionIndex::Owner(uint32_t pos) {
  if (!pending.empty()) {
    std::sort(pending.begin(), pending.end());
    size_t mid = sorted.size();
    sorted.insert(sorted.end(), pending.begin(), pending.end());
    pending.clear();
    std::inplace_merge(sorted.begin(), sorted.begin() + static_cast<long>(mid), sorted.end());
    // One entry per position; two different functions claiming it make it ambiguous.
    size_t out = 0;
    for (size_t i = 0; i < sorted.size(); i++) {
      if (out > 0 && sorted[out - 1].first == sorted[i].first) {
        if (sorted[out - 1].second != sorted[i].second) sorted[out - 1].second = kAmbiguous;
      } else {
        sorted[out++] = sorted[i];
      }
    }
    sorted.resize(out);
  }
  auto it = std::lower_bound(sorted.begin(), sorted.end(), std::make_pair(pos, 0u));
  if (it == sorted.end() || it->first != pos) return kAmbiguous;
  return it->second;
}

}  // namespace sigprof
