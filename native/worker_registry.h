// The process-wide registry of JS threads (main thread and Workers) that loaded the addon,
// through which a CPU profile started in the main thread samples every thread.
// Design and decisions: docs/workers.md.
#pragma once
#include <node.h>
#include <v8.h>

#include <cstdint>

#include "code_map.h"

namespace sigprof {

class Sampler;

// On the isolate's own thread, when its Sampler is made (InitCpu). If a process profile
// is running, the thread joins it right away.
void RegisterThread(v8::Isolate* isolate, v8::Local<v8::Context> context, Sampler* sampler);
// On the isolate's own thread, before its Sampler is deleted (environment cleanup): stops
// the thread's part of a process profile and keeps its samples for the main thread.
void UnregisterThread(Sampler* sampler);
// The registry's JS functions on each isolate's exports.
void InitWorkers(v8::Local<v8::Object> exports, v8::Local<v8::Context> context, v8::Local<v8::Value> data);

// A known line and column packed into one negative position word (cpu_profiler.cc).
int32_t PackLineColumn(int line, int column);

// A function's metadata as JS reads it (lib/symbolize.ts): name, url, scriptId, line,
// column, kind, address, mapping, appended to `out` from index *i (cpu_profiler.cc).
constexpr uint32_t kFunctionInfoWords = 8;
void AppendFunctionInfo(v8::Isolate* isolate, v8::Local<v8::Context> context, v8::Local<v8::Array> out, uint32_t* i,
                        const FunctionInfo& f);

}  // namespace sigprof
