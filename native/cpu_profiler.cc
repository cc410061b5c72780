// JS bindings of the CPU sampler. Everything here runs on the JS thread; the data the
// TypeScript layer needs crosses as typed arrays, never as per-sample objects.
#include <node.h>

#include <mutex>
#include <unordered_map>

#include "module.h"
#include "native_symbols.h"
#include "sampler.h"
#include "signal_handler.h"
#include "worker_registry.h"

#include <algorithm>

namespace sigprof {

namespace {

std::mutex g_samplers_mu;
std::unordered_map<v8::Isolate*, Sampler*> g_samplers;


void Throw(v8::Isolate* isolate, const std::string& message, const char* code = nullptr) {
  v8::Local<v8::Value> e = v8::Exception::Error(v8::String::NewFromUtf8(isolate, message.c_str()).ToLocalChecked());
  if (code) {
    e.As<v8::Object>()
        ->Set(isolate->GetCurrentContext(), v8::String::NewFromUtf8(isolate, "code").ToLocalChecked(),
              v8::String::NewFromUtf8(isolate, code).ToLocalChecked())
        .Check();
  }
  isolate->ThrowException(e);
}

v8::Local<v8::String> Str(v8::Isolate* isolate, const std::string& s) {
  return v8::String::NewFromUtf8(isolate, s.data(), v8::NewStringType::kNormal, static_cast<int>(s.size())).ToLocalChecked();
}

v8::Local<v8::Uint32Array> ToUint32Array(v8::Isolate* isolate, const uint32_t* data, size_t n) {
  v8::Local<v8::ArrayBuffer> buffer = v8::ArrayBuffer::New(isolate, n * sizeof(uint32_t));
  if (n) memcpy(buffer->GetBackingStore()->Data(), data, n * sizeof(uint32_t));
  return v8::Uint32Array::New(buffer, 0, n);
}

void Start(const v8::FunctionCallbackInfo<v8::Value>& args) {
  Sampler* sampler = FromData<Sampler>(args);
  double hz = args[0]->NumberValue(args.GetIsolate()->GetCurrentContext()).FromMaybe(0);
  std::string error;
  if (!sampler->Start(hz, &error)) return Throw(args.GetIsolate(), "sigprof: " + error, sampler->error_code());
  args.GetReturnValue().Set(Str(args.GetIsolate(), ClockName(sampler->GetStats().clock)));
}

void Stop(const v8::FunctionCallbackInfo<v8::Value>& args) { FromData<Sampler>(args)->Stop(); }

// cpuTakeRecords(flush): flush resolves what the ring holds now, on this thread, so a
// reader that joins or leaves gets a boundary exact to the sample (lib/cpu.ts).
void TakeRecords(const v8::FunctionCallbackInfo<v8::Value>& args) {
  std::vector<uint32_t> records = FromData<Sampler>(args)->TakeRecords(args.Length() > 0 && args[0]->IsTrue());
  args.GetReturnValue().Set(ToUint32Array(args.GetIsolate(), records.data(), records.size()));
}

// Flat AppendFunctionInfo words for each function, as the JS side reads them.
void ReturnFunctions(const v8::FunctionCallbackInfo<v8::Value>& args, const std::vector<FunctionInfo>& fns) {
  v8::Isolate* isolate = args.GetIsolate();
  v8::Local<v8::Context> context = isolate->GetCurrentContext();
  v8::Local<v8::Array> out = v8::Array::New(isolate, static_cast<int>(fns.size() * kFunctionInfoWords));
  uint32_t i = 0;
  for (const FunctionInfo& f : fns) AppendFunctionInfo(isolate, context, out, &i, f);
  args.GetReturnValue().Set(out);
}

// [name, url, scriptId, line, column, kind] for each function id in the Uint32Array.
void FunctionsById(const v8::FunctionCallbackInfo<v8::Value>& args) {
  v8::Isolate* isolate = args.GetIsolate();
  if (!args[0]->IsUint32Array()) return Throw(isolate, "sigprof: functionsById expects a Uint32Array");
  v8::Local<v8::Uint32Array> ids = args[0].As<v8::Uint32Array>();
  std::vector<uint32_t> wanted(ids->Length());
  if (!wanted.empty()) ids->CopyContents(wanted.data(), wanted.size() * sizeof(uint32_t));
  ReturnFunctions(args, FromData<Sampler>(args)->code_map().FunctionsById(wanted.data(), wanted.size()));
}

// functionsById's layout for every JS function of the script with this id. A linear scan
// of the function table: only for the rare frame V8 could not name (heap profiles).
void FunctionsOfScript(const v8::FunctionCallbackInfo<v8::Value>& args) {
  v8::Isolate* isolate = args.GetIsolate();
  if (!args[0]->IsInt32()) return Throw(isolate, "sigprof: functionsOfScript expects a script id");
  ReturnFunctions(args, FromData<Sampler>(args)->code_map().FunctionsOfScript(args[0].As<v8::Int32>()->Value()));
}

// The native objects frames were resolved in: [id, path, build id, start, limit, offset]
// per mapping, for the profile's Mapping table.
void NativeMappings(const v8::FunctionCallbackInfo<v8::Value>& args) {
  v8::Isolate* isolate = args.GetIsolate();
  v8::Local<v8::Context> context = isolate->GetCurrentContext();
  std::vector<NativeMapping> maps = NativeSymbols::Get().Mappings();
  v8::Local<v8::Array> out = v8::Array::New(isolate, static_cast<int>(maps.size() * 6));
  uint32_t i = 0;
  for (const NativeMapping& m : maps) {
    out->Set(context, i++, v8::Integer::NewFromUnsigned(isolate, m.id)).Check();
    out->Set(context, i++, Str(isolate, m.path)).Check();
    out->Set(context, i++, Str(isolate, m.build_id)).Check();
    out->Set(context, i++, v8::Number::New(isolate, static_cast<double>(m.start))).Check();
    out->Set(context, i++, v8::Number::New(isolate, static_cast<double>(m.limit))).Check();
    out->Set(context, i++, v8::Number::New(isolate, static_cast<double>(m.offset))).Check();
  }
  args.GetReturnValue().Set(out);
}

void PositionsToLines(const v8::FunctionCallbackInfo<v8::Value>& args) {
  v8::Isolate* isolate = args.GetIsolate();
  int script_id = args[0]->Int32Value(isolate->GetCurrentContext()).FromMaybe(-1);
  if (!args[1]->IsInt32Array()) return Throw(isolate, "sigprof: positionsToLines needs an Int32Array");
  v8::Local<v8::Int32Array> pos = args[1].As<v8::Int32Array>();
  size_t n = pos->Length();
  std::vector<int32_t> in(n), lines(n), columns(n);
  pos->CopyContents(in.data(), n * sizeof(int32_t));
  FromData<Sampler>(args)->code_map().PositionsToLines(script_id, in.data(), lines.data(), columns.data(), n);
  // [line, column] per position.
  std::vector<int32_t> out(2 * n);
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = lines[i];
    out[2 * i + 1] = columns[i];
  }
  v8::Local<v8::ArrayBuffer> buffer = v8::ArrayBuffer::New(isolate, out.size() * sizeof(int32_t));
  if (n) memcpy(buffer->GetBackingStore()->Data(), out.data(), out.size() * sizeof(int32_t));
  args.GetReturnValue().Set(v8::Int32Array::New(buffer, 0, out.size()));
}

// The logical JS stack (inlined frames included) for Profile.Add and friends, as
// [function id, -(line + 2)] pairs. v8::StackTrace sees inlined frames through
// deoptimization data, which a raw walk cannot, but costs several µs; the raw walk
// (GetStackSample, ~2 µs) identifies the physical call path, and the same physical path
// always has the same logical frames until code changes, so results are memoized by it.

void CaptureStack(const v8::FunctionCallbackInfo<v8::Value>& args) {
  v8::Isolate* isolate = args.GetIsolate();
  v8::Local<v8::Context> context = isolate->GetCurrentContext();
  uint32_t skip = args[0]->Uint32Value(context).FromMaybe(0);
  uint32_t max = args[1]->Uint32Value(context).FromMaybe(64);
  Sampler* sampler = FromData<Sampler>(args);
  CodeMap& map = sampler->code_map();
  void* raw[kMaxFrames];
  size_t n = sampler->RawStack(raw, kMaxFrames);
  uint64_t h = 1469598103934665603ull ^ (static_cast<uint64_t>(skip) << 32 | max);
  for (size_t i = 0; i < n; i++) h = (h ^ reinterpret_cast<uintptr_t>(raw[i])) * 1099511628211ull;
  Sampler::StackMemo& m = sampler->stack_memo(h);
  if (m.seq == map.seq() && m.skip == skip && m.max == max && m.raw.size() == n &&
      std::equal(m.raw.begin(), m.raw.end(), raw)) {
    // Stacks are immutable once captured, so one array serves every identical capture.
    args.GetReturnValue().Set(m.out.Get(isolate));
    return;
  }
  v8::HandleScope scope(isolate);
  v8::Local<v8::StackTrace> trace = v8::StackTrace::CurrentStackTrace(
      isolate, static_cast<int>(skip + max),
      static_cast<v8::StackTrace::StackTraceOptions>(v8::StackTrace::kLineNumber | v8::StackTrace::kColumnOffset | v8::StackTrace::kFunctionName |
                                                     v8::StackTrace::kScriptId | v8::StackTrace::kScriptName));
  int count = trace->GetFrameCount();
  std::vector<int32_t> out;
  out.reserve(2 * static_cast<size_t>(count));
  for (int i = static_cast<int>(skip); i < count; i++) {
    v8::Local<v8::StackFrame> frame = trace->GetFrame(isolate, static_cast<uint32_t>(i));
    v8::Local<v8::String> name = frame->GetFunctionName();
    if (name.IsEmpty()) name = v8::String::Empty(isolate);
    int line = frame->GetLineNumber(), column = frame->GetColumn();
    out.push_back(static_cast<int32_t>(map.StackTraceFunction(isolate, frame, name, line, column)));
    out.push_back(PackLineColumn(line, column));
  }
  v8::Local<v8::Uint32Array> result = ToUint32Array(isolate, reinterpret_cast<const uint32_t*>(out.data()), out.size());
  args.GetReturnValue().Set(result);
  m.seq = map.seq();
  m.skip = skip;
  m.max = max;
  m.raw.assign(raw, raw + n);
  m.out.Reset(isolate, result);
}

void LoopStart(const v8::FunctionCallbackInfo<v8::Value>& args) {
  double ns = args[0]->NumberValue(args.GetIsolate()->GetCurrentContext()).FromMaybe(0);
  // Below 2^63 the conversion to uint64_t is defined; the TypeScript side allows up to 2^53.
  if (!(ns > 0 && ns < 9.2e18)) return Throw(args.GetIsolate(), "sigprof: bad event-loop threshold", "ERR_INVALID_RATE");
  std::string error;
  Sampler* sampler = FromData<Sampler>(args);
  if (!sampler->StartLoopWatchdog(static_cast<uint64_t>(ns), &error)) {
    return Throw(args.GetIsolate(), "sigprof: " + error, sampler->error_code());
  }
}

void LoopStop(const v8::FunctionCallbackInfo<v8::Value>& args) { FromData<Sampler>(args)->StopLoopWatchdog(); }

void LoopTakeRecords(const v8::FunctionCallbackInfo<v8::Value>& args) {
  std::vector<uint32_t> records = FromData<Sampler>(args)->TakeLoopRecords();
  args.GetReturnValue().Set(ToUint32Array(args.GetIsolate(), records.data(), records.size()));
}

// Flat [block id, duration ns, ...] as doubles.
void LoopTakeDurations(const v8::FunctionCallbackInfo<v8::Value>& args) {
  v8::Isolate* isolate = args.GetIsolate();
  std::vector<uint64_t> d = FromData<Sampler>(args)->TakeLoopDurations();
  v8::Local<v8::ArrayBuffer> buffer = v8::ArrayBuffer::New(isolate, d.size() * sizeof(double));
  double* out = static_cast<double*>(buffer->GetBackingStore()->Data());
  for (size_t i = 0; i < d.size(); i++) out[i] = static_cast<double>(d[i]);
  args.GetReturnValue().Set(v8::Float64Array::New(buffer, 0, d.size()));
}

void SetNumber(v8::Isolate* isolate, v8::Local<v8::Object> o, const char* key, double v) {
  o->Set(isolate->GetCurrentContext(), Str(isolate, key), v8::Number::New(isolate, v)).Check();
}

void Stats(const v8::FunctionCallbackInfo<v8::Value>& args) {
  v8::Isolate* isolate = args.GetIsolate();
  Sampler* sampler = FromData<Sampler>(args);
  Sampler::Stats s = sampler->GetStats();
  CodeMap::Counts c = sampler->code_map().GetCounts();
  v8::Local<v8::Object> o = v8::Object::New(isolate);
  SetNumber(isolate, o, "signals", static_cast<double>(s.signals));
  SetNumber(isolate, o, "samples", static_cast<double>(s.samples));
  SetNumber(isolate, o, "weight", static_cast<double>(s.weight));
  SetNumber(isolate, o, "dropped", static_cast<double>(s.dropped));
  SetNumber(isolate, o, "droppedWeight", static_cast<double>(s.dropped_weight));
  SetNumber(isolate, o, "foreignLostWeight", static_cast<double>(s.foreign_lost_weight));
  SetNumber(isolate, o, "loopWithheld", static_cast<double>(s.loop_withheld));
  SetNumber(isolate, o, "rejectedSignals", static_cast<double>(s.rejected));
  SetNumber(isolate, o, "signal", static_cast<double>(SampleSignal()));
  SetNumber(isolate, o, "handlerCalls", static_cast<double>(s.handler_calls));
  SetNumber(isolate, o, "handlerNsTotal", static_cast<double>(s.handler_ns_total));
  SetNumber(isolate, o, "handlerNsMax", static_cast<double>(s.handler_ns_max));
  SetNumber(isolate, o, "frames", static_cast<double>(s.frames));
  SetNumber(isolate, o, "unresolvedFrames", static_cast<double>(s.unresolved_frames));
  SetNumber(isolate, o, "truncated", static_cast<double>(s.truncated));
  SetNumber(isolate, o, "startNs", static_cast<double>(s.start_ns));
  SetNumber(isolate, o, "stopNs", static_cast<double>(s.stop_ns));
  SetNumber(isolate, o, "hz", s.hz);
  SetNumber(isolate, o, "threadMode", s.clock == ClockKind::kThread ? 1 : 0);
  o->Set(isolate->GetCurrentContext(), Str(isolate, "clock"), Str(isolate, ClockName(s.clock))).Check();
  SetNumber(isolate, o, "codeEntries", static_cast<double>(c.entries));
  SetNumber(isolate, o, "codeGraveyard", static_cast<double>(c.graveyard));
  SetNumber(isolate, o, "functions", static_cast<double>(c.functions));
  SetNumber(isolate, o, "scripts", static_cast<double>(c.scripts));
  SetNumber(isolate, o, "positions", static_cast<double>(c.positions));
  SetNumber(isolate, o, "codeEvents", static_cast<double>(c.events));
  SetNumber(isolate, o, "codeEventNs", static_cast<double>(c.handler_ns));
  SetNumber(isolate, o, "collectorCpuNs", static_cast<double>(s.collector_cpu_ns));
  SetNumber(isolate, o, "helperCpuNs", static_cast<double>(s.helper_cpu_ns));
  SetNumber(isolate, o, "nowNs", static_cast<double>(MonotonicNs()));
  args.GetReturnValue().Set(o);
}

// lineLessFunctions(ids: Uint32Array) -> Uint32Array: the ids among `ids` whose code was
// compiled before the code listener was installed (so it has no line table).
void LineLessFunctions(const v8::FunctionCallbackInfo<v8::Value>& args) {
  v8::Isolate* isolate = args.GetIsolate();
  if (!args[0]->IsUint32Array()) return Throw(isolate, "sigprof: lineLessFunctions expects a Uint32Array");
  v8::Local<v8::Uint32Array> ids = args[0].As<v8::Uint32Array>();
  std::vector<uint32_t> in(ids->Length());
  if (!in.empty()) ids->CopyContents(in.data(), in.size() * sizeof(uint32_t));
  std::vector<uint32_t> out = FromData<Sampler>(args)->code_map().LineLessAmong(in.data(), in.size());
  args.GetReturnValue().Set(ToUint32Array(isolate, out.data(), out.size()));
}

void Cleanup(void* arg) {
  Sampler* sampler = static_cast<Sampler*>(arg);
  {
    std::lock_guard<std::mutex> lock(g_samplers_mu);
    for (auto it = g_samplers.begin(); it != g_samplers.end(); ++it) {
      if (it->second == sampler) {
        g_samplers.erase(it);
        break;
      }
    }
  }
  // Stops the timer and the listener before the isolate goes away.
  UnregisterThread(sampler);
  delete sampler;
}

// A Uint32Array of length 1 over the sampler's label-id word: lib/labels.ts sets the
// current label set with one store, no call into the addon. The memory is the Sampler's,
// which lives until the environment's cleanup hook, after the last JS has run.
void LabelSlot(const v8::FunctionCallbackInfo<v8::Value>& args) {
  static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t) && std::atomic<uint32_t>::is_always_lock_free,
                "the label slot is written as a plain uint32 from JS");
  v8::Isolate* isolate = args.GetIsolate();
  std::shared_ptr<v8::BackingStore> store = v8::ArrayBuffer::NewBackingStore(
      FromData<Sampler>(args)->label_slot(), sizeof(uint32_t), [](void*, size_t, void*) {}, nullptr);
  v8::Local<v8::ArrayBuffer> buffer = v8::ArrayBuffer::New(isolate, std::move(store));
  args.GetReturnValue().Set(v8::Uint32Array::New(buffer, 0, 1));
}

// The calling thread's CPU time (ns): what the TypeScript side charges its own work with.
void ThreadCpu(const v8::FunctionCallbackInfo<v8::Value>& args) {
  args.GetReturnValue().Set(static_cast<double>(ThreadCpuNs()));
}

}  // namespace

void AppendFunctionInfo(v8::Isolate* isolate, v8::Local<v8::Context> context, v8::Local<v8::Array> out, uint32_t* i,
                        const FunctionInfo& f) {
  out->Set(context, (*i)++, v8::String::NewFromUtf8(isolate, f.name.data(), v8::NewStringType::kNormal, static_cast<int>(f.name.size())).ToLocalChecked()).Check();
  out->Set(context, (*i)++, v8::String::NewFromUtf8(isolate, f.url.data(), v8::NewStringType::kNormal, static_cast<int>(f.url.size())).ToLocalChecked()).Check();
  out->Set(context, (*i)++, v8::Integer::New(isolate, f.script_id)).Check();
  out->Set(context, (*i)++, v8::Integer::New(isolate, f.line)).Check();
  out->Set(context, (*i)++, v8::Integer::New(isolate, f.column)).Check();
  out->Set(context, (*i)++, v8::Integer::New(isolate, static_cast<int>(f.kind))).Check();
  out->Set(context, (*i)++, v8::Number::New(isolate, static_cast<double>(f.address))).Check();
  out->Set(context, (*i)++, v8::Integer::NewFromUnsigned(isolate, f.mapping)).Check();
}

// A captured frame's (line, column) in one negative word, -(2 + v), so captured stacks
// stay (function id, word) pairs like the sampler's (function id, position). Source maps
// need the column (a minified bundle is one long line), but nothing else does, so it is
// packed in whichever split fits, and dropped when none does:
//   v = 1 << 29 | line << 10 | column   line < 2^19, column < 2^10 (tsc output, most code)
//   v = 2 << 29 | line << 22 | column   line < 2^7,  column < 2^22 (minified bundles)
//   v = line                             column unknown (line < 2^29)
// lib/symbolize.ts decodes it.
int32_t PackLineColumn(int line, int column) {
  uint32_t l = line > 0 ? static_cast<uint32_t>(line) : 0;
  uint32_t c = column > 0 ? static_cast<uint32_t>(column) : 0;
  uint32_t v;
  if (c > 0 && l < (1u << 19) && c < (1u << 10)) v = 1u << 29 | l << 10 | c;
  else if (c > 0 && l < (1u << 7) && c < (1u << 22)) v = 2u << 29 | l << 22 | c;
  else v = l < (1u << 29) ? l : 0;
  return -static_cast<int32_t>(v) - 2;
}

void InitCpu(v8::Local<v8::Object> exports, v8::Local<v8::Context> context) {
  // Context::GetIsolate() is gone in V8 14; init runs on the isolate's own thread.
  v8::Isolate* isolate = v8::Isolate::GetCurrent();
  (void)context;
  Sampler* sampler;
  {
    std::lock_guard<std::mutex> lock(g_samplers_mu);
    auto it = g_samplers.find(isolate);
    if (it != g_samplers.end()) {
      sampler = it->second;
    } else {
      sampler = new Sampler(isolate);
      g_samplers.emplace(isolate, sampler);
      node::AddEnvironmentCleanupHook(isolate, Cleanup, sampler);
      RegisterThread(isolate, context, sampler);
    }
  }
  v8::Local<v8::External> data = WrapData(isolate, sampler);
  SetMethod(context, exports, "cpuStart", Start, data);
  SetMethod(context, exports, "cpuStop", Stop, data);
  SetMethod(context, exports, "cpuTakeRecords", TakeRecords, data);
  SetMethod(context, exports, "functionsById", FunctionsById, data);
  SetMethod(context, exports, "functionsOfScript", FunctionsOfScript, data);
  SetMethod(context, exports, "nativeMappings", NativeMappings, data);
  SetMethod(context, exports, "positionsToLines", PositionsToLines, data);
  SetMethod(context, exports, "captureStack", CaptureStack, data);
  SetMethod(context, exports, "cpuStats", Stats, data);
  SetMethod(context, exports, "threadCpuNs", ThreadCpu, data);
  SetMethod(context, exports, "lineLessFunctions", LineLessFunctions, data);
  SetMethod(context, exports, "labelSlot", LabelSlot, data);
  SetMethod(context, exports, "loopStart", LoopStart, data);
  SetMethod(context, exports, "loopStop", LoopStop, data);
  SetMethod(context, exports, "loopTakeRecords", LoopTakeRecords, data);
  SetMethod(context, exports, "loopTakeDurations", LoopTakeDurations, data);
  InitWorkers(exports, context, data);
}

}  // namespace sigprof
