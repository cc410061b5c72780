#include "code_map.h"

#include "native_symbols.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace sigprof {

namespace {

constexpr uint32_t kAmbiguous = 0xffffffffu;
constexpr int kMaxIsolates = 64;

// V8's code event callback has no user data pointer, so maps are found by isolate.
// Slots are only ever appended to or cleared; reads need no lock.
std::atomic<v8::Isolate*> g_isolates[kMaxIsolates];
std::atomic<CodeMap*> g_maps[kMaxIsolates];
std::mutex g_registry_mu;

CodeMap* FindMap(v8::Isolate* isolate) {
  for (int i = 0; i < kMaxIsolates; i++) {
    if (g_isolates[i].load(std::memory_order_acquire) == isolate) return g_maps[i].load(std::memory_order_acquire);
  }
  return nullptr;
}

bool Register(v8::Isolate* isolate, CodeMap* map) {
  std::lock_guard<std::mutex> lock(g_registry_mu);
  for (int i = 0; i < kMaxIsolates; i++) {
    if (g_isolates[i].load(std::memory_order_relaxed) == nullptr) {
      g_maps[i].store(map, std::memory_order_release);
      g_isolates[i].store(isolate, std::memory_order_release);
      return true;
    }
  }
  return false;
}

void Unregister(CodeMap* map) {
  std::lock_guard<std::mutex> lock(g_registry_mu);
  for (int i = 0; i < kMaxIsolates; i++) {
    if (g_maps[i].load(std::memory_order_relaxed) == map) {
      g_isolates[i].store(nullptr, std::memory_order_release);
      g_maps[i].store(nullptr, std::memory_order_release);
    }
  }
}

bool StartsWith(const std::string& s, const char* p) { return s.compare(0, strlen(p), p) == 0; }
bool EndsWith(const std::string& s, const char* p) {
  size_t n = strlen(p);
  return s.size() >= n && s.compare(s.size() - n, n, p) == 0;
}

// Builtins that run the interpreter or enter/leave JS: time spent there is the JS
// function's own time, as in V8's profiler; showing them would hide the function.
bool IsInterpreterMachinery(const std::string& tag, const std::string& name) {
  if (tag == "BytecodeHandler") return true;
  if (tag != "Builtin") return false;
  // CallApiCallback*: the glue into C++ callbacks, listed as a frame by V8 12+.
  return StartsWith(name, "Interpreter") || name.find("Trampoline") != std::string::npos ||
         StartsWith(name, "CallApiCallback") || StartsWith(name, "CallApiGetter") ||
         StartsWith(name, "Baseline") || EndsWith(name, "_Baseline") || StartsWith(name, "JSEntry") ||
         StartsWith(name, "JSConstructEntry") || StartsWith(name, "JSRunMicrotasksEntry");
}

// Parses ":<line>:<col>" off the end of `s`; returns the remaining prefix length.
bool ParseLineCol(const std::string& s, size_t* prefix_len, int* line, int* col) {
  size_t end = s.size();
  size_t i = end;
  while (i > 0 && isdigit(static_cast<unsigned char>(s[i - 1]))) i--;
  if (i == end || i == 0 || s[i - 1] != ':') return false;
  int c = atoi(s.c_str() + i);
  size_t j = i - 1;
  size_t k = j;
  while (k > 0 && isdigit(static_cast<unsigned char>(s[k - 1]))) k--;
  if (k == j || k == 0 || s[k - 1] != ':') return false;
  *line = atoi(s.c_str() + k);
  *col = c;
  *prefix_len = k - 1;
  return true;
}

}  // namespace

CodeMap::CodeMap(v8::Isolate* isolate) : isolate_(isolate) {
  FunctionInfo unknown;
  unknown.name = "(unknown)";
  functions_.push_back(unknown);
}

CodeMap::~CodeMap() { StopListening(); }

void CodeMap::Listen() {
  if (listening_) return;
  if (!Register(isolate_, this)) return;
  listening_ = true;
  // Enumerating existing code happens synchronously here, on the JS thread.
  enumerating_ = true;
  isolate_->SetJitCodeEventHandler(v8::kJitCodeEventEnumExisting, &CodeMap::OnJitCodeEvent);
  enumerating_ = false;
  DetectRemappedBuiltins();
}

void CodeMap::StopListening() {
  if (!listening_) return;
  isolate_->SetJitCodeEventHandler(v8::kJitCodeEventDefault, nullptr);
  Unregister(this);
  listening_ = false;
}

void CodeMap::OnJitCodeEvent(const v8::JitCodeEvent* event) {
  CodeMap* map = FindMap(event->isolate);
  if (!map) return;
  // Self-measurement of what the always-on listener costs; per-position events are too
  // small and too many to time each.
  if (event->type == v8::JitCodeEvent::CODE_ADD_LINE_POS_INFO) return map->HandleEvent(event);
  auto start = std::chrono::steady_clock::now();
  map->HandleEvent(event);
  auto took = std::chrono::steady_clock::now() - start;
  map->handler_ns_.fetch_add(static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(took).count()),
                             std::memory_order_relaxed);
}

void CodeMap::HandleEvent(const v8::JitCodeEvent* event) {
  using E = v8::JitCodeEvent;
  switch (event->type) {
    case E::CODE_START_LINE_INFO_RECORDING:
      // V8 hands `user_data` back on the following line events; the struct is ours to fill.
      const_cast<v8::JitCodeEvent*>(event)->user_data = new LineTable();
      return;
    case E::CODE_ADD_LINE_POS_INFO: {
      auto* table = static_cast<LineTable*>(event->user_data);
      if (table && event->line_info.position_type == E::POSITION) {
        table->emplace_back(static_cast<uint32_t>(event->line_info.offset), static_cast<uint32_t>(event->line_info.pos));
      }
      return;
    }
    case E::CODE_END_LINE_INFO_RECORDING: {
      auto* table = static_cast<LineTable*>(event->user_data);
      if (!table) return;
      std::stable_sort(table->begin(), table->end(),
                       [](const std::pair<uint32_t, uint32_t>& a, const std::pair<uint32_t, uint32_t>& b) { return a.first < b.first; });
      std::shared_ptr<const LineTable> owned(table);
      std::lock_guard<std::mutex> lock(mu_);
      pending_lines_[reinterpret_cast<uintptr_t>(event->code_start)] = std::move(owned);
      return;
    }
    case E::CODE_ADDED:
      AddCode(event);
      return;
    case E::CODE_MOVED: {
      std::lock_guard<std::mutex> lock(mu_);
      uint64_t idx = seq_.load(std::memory_order_relaxed);
      auto it = live_.find(reinterpret_cast<uintptr_t>(event->code_start));
      if (it != live_.end()) {
        CodeEntry moved = it->second;
        Bury(it, idx);
        moved.start = reinterpret_cast<uintptr_t>(event->new_code_start);
        moved.added = idx;
        // Whatever the new range overlaps is dead code whose space was reused.
        auto over = live_.lower_bound(moved.start);
        while (over != live_.end() && over->first < moved.start + moved.size) Bury(over++, idx);
        if (over != live_.begin()) {
          auto prev = std::prev(over);
          if (prev->first + prev->second.size > moved.start) Bury(prev, idx);
        }
        live_[moved.start] = std::move(moved);
      }
      seq_.store(idx + 1, std::memory_order_release);
      return;
    }
    case E::CODE_REMOVED: {
      std::lock_guard<std::mutex> lock(mu_);
      uint64_t idx = seq_.load(std::memory_order_relaxed);
      auto it = live_.find(reinterpret_cast<uintptr_t>(event->code_start));
      if (it != live_.end()) Bury(it, idx);
      seq_.store(idx + 1, std::memory_order_release);
      return;
    }
  }
}

void CodeMap::Bury(std::map<uintptr_t, CodeEntry>::iterator it, uint64_t idx) {
  if (keep_history_) {
    CodeEntry dead = std::move(it->second);
    dead.removed = idx;
    graveyard_.emplace(dead.start, std::move(dead));
  }
  live_.erase(it);
}

void CodeMap::AddCode(const v8::JitCodeEvent* event) {
  std::string full(event->name.str, event->name.len);
  std::string tag, rest;
  size_t colon = full.find(':');
  if (colon != std::string::npos) {
    tag = full.substr(0, colon);
    rest = full.substr(colon + 1);
  } else {
    rest = full;
  }

  FunctionInfo info;
  bool enumerated_js = false;
  char tier = 0;
  bool machinery = false;
  int script_id = -1;
  std::string url;
  // The script handle is only safe to use on the isolate's own thread, inside a scope.
  // No V8 call happens under mu_: a string flatten could start a GC whose worker
  // threads then wait for mu_ in their move events.
  if (!event->script.IsEmpty() && event->isolate == v8::Isolate::TryGetCurrent()) {
    v8::HandleScope scope(event->isolate);
    script_id = event->script->GetId();
    bool known = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = scripts_.find(script_id);
      if (it != scripts_.end()) {
        known = true;
        url = it->second.url;
      }
    }
    if (!known) {
      Script s;
      v8::Local<v8::Value> name = event->script->GetScriptName();
      if (!name.IsEmpty() && name->IsString()) {
        v8::String::Utf8Value utf8(event->isolate, name);
        if (*utf8) s.url.assign(*utf8, utf8.length());
      }
      s.handle.Reset(event->isolate, event->script);
      s.handle.SetWeak();
      url = s.url;
      std::lock_guard<std::mutex> lock(mu_);
      scripts_.emplace(script_id, std::move(s));
    }
  }

  if (tag == "JS" || tag == "Script" || tag == "Function" || tag == "LazyCompile" || tag == "Eval") {
    info.kind = FunctionKind::kJs;
    size_t i = 0;
    // Tier markers: o (OSR) then ~ ^ + * then ' (context specialised), per V8 version.
    if (i < rest.size() && rest[i] == 'o' && i + 1 < rest.size() && strchr("~^+*", rest[i + 1])) i++;
    if (i < rest.size() && strchr("~^+*", rest[i])) tier = rest[i++];
    if (i < rest.size() && rest[i] == '\'') i++;
    std::string body = rest.substr(i);
    size_t prefix = body.size();
    int line = 0, col = 0;
    if (ParseLineCol(body, &prefix, &line, &col)) {
      info.line = line;
      info.column = col;
      body.resize(prefix);
    }
    // body is "<function name> <url>"; the URL may itself contain spaces, so strip the
    // known URL when we have it.
    std::string fname;
    if (!url.empty() && EndsWith(body, url.c_str())) {
      fname = body.substr(0, body.size() - url.size());
      if (!fname.empty() && fname.back() == ' ') fname.pop_back();
    } else {
      size_t sp = body.rfind(' ');
      if (sp == std::string::npos) {
        fname = body;
      } else {
        fname = body.substr(0, sp);
        if (url.empty()) url = body.substr(sp + 1);
      }
    }
    info.name = fname.empty() ? "(anonymous)" : fname;
    info.url = url;
    info.script_id = script_id;
    // Code that existed before we listened has no line tables (V8 does not replay them);
    // such a function's frames get its first line until it is compiled again.
    enumerated_js = enumerating_;
  } else if (tag == "Builtin" || tag == "BytecodeHandler") {
    info.kind = FunctionKind::kBuiltin;
    info.name = rest;
    machinery = IsInterpreterMachinery(tag, rest);
  } else if (tag == "RegExp") {
    info.kind = FunctionKind::kRegExp;
    info.name = "RegExp: " + rest;
  } else {
    info.kind = FunctionKind::kOther;
    info.name = full;
  }

  std::lock_guard<std::mutex> lock(mu_);
  uint64_t idx = seq_.load(std::memory_order_relaxed);
  CodeEntry entry;
  entry.start = reinterpret_cast<uintptr_t>(event->code_start);
  entry.size = static_cast<uint32_t>(event->code_len);
  entry.code_type = static_cast<uint8_t>(event->code_type);
  entry.tier = tier;
  entry.interpreter_machinery = machinery;
  entry.added = idx;
  entry.fn = Intern(std::move(info));
  auto pending = pending_lines_.find(entry.start);
  if (pending != pending_lines_.end()) {
    entry.lines = std::move(pending->second);
    pending_lines_.erase(pending);
  }
  if (enumerated_js && !entry.lines) line_less_.insert(entry.fn);
  // Bytecode positions say which function owns each source position of a script; that
  // is what inlined frames are recovered from.
  if (entry.code_type == v8::JitCodeEvent::BYTE_CODE && entry.lines && script_id >= 0) {
    PositionIndex& index = positions_[script_id];
    for (const auto& lp : *entry.lines) index.pending.emplace_back(lp.second, entry.fn);
    position_count_ += entry.lines->size();
  }
  if (entry.size > max_code_size_) max_code_size_ = entry.size;
  auto over = live_.lower_bound(entry.start);
  while (over != live_.end() && over->first < entry.start + std::max<uint32_t>(entry.size, 1)) Bury(over++, idx);
  if (over != live_.begin()) {
    auto prev = std::prev(over);
    if (prev->first + prev->second.size > entry.start) Bury(prev, idx);
  }
  live_[entry.start] = std::move(entry);
  seq_.store(idx + 1, std::memory_order_release);
}

uint32_t CodeMap::Intern(FunctionInfo&& info) {
  std::string key;
  key.reserve(info.name.size() + info.url.size() + 32);
  key += static_cast<char>('0' + static_cast<int>(info.kind));
  key += info.name;
  key += '\0';
  key += info.url;
  key += '\0';
  key += std::to_string(info.script_id) + ":" + std::to_string(info.line) + ":" + std::to_string(info.column);
  // Native functions are told apart by address (two static functions may share a name).
  if (info.kind == FunctionKind::kNative) key += "@" + std::to_string(info.address);
  auto it = function_ids_.find(key);
  if (it != function_ids_.end()) return it->second;
  uint32_t id = static_cast<uint32_t>(functions_.size());
  functions_.push_back(std::move(info));
  function_ids_.emplace(std::move(key), id);
  return id;
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
  auto it = live_.upper_bound(addr);
  if (it == live_.begin()) return nullptr;
  --it;
  if (addr < it->first + it->second.size) return &it->second;
  return nullptr;
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

static int32_t PositionAt(const CodeEntry& e, uintptr_t offset) {
  if (!e.lines || e.lines->empty()) return -1;
  const LineTable& t = *e.lines;
  auto it = std::upper_bound(t.begin(), t.end(), static_cast<uint32_t>(offset),
                             [](uint32_t off, const std::pair<uint32_t, uint32_t>& p) { return off < p.first; });
  if (it == t.begin()) return static_cast<int32_t>(t.front().second);
  return static_cast<int32_t>(std::prev(it)->second);
}

void CodeMap::ResolveLocked(uintptr_t addr, uint64_t seq, bool return_address, std::vector<ResolvedFrame>* out) {
  uintptr_t a = TranslateRemapped(addr);
  const CodeEntry* e = FindLocked(a, seq);
  bool jit_return = false;
  // A return address points after the call; the call itself is one byte earlier.
  if (e && return_address && e->code_type != v8::JitCodeEvent::BYTE_CODE) {
    const CodeEntry* before = FindLocked(a - 1, seq);
    if (before) e = before;
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

uint32_t CodeMap::SymbolFunctionLocked(uintptr_t addr) {
  auto it = symbol_ids_.find(addr);
  if (it != symbol_ids_.end()) return it->second;
  uint32_t id = kUnknownFunction;
  NativeResolution r = NativeSymbols::Get().Resolve(addr);
  if (!r.name.empty()) {
    id = NativeFunctionLocked(r.symbol);
  } else if (r.mapping != 0) {
    // Inside a loaded object but covered by no symbol it has (stripped libraries): named
    // by its object, with the address itself, for pprof to symbolize from the file.
    FunctionInfo info;
    info.kind = FunctionKind::kNative;
    info.name = "(native code)";
    info.address = addr;
    info.mapping = r.mapping;
    info.url = r.path;
    id = Intern(std::move(info));
  }
  // Bounded: garbage addresses must not grow the cache forever.
  if (symbol_ids_.size() < 65536) symbol_ids_.emplace(addr, id);
  return id;
}

uint32_t CodeMap::NativeFunctionLocked(uintptr_t addr) {
  auto it = native_ids_.find(addr);
  if (it != native_ids_.end()) return it->second;
  FunctionInfo info;
  info.kind = FunctionKind::kNative;
  NativeResolution r = NativeSymbols::Get().Resolve(addr);
  if (!r.name.empty()) {
    info.name = r.name;
    info.address = r.symbol;
  } else {
    char buf[64];
    snprintf(buf, sizeof buf, "0x%lx", static_cast<unsigned long>(addr));
    info.name = buf;
    info.address = addr;
  }
  info.mapping = r.mapping;
  info.url = r.path;
  uint32_t id = Intern(std::move(info));
  if (native_ids_.size() < 65536) native_ids_.emplace(addr, id);
  return id;
}

// The start of the function a stack-trace frame is in. Source maps name a function by the
// map's `names` entry at its start (lib/symbolize.ts, mapFrame), and minified code needs
// that name, but v8::StackFrame has only the frame's own line and column. Its position is
// one of the enclosing function's bytecode positions, and the position index says whose:
// the line and column become the script offset (from the script's line starts, computed
// once per script from its source), the index gives the owner, and the owner's code event
// its start. An offset that is not exactly one of the script's bytecode positions (a
// script with a line or column offset, say) finds no owner. False (no start) then, and
// when the script is unknown to the index (compiled before the listener) or two functions
// claim the position. JS thread only; results are cached per (script, line, column).
bool CodeMap::EnclosingStart(v8::Isolate* isolate, int script_id, v8::Local<v8::StackFrame> frame, int line,
                             int column, int* start_line, int* start_column) {
  if (script_id < 0 || line <= 0 || column <= 0) return false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (positions_.find(script_id) == positions_.end()) return false;
  }
  const std::vector<uint32_t>* starts = LineStarts(isolate, script_id, frame);
  if (!starts || static_cast<size_t>(line) > starts->size()) return false;
  uint64_t pos = static_cast<uint64_t>((*starts)[line - 1]) + static_cast<uint64_t>(column - 1);
  size_t next = static_cast<size_t>(line) < starts->size() ? (*starts)[line] : SIZE_MAX;
  if (pos >= next || pos > 0xfffffffeu) return false;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = positions_.find(script_id);
  if (it == positions_.end()) return false;
  uint32_t owner = it->second.Owner(static_cast<uint32_t>(pos));
  if (owner == kAmbiguous || owner >= functions_.size() || functions_[owner].line <= 0) return false;
  *start_line = functions_[owner].line;
  *start_column = functions_[owner].column;
  return true;
}

// Offsets at which each line of the script starts, with V8's line terminators (\n, \r
// not followed by \n, U+2028, U+2029), in UTF-16 units as V8 counts columns. Copies the
// source once (V8 is called without mu_: it may allocate, and a GC sends code-move events
// that take mu_ from other threads). Bounded: past kMaxLineStarts in all, the cache starts
// over.
const std::vector<uint32_t>* CodeMap::LineStarts(v8::Isolate* isolate, int script_id, v8::Local<v8::StackFrame> frame) {
  auto hit = line_starts_.find(script_id);
  if (hit != line_starts_.end()) return hit->second.empty() ? nullptr : &hit->second;
  std::vector<uint32_t> starts;
  v8::Local<v8::String> source = frame->GetScriptSource();
  if (!source.IsEmpty() && source->Length() > 0) {
    v8::String::Value text(isolate, source);
    const uint16_t* c = *text;
    uint32_t n = c ? text.length() : 0;
    if (n > 0) starts.push_back(0);
    for (uint32_t k = 0; k < n; k++) {
      uint16_t ch = c[k];
      bool end = ch == '\n' || ch == 0x2028 || ch == 0x2029 || (ch == '\r' && (k + 1 >= n || c[k + 1] != '\n'));
      if (end && k + 1 < n) starts.push_back(k + 1);
    }
  }
  if (line_starts_total_ + starts.size() > kMaxLineStarts) {
    line_starts_.clear();
    line_starts_total_ = 0;
  }
  line_starts_total_ += starts.size();
  auto& slot = line_starts_[script_id];
  slot = std::move(starts);
  return slot.empty() ? nullptr : &slot;
}

uint32_t CodeMap::StackTraceFunction(v8::Isolate* isolate, v8::Local<v8::StackFrame> frame, v8::Local<v8::String> name,
                                     int line, int column) {
  int script_id = frame->GetScriptId();
  v8::Local<v8::String> script_name = frame->GetScriptName();
  int start_line = 0, start_column = 0;
  auto known = enclosing_starts_.find({script_id, line, column});
  if (known != enclosing_starts_.end()) {
    start_line = known->second.first;
    start_column = known->second.second;
  } else {
    EnclosingStart(isolate, script_id, frame, line, column, &start_line, &start_column);
    // Bounded: a long-lived process with generated code must not grow it forever.
    if (enclosing_starts_.size() >= 65536) enclosing_starts_.clear();
    enclosing_starts_.emplace(StartKey{script_id, line, column}, std::make_pair(start_line, start_column));
  }
  uint32_t start_hash = static_cast<uint32_t>(start_line) * 0x9e3779b1u ^ static_cast<uint32_t>(start_column);
  uint64_t key = (static_cast<uint64_t>(static_cast<uint32_t>(script_id)) << 32) |
                 (static_cast<uint32_t>(name->GetIdentityHash()) ^ start_hash);
  auto& bucket = stack_trace_functions_[key];
  for (const NamedFunction& nf : bucket) {
    if (nf.start_line == start_line && nf.start_column == start_column && nf.name.Get(isolate)->StringEquals(name)) return nf.fn;
  }
  FunctionInfo info;
  info.kind = FunctionKind::kJs;
  v8::String::Utf8Value utf8(isolate, name);
  info.name = (*utf8 && utf8.length() > 0) ? std::string(*utf8, utf8.length()) : "(anonymous)";
  info.script_id = script_id;
  info.line = start_line;
  info.column = start_column;
  if (!script_name.IsEmpty()) {
    v8::String::Utf8Value url(isolate, script_name);
    if (*url) info.url.assign(*url, url.length());
  }
  uint32_t fn;
  {
    std::lock_guard<std::mutex> lock(mu_);
    fn = Intern(std::move(info));
  }
  bucket.push_back({v8::Global<v8::String>(isolate, name), start_line, start_column, fn});
  return fn;
}

std::vector<FunctionInfo> CodeMap::FunctionsById(const uint32_t* ids, size_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<FunctionInfo> out;
  out.reserve(n);
  for (size_t i = 0; i < n; i++) out.push_back(functions_[ids[i] < functions_.size() ? ids[i] : 0]);
  return out;
}

void CodeMap::PositionsToLines(int script_id, const int32_t* pos, int32_t* lines, int32_t* columns, size_t n) {
  v8::Local<v8::UnboundScript> script;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = scripts_.find(script_id);
    if (it != scripts_.end() && !it->second.handle.IsEmpty()) script = it->second.handle.Get(isolate_);
  }
  for (size_t i = 0; i < n; i++) {
    // GetLineNumber may allocate the script's line-end table: only here, on the JS thread.
    bool known = !script.IsEmpty() && pos[i] >= 0;
    lines[i] = known ? script->GetLineNumber(pos[i]) + 1 : 0;
    // The column is what source maps need (a minified bundle is one line).
    columns[i] = known ? script->GetColumnNumber(pos[i]) + 1 : 0;
  }
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

std::vector<uint32_t> CodeMap::LineLessAmong(const uint32_t* ids, size_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<uint32_t> out;
  for (size_t i = 0; i < n; i++) {
    if (line_less_.count(ids[i])) out.push_back(ids[i]);
  }
  return out;
}

CodeMap::Counts CodeMap::GetCounts() {
  std::lock_guard<std::mutex> lock(mu_);
  return {live_.size(), graveyard_.size(), functions_.size(), scripts_.size(), position_count_,
          seq_.load(std::memory_order_relaxed), handler_ns_.load(std::memory_order_relaxed)};
}

}  // namespace sigprof
