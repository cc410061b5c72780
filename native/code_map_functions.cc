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
  if (info.kind == FunctionKind::kNative) key += "@" + std::to_string(info.address);
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

uint32_t CodeMap::StackTraceFunction(v8::Isolate* isolate, int script_id, v8::Local<v8::String> name,
                                     v8::Local<v8::String> script_name) {
  uint64_t key = (static_cast<uint64_t>(static_cast<uint32_t>(script_id)) << 32) |
                 static_cast<uint32_t>(name->GetIdentityHash());
  auto& bucket = stack_trace_functions_[key];
  for (const NamedFunction& nf : bucket) {
    if (nf.name.Get(isolate)->StringEquals(name)) return nf.fn;
  }
  FunctionInfo info;
  info.kind = FunctionKind::kJs;
  v8::String::Utf8Value utf8(isolate, name);
  info.name = (*utf8 && utf8.length() > 0) ? std::string(*utf8, utf8.length()) : "(anonymous)";
  info.script_id = script_id;
  if (!script_name.IsEmpty()) {
    v8::String::Utf8Value url(isolate, script_name);
    if (*url) info.url.assign(*url, url.length());
  }
  uint32_t fn;
  {
    std::lock_guard<std::mutex> lock(mu_);
    fn = Intern(std::move(info));
  }
  bucket.push_back({v8::Global<v8::String>(isolate, name), fn});
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

std::vector<uint32_t> CodeMap::LineLessAmong(const uint32_t* ids, size_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<uint32_t> out;
  for (size_t i = 0; i < n; i++) {
    if (line_less_.count(ids[i])) out.push_back(ids[i]);
  }
  return out;
}

}  // namespace sigprof
