// One CPU profile for the whole process. Every isolate that loads the addon registers its
// Sampler here; a profile started in the main thread asks each other thread, through
// node::RequestInterrupt, to start its own sampler on its own thread (its own clock, ring,
// collector and code map: nothing is shared but this table). The same interrupt, asked for
// at every pull of the main thread, hands the thread's resolved samples over after turning
// their source positions into lines on that thread (V8 needs the isolate's own thread for
// that) and copying the metadata of the functions they name from that isolate's code map:
// the main thread never names a frame from any map but the one of the isolate that took it.
//
// Interrupts reach a thread in a synchronous loop (V8 checks them at every back edge) and
// one idle in its event loop (node wakes it); a thread stuck in a blocking system call
// answers late, so stopping waits a bounded time and counts what such a thread had not
// handed over yet (docs/workers.md).
#include "worker_registry.h"

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <uv.h>

#include "module.h"
#include "sampler.h"

namespace sigprof {

namespace {

struct ThreadEntry {
  uint64_t key = 0;  // never reused: an interrupt names its thread by key, not by pointer
  Sampler* sampler = nullptr;  // null once the thread's environment is gone
  v8::Isolate* isolate = nullptr;
  node::Environment* env = nullptr;
  int thread_id = -1;
  bool interrupt_pending = false;
  uint64_t joined = 0;     // the process profile whose sampler this thread runs (0: none)
  uint64_t refused = 0;    // the process profile this thread could not join
  uint64_t abandoned = 0;  // the profile whose stop gave up waiting on this thread
  std::string error, code;
  bool error_reported = true;
  std::vector<uint32_t> records;  // handed over, not yet taken by the main thread
  uint64_t delivered = 0;         // samples handed over in the current profile
  uint64_t lost = 0;              // samples the thread took but never handed over
  std::unordered_set<uint32_t> sent;  // function ids whose metadata the main thread has
  std::vector<std::pair<uint32_t, FunctionInfo>> new_fns;
  // The thread's label table as its lib/labels.ts published it: label-set id -> flat
  // key, value, ... (an id reused after retirement is published again, replacing it).
  std::unordered_map<uint32_t, std::vector<std::string>> label_sets;
  // The label sets named by `records`, copied at hand-over: a handed-over record's label
  // word is 1 + an index here (0: none), so it resolves whatever the thread's table does
  // after the hand-over (docs/workers.md, "Labels").
  std::vector<std::vector<std::string>> out_labels;
  // Wakes the thread's JS (lib/workers.ts) on its own event loop when it joins or leaves a
  // process profile and after each hand-over: an interrupt cannot call into JS.
  uv_async_t* notify = nullptr;
  // 1 while the thread runs its sampler for a process profile: lib/labels.ts reads it in
  // Do (one load) to start its hooks at once in a Worker that joined since its last
  // notification.
  std::atomic<uint32_t> joined_word{0};
  v8::Global<v8::Function> on_notify;
  v8::Global<v8::Context> context;
};

std::mutex g_mu;
std::condition_variable g_cv;
std::vector<std::shared_ptr<ThreadEntry>> g_entries;
std::unordered_map<int, std::string> g_names;  // Worker threadId -> its `name` option
uint64_t g_next_key = 1;
uint64_t g_generation = 0;
uint64_t g_profile = 0;  // the running process profile (0: none)
double g_hz = 0;

std::shared_ptr<ThreadEntry> FindLocked(uint64_t key) {
  for (auto& e : g_entries) if (e->key == key) return e;
  return nullptr;
}

std::shared_ptr<ThreadEntry> FindLocked(Sampler* s) {
  for (auto& e : g_entries) if (e->sampler == s) return e;
  return nullptr;
}

void OnInterrupt(void* arg);

void RequestLocked(ThreadEntry* e) {
  if (e->interrupt_pending || !e->env || !e->sampler) return;
  e->interrupt_pending = true;
  node::RequestInterrupt(e->env, OnInterrupt, reinterpret_cast<void*>(static_cast<uintptr_t>(e->key)));
}

// The thread's own thread: takes its resolved records, gives every frame of a known
// position its line and column (packed as cpu_profiler.cc packs captured frames), and
// queues them with the metadata of functions not sent before. `for_profile` is the profile
// they belong to; they are dropped if the main thread stopped waiting for it.
void Deliver(const std::shared_ptr<ThreadEntry>& e, Sampler* s, uint64_t for_profile) {
  std::vector<uint32_t> rec = s->TakeRecords();
  if (rec.empty()) return;
  std::unordered_set<uint32_t> ids;
  uint64_t count = 0;
  for (size_t i = 0; i < rec.size();) {
    size_t n = rec[i], start = i + Sampler::kRecordHeaderWords;
    for (size_t k = 0; k < n; k++) ids.insert(rec[start + 2 * k]);
    i = start + 2 * n;
    count++;
  }
  std::vector<uint32_t> id_list(ids.begin(), ids.end());
  CodeMap& map = s->code_map();
  std::vector<FunctionInfo> infos = map.FunctionsById(id_list.data(), id_list.size());
  std::unordered_map<uint32_t, size_t> info_of;
  for (size_t k = 0; k < id_list.size(); k++) info_of[id_list[k]] = k;
  // script -> positions wanted, then position -> packed line/column.
  std::map<int, std::vector<int32_t>> want;
  for (size_t i = 0; i < rec.size();) {
    size_t n = rec[i], start = i + Sampler::kRecordHeaderWords;
    for (size_t k = 0; k < n; k++) {
      int32_t pos = static_cast<int32_t>(rec[start + 2 * k + 1]);
      const FunctionInfo& f = infos[info_of[rec[start + 2 * k]]];
      if (pos >= 0 && f.script_id >= 0) want[f.script_id].push_back(pos);
    }
    i = start + 2 * n;
  }
  std::map<std::pair<int, int32_t>, int32_t> packed;
  {
    v8::HandleScope scope(e->isolate);
    for (auto& [script, positions] : want) {
      std::vector<int32_t> lines(positions.size()), columns(positions.size());
      map.PositionsToLines(script, positions.data(), lines.data(), columns.data(), positions.size());
      for (size_t k = 0; k < positions.size(); k++) {
        // Line 0 is unknown: the frame keeps its function's first line (position -1).
        packed[{script, positions[k]}] = lines[k] > 0 ? PackLineColumn(lines[k], columns[k]) : -1;
      }
    }
  }
  for (size_t i = 0; i < rec.size();) {
    size_t n = rec[i], start = i + Sampler::kRecordHeaderWords;
    for (size_t k = 0; k < n; k++) {
      int32_t pos = static_cast<int32_t>(rec[start + 2 * k + 1]);
      const FunctionInfo& f = infos[info_of[rec[start + 2 * k]]];
      if (pos >= 0) rec[start + 2 * k + 1] = static_cast<uint32_t>(f.script_id >= 0 ? packed[{f.script_id, pos}] : -1);
    }
    i = start + 2 * n;
  }
  std::lock_guard<std::mutex> lock(g_mu);
  if (e->abandoned == for_profile) return;
  for (size_t k = 0; k < id_list.size(); k++) {
    if (e->sent.insert(id_list[k]).second) e->new_fns.emplace_back(id_list[k], infos[k]);
  }
  // Label ids are the thread's own table's: each becomes an index into out_labels, which
  // holds a copy of its pairs as published now (before the thread can reuse the id).
  std::unordered_map<uint32_t, uint32_t> word_of;
  for (size_t i = 0; i < rec.size();) {
    size_t n = rec[i];
    uint32_t& word = rec[i + 4];
    if (word != 0) {
      auto w = word_of.find(word);
      if (w != word_of.end()) {
        word = w->second;
      } else {
        auto set = e->label_sets.find(word);
        uint32_t mapped = 0;
        if (set != e->label_sets.end()) {
          e->out_labels.push_back(set->second);
          mapped = static_cast<uint32_t>(e->out_labels.size());
        }
        word_of.emplace(word, mapped);
        word = mapped;
      }
    }
    i += Sampler::kRecordHeaderWords + 2 * n;
  }
  e->records.insert(e->records.end(), rec.begin(), rec.end());
  e->delivered += count;
  if (e->notify) uv_async_send(e->notify);
}

// Brings this thread's sampler in line with the process profile: stops it if the profile
// it joined has ended (handing over the rest), starts it for a running one it has not
// joined, and hands over what it resolved so far.
void Service(const std::shared_ptr<ThreadEntry>& e) {
  Sampler* s;
  uint64_t want, joined;
  double hz;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    e->interrupt_pending = false;
    s = e->sampler;
    if (!s) return;
    want = g_profile;
    joined = e->joined;
    hz = g_hz;
  }
  if (joined != 0 && joined != want) {
    s->Stop();
    Deliver(e, s, joined);
    std::lock_guard<std::mutex> lock(g_mu);
    e->joined = 0;
    e->joined_word.store(0, std::memory_order_relaxed);
    if (e->notify) uv_async_send(e->notify);
    g_cv.notify_all();
  }
  if (want != 0 && joined != want) {
    bool refused;
    {
      std::lock_guard<std::mutex> lock(g_mu);
      refused = e->refused == want;
    }
    if (refused) return;
    std::string error;
    bool ok = s->Start(hz, &error);
    std::lock_guard<std::mutex> lock(g_mu);
    if (ok) {
      e->joined = want;
      e->joined_word.store(1, std::memory_order_relaxed);
      if (e->notify) uv_async_send(e->notify);
      e->delivered = 0;
      e->lost = 0;
      e->abandoned = 0;
      // Stopped (or restarted) while this thread was starting: the stop found it not yet
      // joined and asked nothing of it, so it asks itself.
      if (g_profile != want) RequestLocked(e.get());
    } else {
      e->refused = want;
      // The one expected refusal: the Worker runs a CPU profile of its own.
      e->error = s->running() ? "this Worker is running its own CPU profile (StartCPUProfile in the Worker), so the "
                                "main thread's process profile leaves it out"
                              : error;
      e->code = s->error_code() ? s->error_code() : "ERR_PROFILE_IN_USE";
      e->error_reported = false;
    }
    return;
  }
  if (want != 0 && joined == want) Deliver(e, s, want);
}

void OnInterrupt(void* arg) {
  uint64_t key = static_cast<uint64_t>(reinterpret_cast<uintptr_t>(arg));
  std::shared_ptr<ThreadEntry> e;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    e = FindLocked(key);
  }
  if (e) Service(e);
}


v8::Local<v8::String> Str(v8::Isolate* isolate, const std::string& s) {
  return v8::String::NewFromUtf8(isolate, s.data(), v8::NewStringType::kNormal, static_cast<int>(s.size())).ToLocalChecked();
}

void Set(v8::Isolate* isolate, v8::Local<v8::Object> o, const char* key, v8::Local<v8::Value> v) {
  o->Set(isolate->GetCurrentContext(), Str(isolate, key), v).Check();
}

// setThreadId(threadId): this isolate's worker_threads.threadId (0: the main thread).
void SetThreadId(const v8::FunctionCallbackInfo<v8::Value>& args) {
  int id = args[0]->Int32Value(args.GetIsolate()->GetCurrentContext()).FromMaybe(-1);
  std::lock_guard<std::mutex> lock(g_mu);
  if (auto e = FindLocked(FromData<Sampler>(args))) e->thread_id = id;
}

// setWorkerName(threadId, name): told by the thread that created the Worker.
void SetWorkerName(const v8::FunctionCallbackInfo<v8::Value>& args) {
  v8::Isolate* isolate = args.GetIsolate();
  int id = args[0]->Int32Value(isolate->GetCurrentContext()).FromMaybe(-1);
  v8::String::Utf8Value name(isolate, args[1]);
  if (id <= 0 || !*name) return;
  std::lock_guard<std::mutex> lock(g_mu);
  g_names[id] = std::string(*name, static_cast<size_t>(name.length()));
}

// processStart(hz): the calling thread's own sampler is started by lib/cpu.ts; every
// other registered thread is asked to start its own.
void ProcessStart(const v8::FunctionCallbackInfo<v8::Value>& args) {
  double hz = args[0]->NumberValue(args.GetIsolate()->GetCurrentContext()).FromMaybe(0);
  Sampler* self = FromData<Sampler>(args);
  std::lock_guard<std::mutex> lock(g_mu);
  g_profile = ++g_generation;
  g_hz = hz;
  for (auto& e : g_entries) {
    if (e->sampler == self) continue;
    RequestLocked(e.get());
  }
}

// processStop(timeoutMs): ends the process profile; waits at most timeoutMs for the
// threads in it to stop and hand over their last samples. Returns how many did not.
void ProcessStop(const v8::FunctionCallbackInfo<v8::Value>& args) {
  double ms = args[0]->NumberValue(args.GetIsolate()->GetCurrentContext()).FromMaybe(0);
  if (!(ms >= 0)) ms = 0;
  if (ms > 60000) ms = 60000;
  std::unique_lock<std::mutex> lock(g_mu);
  uint64_t gen = g_profile;
  if (gen == 0) return args.GetReturnValue().Set(0);
  g_profile = 0;
  for (auto& e : g_entries) if (e->joined == gen) RequestLocked(e.get());
  auto pending = [gen] {
    int n = 0;
    for (auto& e : g_entries) n += e->joined == gen && e->sampler;
    return n;
  };
  g_cv.wait_for(lock, std::chrono::microseconds(static_cast<int64_t>(ms * 1000)), [&] { return pending() == 0; });
  int late = 0;
  for (auto& e : g_entries) {
    if (e->joined != gen || !e->sampler) continue;
    // Counted, not waited for: its sampler stops when the thread next takes an interrupt
    // (or when its environment goes away), and what it hands over then is dropped.
    e->abandoned = gen;
    uint64_t taken = e->sampler->samples_recorded();
    e->lost += taken > e->delivered ? taken - e->delivered : 0;
    late++;
  }
  args.GetReturnValue().Set(late);
}

// processTake(): what the threads handed over since the last call, one object per thread:
// { key, threadId, name, records, fns, lost, gone, error, code }. fns is flat
// [id, name, url, scriptId, line, column, kind, address, mapping] for functions not sent
// before. Asks each thread in the profile to hand over more by the next call.
void ProcessTake(const v8::FunctionCallbackInfo<v8::Value>& args) {
  v8::Isolate* isolate = args.GetIsolate();
  v8::Local<v8::Context> context = isolate->GetCurrentContext();
  Sampler* self = FromData<Sampler>(args);
  v8::Local<v8::Array> out = v8::Array::New(isolate);
  uint32_t at = 0;
  std::lock_guard<std::mutex> lock(g_mu);
  for (auto it = g_entries.begin(); it != g_entries.end();) {
    ThreadEntry* e = it->get();
    bool gone = e->sampler == nullptr;
    if (e->sampler == self) {
      ++it;
      continue;
    }
    bool has = !e->records.empty() || !e->new_fns.empty() || e->lost > 0 || !e->error_reported;
    if (has) {
      v8::Local<v8::Object> o = v8::Object::New(isolate);
      Set(isolate, o, "key", v8::Number::New(isolate, static_cast<double>(e->key)));
      Set(isolate, o, "threadId", v8::Integer::New(isolate, e->thread_id));
      auto name = g_names.find(e->thread_id);
      Set(isolate, o, "name", Str(isolate, name == g_names.end() ? std::string() : name->second));
      v8::Local<v8::ArrayBuffer> buffer = v8::ArrayBuffer::New(isolate, e->records.size() * sizeof(uint32_t));
      if (!e->records.empty()) memcpy(buffer->GetBackingStore()->Data(), e->records.data(), e->records.size() * sizeof(uint32_t));
      Set(isolate, o, "records", v8::Uint32Array::New(buffer, 0, e->records.size()));
      v8::Local<v8::Array> fns = v8::Array::New(isolate, static_cast<int>(e->new_fns.size() * (1 + kFunctionInfoWords)));
      uint32_t i = 0;
      for (auto& [id, f] : e->new_fns) {
        fns->Set(context, i++, v8::Integer::NewFromUnsigned(isolate, id)).Check();
        AppendFunctionInfo(isolate, context, fns, &i, f);
      }
      Set(isolate, o, "fns", fns);
      v8::Local<v8::Array> labels = v8::Array::New(isolate, static_cast<int>(e->out_labels.size()));
      for (size_t k = 0; k < e->out_labels.size(); k++) {
        const std::vector<std::string>& pairs = e->out_labels[k];
        v8::Local<v8::Array> flat = v8::Array::New(isolate, static_cast<int>(pairs.size()));
        for (size_t j = 0; j < pairs.size(); j++) flat->Set(context, static_cast<uint32_t>(j), Str(isolate, pairs[j])).Check();
        labels->Set(context, static_cast<uint32_t>(k), flat).Check();
      }
      Set(isolate, o, "labels", labels);
      Set(isolate, o, "lost", v8::Number::New(isolate, static_cast<double>(e->lost)));
      Set(isolate, o, "gone", v8::Boolean::New(isolate, gone));
      Set(isolate, o, "error", Str(isolate, e->error_reported ? std::string() : e->error));
      Set(isolate, o, "code", Str(isolate, e->error_reported ? std::string() : e->code));
      out->Set(context, at++, o).Check();
      e->records.clear();
      e->records.shrink_to_fit();
      e->out_labels.clear();
      e->new_fns.clear();
      e->lost = 0;
      e->error_reported = true;
    }
    if (gone) {
      g_names.erase(e->thread_id);
      it = g_entries.erase(it);
      continue;
    }
    if (g_profile != 0 && e->joined == g_profile) RequestLocked(e);
    ++it;
  }
  args.GetReturnValue().Set(out);
}

// inProcessProfile(): whether this thread's sampler runs for the main thread's profile.
void InProcessProfile(const v8::FunctionCallbackInfo<v8::Value>& args) {
  std::lock_guard<std::mutex> lock(g_mu);
  auto e = FindLocked(FromData<Sampler>(args));
  args.GetReturnValue().Set(e && e->joined != 0 && e->joined == g_profile);
}

// processLeave(): on a Worker's own thread, before it starts a CPU profile of its own: its
// part of the main thread's profile ends here (its samples so far stay in that profile),
// and it does not rejoin that profile.
void ProcessLeave(const v8::FunctionCallbackInfo<v8::Value>& args) {
  Sampler* s = FromData<Sampler>(args);
  std::shared_ptr<ThreadEntry> e;
  uint64_t joined;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    e = FindLocked(s);
    if (!e || e->joined == 0) return;
    joined = e->joined;
  }
  s->Stop();
  Deliver(e, s, joined);
  std::lock_guard<std::mutex> lock(g_mu);
  e->joined = 0;
  e->joined_word.store(0, std::memory_order_relaxed);
  e->refused = joined;
  e->error = "this Worker started a CPU profile of its own (StartCPUProfile in the Worker) during the main thread's "
             "process profile; its samples up to then are in the process profile";
  e->code = "ERR_PROFILE_IN_USE";
  e->error_reported = false;
  g_cv.notify_all();
}

// publishLabelSet(id, [k, v, ...]): on a Worker's own thread, lib/labels.ts gave label-set
// id `id` these pairs (a retired id's pairs are replaced when it is reused).
void PublishLabelSet(const v8::FunctionCallbackInfo<v8::Value>& args) {
  v8::Isolate* isolate = args.GetIsolate();
  v8::Local<v8::Context> context = isolate->GetCurrentContext();
  uint32_t id = args[0]->Uint32Value(context).FromMaybe(0);
  if (id == 0 || !args[1]->IsArray()) return;
  v8::Local<v8::Array> flat = args[1].As<v8::Array>();
  std::vector<std::string> pairs;
  pairs.reserve(flat->Length());
  for (uint32_t k = 0; k < flat->Length(); k++) {
    v8::String::Utf8Value v(isolate, flat->Get(context, k).ToLocalChecked());
    pairs.emplace_back(*v ? std::string(*v, static_cast<size_t>(v.length())) : std::string());
  }
  std::lock_guard<std::mutex> lock(g_mu);
  if (auto e = FindLocked(FromData<Sampler>(args))) e->label_sets[id] = std::move(pairs);
}

void OnNotify(uv_async_t* handle) {
  ThreadEntry* e = static_cast<ThreadEntry*>(handle->data);
  if (!e || !e->isolate || e->on_notify.IsEmpty()) return;
  v8::Isolate* isolate = e->isolate;
  v8::HandleScope scope(isolate);
  v8::Local<v8::Context> context = e->context.Get(isolate);
  v8::Context::Scope context_scope(context);
  v8::Local<v8::Function> fn = e->on_notify.Get(isolate);
  // A top-level callback of the event loop (microtasks and nextTicks run after it).
  (void)node::MakeCallback(isolate, context->Global(), fn, 0, nullptr, node::async_context{0, 0});
}

// onProcessProfile(fn) -> Uint32Array: on a Worker's own thread: fn runs on its event loop
// whenever the thread joins or leaves a process profile, and after each hand-over
// (lib/workers.ts keeps its labels' hooks and quarantine in step with it). The array is
// one word, 1 while the thread is in a process profile.
void OnProcessProfile(const v8::FunctionCallbackInfo<v8::Value>& args) {
  v8::Isolate* isolate = args.GetIsolate();
  if (!args[0]->IsFunction()) return;
  std::shared_ptr<ThreadEntry> e;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    e = FindLocked(FromData<Sampler>(args));
  }
  if (!e || !e->env) return;
  e->on_notify.Reset(isolate, args[0].As<v8::Function>());
  e->context.Reset(isolate, isolate->GetCurrentContext());
  std::lock_guard<std::mutex> lock(g_mu);
  if (e->notify) return;
  uv_async_t* h = new uv_async_t;
  if (uv_async_init(node::GetCurrentEventLoop(isolate), h, OnNotify) != 0) {
    delete h;
    return;
  }
  h->data = e.get();
  static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t) && std::atomic<uint32_t>::is_always_lock_free,
                "the joined word is read as a plain uint32 from JS");
  // The entry outlives the thread's JS (it goes in UnregisterThread at the earliest).
  std::shared_ptr<v8::BackingStore> store = v8::ArrayBuffer::NewBackingStore(
      &e->joined_word, sizeof(uint32_t), [](void*, size_t, void*) {}, nullptr);
  args.GetReturnValue().Set(v8::Uint32Array::New(v8::ArrayBuffer::New(isolate, std::move(store)), 0, 1));
  // Never keeps the Worker alive.
  uv_unref(reinterpret_cast<uv_handle_t*>(h));
  e->notify = h;
}

}  // namespace

void RegisterThread(v8::Isolate* isolate, v8::Local<v8::Context> context, Sampler* sampler) {
  auto e = std::make_shared<ThreadEntry>();
  e->sampler = sampler;
  e->isolate = isolate;
  e->env = node::GetCurrentEnvironment(context);
  bool join;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    e->key = g_next_key++;
    g_entries.push_back(e);
    join = g_profile != 0;
  }
  // A Worker that starts during a process profile is sampled from its first line.
  if (join) Service(e);
}

void UnregisterThread(Sampler* sampler) {
  std::shared_ptr<ThreadEntry> e;
  uint64_t joined;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    e = FindLocked(sampler);
    if (!e) return;
    joined = e->joined;
  }
  // Its timer stops here, before the isolate goes away; the samples it took stay.
  if (joined != 0) {
    sampler->Stop();
    Deliver(e, sampler, joined);
  }
  e->on_notify.Reset();
  e->context.Reset();
  std::lock_guard<std::mutex> lock(g_mu);
  if (e->notify) {
    // On the thread's own loop, which closes it before the environment goes away.
    e->notify->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(e->notify), [](uv_handle_t* h) { delete reinterpret_cast<uv_async_t*>(h); });
    e->notify = nullptr;
  }
  e->label_sets.clear();
  e->joined = 0;
  e->joined_word.store(0, std::memory_order_relaxed);
  e->sampler = nullptr;
  e->env = nullptr;
  e->isolate = nullptr;
  // Nothing to hand over: forgotten now (the main thread takes the others').
  if (e->records.empty() && e->new_fns.empty() && e->lost == 0 && e->error_reported) {
    g_names.erase(e->thread_id);
    for (auto it = g_entries.begin(); it != g_entries.end(); ++it) {
      if (*it == e) {
        g_entries.erase(it);
        break;
      }
    }
  }
  g_cv.notify_all();
}

void InitWorkers(v8::Local<v8::Object> exports, v8::Local<v8::Context> context, v8::Local<v8::Value> data) {
  SetMethod(context, exports, "setThreadId", SetThreadId, data);
  SetMethod(context, exports, "setWorkerName", SetWorkerName, data);
  SetMethod(context, exports, "processStart", ProcessStart, data);
  SetMethod(context, exports, "processStop", ProcessStop, data);
  SetMethod(context, exports, "processTake", ProcessTake, data);
  SetMethod(context, exports, "inProcessProfile", InProcessProfile, data);
  SetMethod(context, exports, "processLeave", ProcessLeave, data);
  SetMethod(context, exports, "publishLabelSet", PublishLabelSet, data);
  SetMethod(context, exports, "onProcessProfile", OnProcessProfile, data);
}

}  // namespace sigprof
