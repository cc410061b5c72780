// Each native part registers its JS-visible functions on the addon's exports from the
// module's context-aware init (addon.cc), so a Worker gets its own per-isolate state.
#pragma once
#include <node.h>
#include <v8.h>

namespace sigprof {

// CPU sampler: timer, signal handler, ring buffer, code map (cpu_profiler.cc).
void InitCpu(v8::Local<v8::Object> exports, v8::Local<v8::Context> context);
// Heap profiler glue (heap_profiler.cc). Weak so the addon links while it is being written.
void InitHeap(v8::Local<v8::Object> exports, v8::Local<v8::Context> context) __attribute__((weak));

// The per-isolate state a binding was registered with (SetMethod's data). V8 14 (Node 26)
// deprecates untagged externals and its tagged overloads do not exist before it, so the
// version test lives here once.
inline v8::Local<v8::External> WrapData(v8::Isolate* isolate, void* state) {
#if V8_MAJOR_VERSION >= 14
  return v8::External::New(isolate, state, v8::kExternalPointerTypeTagDefault);
#else
  return v8::External::New(isolate, state);
#endif
}

template <typename T>
T* FromData(const v8::FunctionCallbackInfo<v8::Value>& args) {
#if V8_MAJOR_VERSION >= 14
  return static_cast<T*>(args.Data().As<v8::External>()->Value(v8::kExternalPointerTypeTagDefault));
#else
  return static_cast<T*>(args.Data().As<v8::External>()->Value());
#endif
}

// Helper for registering a function on exports.
inline void SetMethod(v8::Local<v8::Context> context, v8::Local<v8::Object> exports, const char* name,
                      v8::FunctionCallback cb, v8::Local<v8::Value> data = v8::Local<v8::Value>()) {
  v8::Isolate* isolate = v8::Isolate::GetCurrent();
  v8::Local<v8::FunctionTemplate> t = v8::FunctionTemplate::New(isolate, cb, data);
  v8::Local<v8::Function> fn = t->GetFunction(context).ToLocalChecked();
  v8::Local<v8::String> key = v8::String::NewFromUtf8(isolate, name).ToLocalChecked();
  fn->SetName(key);
  exports->Set(context, key, fn).Check();
}

}  // namespace sigprof
