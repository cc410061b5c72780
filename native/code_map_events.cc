// The code-event listener: V8's JIT code events (code added on the JS thread, moved by
// GC worker threads, removed) applied to the code map, each counted in seq().
#include "code_map.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

namespace sigprof {

namespace {

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

  // Read now, while the code is live: by the time a sample is resolved it may be gone.
  std::shared_ptr<const FrameWindows> windows;
  if (tier != 0 && event->code_type != v8::JitCodeEvent::BYTE_CODE && !machinery) {
    windows = FindFrameWindows(static_cast<const uint8_t*>(event->code_start), static_cast<uint32_t>(event->code_len));
  }
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t idx = seq_.load(std::memory_order_relaxed);
  CodeEntry entry;
  entry.start = reinterpret_cast<uintptr_t>(event->code_start);
  entry.size = static_cast<uint32_t>(event->code_len);
  entry.code_type = static_cast<uint8_t>(event->code_type);
  entry.tier = tier;
  entry.interpreter_machinery = machinery;
  entry.frame_windows = std::move(windows);
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

}  // namespace sigprof
