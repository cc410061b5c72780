// JS bindings of V8's sampling heap profiler. V8 keeps one sampler per isolate and this
// file keeps no state of its own: every call reaches the sampler of the calling isolate,
// so a Worker that loads the addon profiles its own heap.
//
// What GetAllocationProfile returns (read in V8's src/profiler/sampling-heap-profiler.cc,
// the same from V8 11.3 / Node 20 to V8 14 / Node 26):
//  - Node::allocations holds {size, count} per object size, where `count` is ALREADY
//    unsampled: round(n / (1 - exp(-size / rate))) for n raw samples of that size.
//    `size` is one object's size, not a total.
//  - Sample::count is that same scaling applied to a single sample (rounded per sample,
//    so summing it over samples is biased for objects near the rate in size).
//  - Without kSamplingIncludeObjectsCollected*, a sample and its node's count go away
//    when the object is collected, so the tree is the live set. With those flags the
//    sample stays forever (the tree becomes "everything ever sampled"); only V8 >= 14
//    says which samples are still live (Sample::is_live).
// We hand JS the raw samples (one entry = one observation) and the tree's scaled counts;
// lib/heap.ts scales raw samples exactly once and uses the tree counts only as a check.
#include <node.h>
#include <v8-profiler.h>

#include <time.h>

#include <cstring>
#include <memory>
#include <vector>

#include "module.h"

namespace sigprof {

namespace {

constexpr bool kHasIsLive = V8_MAJOR_VERSION >= 14;

// One per addon instance (per isolate/Environment); freed by its cleanup hook. Says
// whether this instance started the isolate's sampler, and where the last GC left it.
struct HeapState {
  v8::Isolate* isolate;
  bool owned = false;
  // OnGCEpilogue is registered (V8 must only be asked to remove a callback it holds).
  bool hooked = false;
  // The newest sample id at the end of the most recently completed GC we looked at; -1
  // until a GC completes after the sampler (re)started. lib/heap.ts leaves out newer
  // samples (Go's "as of the most recently completed garbage collection").
  double gc_cutoff = -1;
  // GCs seen since the sampler started, and those whose cutoff the cost budget skipped.
  double gcs = 0, gcs_skipped = 0;
  // Reading the newest id means building V8's AllocationProfile (all samples and nodes,
  // plus a walk of the scripts); it is done again only once 999 times its own CPU cost has
  // passed, so it takes at most ~0.1% of the JS thread however often V8 collects (at 99x,
  // ~1%, callgrind put it at 0.4-0.6% of an always-on JSON service's instructions, ten
  // times V8's own sampling cost; docs/pyroscope.md "Always-on cost"). CPU time,
  // not wall time: a read preempted on a loaded machine must not black out the next ones.
  uint64_t next_read_ns = 0;
};

uint64_t ClockNs(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// Every GC, minor (scavenge) and major (mark-compact): see docs/heap.md for why minor GCs
// count. V8 runs epilogue callbacks on the JS thread with allocation allowed, after the
// weak callbacks that drop the samples of collected objects, so what the sampler holds
// now is what survived.
void OnGCEpilogue(v8::Isolate* isolate, v8::GCType type, v8::GCCallbackFlags flags, void* data) {
  HeapState* state = static_cast<HeapState*>(data);
  if (!state->owned) return;
  state->gcs++;
  uint64_t now = ClockNs(CLOCK_MONOTONIC);
  // The budget is for scavenges, which come many times a second. A full GC is rare and
  // costs far more than the read, and a forced one (gc(), heapFullGC, a low-memory
  // notification) is someone asking for "as of now": those are always read, so a
  // program's explicit GC is never answered with an older cutoff.
  bool always = (type & v8::kGCTypeMarkSweepCompact) != 0 || (flags & v8::kGCCallbackFlagForced) != 0;
  if (!always && now < state->next_read_ns) {
    state->gcs_skipped++;
    return;
  }
  uint64_t cpu0 = ClockNs(CLOCK_THREAD_CPUTIME_ID);
  std::unique_ptr<v8::AllocationProfile> profile(isolate->GetHeapProfiler()->GetAllocationProfile());
  if (!profile) return;
  // Ids grow by one per sample for the life of a sampler. The newest surviving sample's id
  // splits the samples: higher ids were taken after this GC ended. (Samples with higher
  // ids that died in this GC are gone, so "newest surviving" is as good as "newest".)
  double newest = 0;
  for (const v8::AllocationProfile::Sample& s : profile->GetSamples()) {
    if (static_cast<double>(s.sample_id) > newest) newest = static_cast<double>(s.sample_id);
  }
  state->gc_cutoff = newest;
  state->next_read_ns = ClockNs(CLOCK_MONOTONIC) + 999 * (ClockNs(CLOCK_THREAD_CPUTIME_ID) - cpu0);
}



// Node 24 (V8 13.6) corrupts memory ("double free or corruption") when a Worker's isolate
// is disposed while its sampling heap profiler still runs; Node 20/22/26 do not. Stopping
// the sampler in the Environment's cleanup, before the isolate goes, avoids it everywhere.
void Cleanup(void* arg) {
  HeapState* state = static_cast<HeapState*>(arg);
  if (state->owned) state->isolate->GetHeapProfiler()->StopSamplingHeapProfiler();
  if (state->hooked) state->isolate->RemoveGCEpilogueCallback(OnGCEpilogue, state);
  delete state;
}

template <typename T, typename Arr>
v8::Local<Arr> ToTyped(v8::Isolate* isolate, const std::vector<T>& v) {
  v8::Local<v8::ArrayBuffer> buffer = v8::ArrayBuffer::New(isolate, v.size() * sizeof(T));
  if (!v.empty()) memcpy(buffer->GetBackingStore()->Data(), v.data(), v.size() * sizeof(T));
  return Arr::New(buffer, 0, v.size());
}

void SetKey(v8::Isolate* isolate, v8::Local<v8::Context> context, v8::Local<v8::Object> obj, const char* key,
            v8::Local<v8::Value> value) {
  obj->Set(context, v8::String::NewFromUtf8(isolate, key).ToLocalChecked(), value).Check();
}

// heapStart(intervalBytes, stackDepth, includeCollected) -> bool. False when the isolate's
// sampler is already running (ours, the inspector's, --heap-prof's or another addon's):
// V8 allows one, and taking it over would silently change someone else's profile.
void Start(const v8::FunctionCallbackInfo<v8::Value>& args) {
  v8::Isolate* isolate = args.GetIsolate();
  v8::Local<v8::Context> context = isolate->GetCurrentContext();
  double interval = args[0]->NumberValue(context).FromMaybe(0);
  double depth = args[1]->NumberValue(context).FromMaybe(0);
  bool include_collected = args[2]->BooleanValue(isolate);
  // V8 CHECKs rate > 0 (a crash); the TS layer validates too, this is the last guard.
  if (!(interval >= 1 && interval <= 2147483647.0) || !(depth >= 1 && depth <= 1024)) {
    args.GetReturnValue().Set(false);
    return;
  }
  int flags = v8::HeapProfiler::kSamplingNoFlags;
  if (include_collected) {
    flags |= v8::HeapProfiler::kSamplingIncludeObjectsCollectedByMajorGC |
             v8::HeapProfiler::kSamplingIncludeObjectsCollectedByMinorGC;
  }
  bool ok = isolate->GetHeapProfiler()->StartSamplingHeapProfiler(
      static_cast<uint64_t>(interval), static_cast<int>(depth), static_cast<v8::HeapProfiler::SamplingFlags>(flags));
  if (ok) {
    HeapState* state = FromData<HeapState>(args);
    // A new sampler numbers its samples from 1 again: no GC has been seen for it yet.
    state->gc_cutoff = -1;
    state->gcs = state->gcs_skipped = 0;
    state->next_read_ns = 0;
    if (!state->hooked) isolate->AddGCEpilogueCallback(OnGCEpilogue, state);
    state->hooked = true;
    state->owned = true;
  }
  args.GetReturnValue().Set(ok);
}

// Discards every sample: V8 frees the whole profile when its sampler stops.
void Stop(const v8::FunctionCallbackInfo<v8::Value>& args) {
  v8::Isolate* isolate = args.GetIsolate();
  isolate->GetHeapProfiler()->StopSamplingHeapProfiler();
  HeapState* state = FromData<HeapState>(args);
  if (state->hooked) isolate->RemoveGCEpilogueCallback(OnGCEpilogue, state);
  state->hooked = false;
  state->owned = false;
}

// heapProfile() -> null when no sampler runs, else
// { names, scripts: string[]; parent: Int32Array (index, -1 = child of the root);
//   ids, lines, columns, scriptIds: per node; allocNode/allocSize/allocCount: the tree's scaled
//   counts; sampleNode (index), sampleSize, sampleLive (1/0), sampleId: raw samples;
//   gcCutoff (newest sample id at the end of the last GC seen, -1 before one), gcs,
//   gcsSkipped }.
// Nodes come out parents first, so JS can build each stack from its parent's.
void Profile(const v8::FunctionCallbackInfo<v8::Value>& args) {
  v8::Isolate* isolate = args.GetIsolate();
  v8::Local<v8::Context> context = isolate->GetCurrentContext();
  std::unique_ptr<v8::AllocationProfile> profile(isolate->GetHeapProfiler()->GetAllocationProfile());
  if (!profile) {
    args.GetReturnValue().SetNull();
    return;
  }
  v8::AllocationProfile::Node* root = profile->GetRootNode();

  std::vector<int32_t> parent;
  std::vector<uint32_t> ids;
  std::vector<int32_t> lines, columns, script_ids;
  std::vector<uint32_t> alloc_node;
  std::vector<double> alloc_size, alloc_count;
  v8::Local<v8::Array> names = v8::Array::New(isolate);
  v8::Local<v8::Array> scripts = v8::Array::New(isolate);
  // node_id -> index, for samples. Ids are small and dense (one counter per sampler).
  std::vector<int32_t> index_of_id;

  // Iterative pre-order walk: stack depth is bounded by V8's, but an explicit stack
  // keeps this safe whatever depth the sampler was started with.
  struct Item { v8::AllocationProfile::Node* node; int32_t parent; };
  std::vector<Item> todo;
  if (root) {
    for (auto it = root->children.rbegin(); it != root->children.rend(); ++it) todo.push_back({*it, -1});
  }
  while (!todo.empty()) {
    Item item = todo.back();
    todo.pop_back();
    v8::AllocationProfile::Node* n = item.node;
    int32_t index = static_cast<int32_t>(ids.size());
    parent.push_back(item.parent);
    ids.push_back(n->node_id);
    lines.push_back(n->line_number);
    columns.push_back(n->column_number);
    script_ids.push_back(n->script_id);
    names->Set(context, static_cast<uint32_t>(index), n->name).Check();
    scripts->Set(context, static_cast<uint32_t>(index), n->script_name).Check();
    if (n->node_id >= index_of_id.size()) index_of_id.resize(n->node_id + 1, -1);
    index_of_id[n->node_id] = index;
    for (const v8::AllocationProfile::Allocation& a : n->allocations) {
      alloc_node.push_back(static_cast<uint32_t>(index));
      alloc_size.push_back(static_cast<double>(a.size));
      alloc_count.push_back(static_cast<double>(a.count));
    }
    for (auto it = n->children.rbegin(); it != n->children.rend(); ++it) todo.push_back({*it, index});
  }

  const std::vector<v8::AllocationProfile::Sample>& samples = profile->GetSamples();
  std::vector<int32_t> sample_node;
  std::vector<double> sample_size, sample_id;
  std::vector<uint8_t> sample_live;
  sample_node.reserve(samples.size());
  sample_size.reserve(samples.size());
  sample_id.reserve(samples.size());
  sample_live.reserve(samples.size());
  for (const v8::AllocationProfile::Sample& s : samples) {
    // A sample whose node is not in the tree cannot be attributed; V8 keeps nodes while
    // they have samples, so this is defensive only.
    if (s.node_id >= index_of_id.size() || index_of_id[s.node_id] < 0) continue;
    sample_node.push_back(index_of_id[s.node_id]);
    sample_size.push_back(static_cast<double>(s.size));
    sample_id.push_back(static_cast<double>(s.sample_id));
#if V8_MAJOR_VERSION >= 14
    sample_live.push_back(s.is_live ? 1 : 0);
#else
    // Started without the include-collected flags on these versions, so V8 has already
    // dropped the samples of collected objects: whatever is left is live.
    sample_live.push_back(1);
#endif
  }

  v8::Local<v8::Object> out = v8::Object::New(isolate);
  SetKey(isolate, context, out, "names", names);
  SetKey(isolate, context, out, "scripts", scripts);
  SetKey(isolate, context, out, "parent", ToTyped<int32_t, v8::Int32Array>(isolate, parent));
  SetKey(isolate, context, out, "ids", ToTyped<uint32_t, v8::Uint32Array>(isolate, ids));
  SetKey(isolate, context, out, "lines", ToTyped<int32_t, v8::Int32Array>(isolate, lines));
  SetKey(isolate, context, out, "columns", ToTyped<int32_t, v8::Int32Array>(isolate, columns));
  SetKey(isolate, context, out, "scriptIds", ToTyped<int32_t, v8::Int32Array>(isolate, script_ids));
  SetKey(isolate, context, out, "allocNode", ToTyped<uint32_t, v8::Uint32Array>(isolate, alloc_node));
  SetKey(isolate, context, out, "allocSize", ToTyped<double, v8::Float64Array>(isolate, alloc_size));
  SetKey(isolate, context, out, "allocCount", ToTyped<double, v8::Float64Array>(isolate, alloc_count));
  SetKey(isolate, context, out, "sampleNode", ToTyped<int32_t, v8::Int32Array>(isolate, sample_node));
  SetKey(isolate, context, out, "sampleSize", ToTyped<double, v8::Float64Array>(isolate, sample_size));
  SetKey(isolate, context, out, "sampleId", ToTyped<double, v8::Float64Array>(isolate, sample_id));
  SetKey(isolate, context, out, "sampleLive", ToTyped<uint8_t, v8::Uint8Array>(isolate, sample_live));
  HeapState* state = FromData<HeapState>(args);
  SetKey(isolate, context, out, "gcCutoff", v8::Number::New(isolate, state->gc_cutoff));
  SetKey(isolate, context, out, "gcs", v8::Number::New(isolate, state->gcs));
  SetKey(isolate, context, out, "gcsSkipped", v8::Number::New(isolate, state->gcs_skipped));
  args.GetReturnValue().Set(out);
}

// heapSampleCount() -> number of samples V8 holds (-1 when no sampler runs). Used to keep
// the include-collected mode bounded without converting the whole profile to JS.
void SampleCount(const v8::FunctionCallbackInfo<v8::Value>& args) {
  v8::Isolate* isolate = args.GetIsolate();
  std::unique_ptr<v8::AllocationProfile> profile(isolate->GetHeapProfiler()->GetAllocationProfile());
  double n = profile ? static_cast<double>(profile->GetSamples().size()) : -1;
  args.GetReturnValue().Set(n);
}

// A full, compacting collection without --expose-gc. RequestGarbageCollectionForTesting
// CHECK-fails (aborts the process) unless --expose-gc was given, so it is not an option.
void FullGC(const v8::FunctionCallbackInfo<v8::Value>& args) {
  args.GetIsolate()->LowMemoryNotification();
}

}  // namespace

void InitHeap(v8::Local<v8::Object> exports, v8::Local<v8::Context> context) {
  // Context::GetIsolate() is gone in V8 14; during module init the isolate is the current one.
  v8::Isolate* isolate = v8::Isolate::GetCurrent();
  // Allocated per init (not a constant): Node CHECK-fails on a duplicate (hook, arg) pair,
  // and the addon can be initialised twice in one Environment (a cleared require cache).
  HeapState* state = new HeapState{isolate};
  node::AddEnvironmentCleanupHook(isolate, Cleanup, state);
  v8::Local<v8::External> data = WrapData(isolate, state);
  SetMethod(context, exports, "heapStart", Start, data);
  SetMethod(context, exports, "heapStop", Stop, data);
  SetMethod(context, exports, "heapProfile", Profile, data);
  SetMethod(context, exports, "heapSampleCount", SampleCount);
  SetMethod(context, exports, "heapFullGC", FullGC);
  exports->Set(context, v8::String::NewFromUtf8(isolate, "heapHasIsLive").ToLocalChecked(),
               v8::Boolean::New(isolate, kHasIsLive)).Check();
}

}  // namespace sigprof
