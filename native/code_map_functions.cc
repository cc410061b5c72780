// The function table: interned function metadata by id (from code events, native
// symbols and v8::StackTrace), and what the JS side asks about them.
#include "code_map.h"

#include "native_symbols.h"

#include <cstdio>
#include <string>

namespace sigprof {

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
  // Appended piecewise: `"@" + std::to_string(...)` trips GCC 12's -Wrestrict false
  // positive at -O3 in C++20 (Node 24/26 headers build with gnu++20).
  if (info.kind == FunctionKind::kNative) {
    key += '@';
    key += std::to_string(info.address);
  }
  auto it = function_ids_.find(key);
  if (it != function_ids_.end()) return it->second;
  uint32_t id = static_cast<uint32_t>(functions_.size());
  functions_.push_back(std::move(info));
  function_ids_.emplace(std::move(key), id);
  return id;
}

uint32_t CodeMap::SymbolFunctionLocked(uintptr_t addr) {
  auto it = symbol_ids_.find(addr);
  if (it != symbol_ids_.end()) return it->second;
  uint32_t id = kUnknownFunction;
  NativeResolution r = NativeSymbols::Get().Resolve(addr);
  if (!r.name.empty()) {
    // The symbol's own start resolves to this same symbol: r is its resolution too.
    id = NativeFunctionLocked(r.symbol, &r);
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

uint32_t CodeMap::NativeFunctionLocked(uintptr_t addr, const NativeResolution* resolved) {
  auto it = native_ids_.find(addr);
  if (it != native_ids_.end()) return it->second;
  FunctionInfo info;
  info.kind = FunctionKind::kNative;
  NativeResolution r = resolved ? *resolved : NativeSymbols::Get().Resolve(addr);
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

std::vector<FunctionInfo> CodeMap::FunctionsOfScript(int script_id) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<FunctionInfo> out;
  for (const FunctionInfo& f : functions_) {
    if (f.script_id == script_id && f.kind == FunctionKind::kJs) out.push_back(f);
  }
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

std::vector<uint32_t> CodeMap::LineLessAmong(const uint32_t* ids, size_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<uint32_t> out;
  for (size_t i = 0; i < n; i++) {
    if (line_less_.count(ids[i])) out.push_back(ids[i]);
  }
  return out;
}

}  // namespace sigprof
