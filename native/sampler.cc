#include "sampler.h"

#include "native_symbols.h"

#include <node.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>

namespace sigprof {

namespace {
// CPU-clock timers fire on kernel ticks (CONFIG_HZ, 250/s here); above this rate the
// helper thread is the fallback so that more samples, not just heavier ones, are taken.
constexpr double kMaxTimerHz = 200;
// 1024 slots of ~2 KiB: 10 s of samples at 100 Hz, 0.2 s at 5 kHz.
constexpr size_t kRingSlots = 1024;
// The collector wakes often enough that the ring is at most a quarter full at the
// requested rate (no rate delivers more samples than it asks for), and no more often:
// every wake-up is a context switch taken from the other core, which in production is
// serving requests. 500 ms at 100 Hz, 256 ms at 1 kHz, 10 ms from 25.6 kHz up.
std::chrono::microseconds CollectInterval(double hz) {
  double us = 1e6 * static_cast<double>(kRingSlots) / 4.0 / hz;
  if (us > 500000.0) us = 500000.0;
  if (us < 10000.0) us = 10000.0;
  return std::chrono::microseconds(static_cast<int64_t>(us));
}
// Samples resolved per hold of the code-map lock: JIT and GC threads wait on it.
constexpr int kResolveBatch = 32;

// The calling thread's stack, for the handler's one read outside its own memory. For the
// main thread glibc derives it from RLIMIT_STACK and /proc/self/maps: [lo, hi) may hold
// pages not mapped yet below the deepest SP so far, never above an SP the thread is at.
void StackBounds(uintptr_t* lo, uintptr_t* hi) {
  *lo = *hi = 0;
  pthread_attr_t attr;
  if (pthread_getattr_np(pthread_self(), &attr) != 0) return;
  void* addr = nullptr;
  size_t size = 0;
  if (pthread_attr_getstack(&attr, &addr, &size) == 0 && addr != nullptr) {
    *lo = reinterpret_cast<uintptr_t>(addr);
    *hi = *lo + size;
  }
  pthread_attr_destroy(&attr);
}

// A code object that holds JS code compiled to machine code (Sparkplug, Maglev, TurboFan):
// only the JS tags carry a tier marker; builtins, stubs and regexps have none.
bool IsJsMachineCode(const CodeEntry* e) {
  return e && e->tier != 0 && e->code_type != v8::JitCodeEvent::BYTE_CODE && !e->interpreter_machinery;
}
}  // namespace

Sampler::Sampler(v8::Isolate* isolate) : isolate_(isolate), code_map_(isolate) {
  // Listening from load on means StartCPUProfile never pays for enumerating code, and
  // code compiled from now on comes with line tables. It costs compile time (see README),
  // so SIGPROF_CODE_EVENTS=lazy defers it to the first profile, trading line tables of
  // the code compiled before then.
  const char* mode = getenv("SIGPROF_CODE_EVENTS");
  if (!(mode && strcmp(mode, "lazy") == 0)) code_map_.Listen();
  // Reserved now so starting a profile costs no allocation; untouched pages cost no memory.
  ring_ = std::make_unique<SampleRing>(kRingSlots);
}

Sampler::~Sampler() {
  Stop();
  watchdog_.reset();
  UnregisterTarget(slot_);
  code_map_.StopListening();
}

bool Sampler::EnsureTarget(std::string* error, bool* foreign_below) {
  if (slot_ < 0) {
    target_.isolate = isolate_;
    target_.tid = static_cast<pid_t>(syscall(SYS_gettid));
    target_.thread = pthread_self();
    StackBounds(&target_.stack_lo, &target_.stack_hi);
    target_.ring = ring_.get();
    target_.code_seq = code_map_.seq_counter();
    slot_ = RegisterTarget(&target_);
    if (slot_ < 0) {
      *error = "too many threads are being profiled: at most " + std::to_string(kMaxTargets) +
               " threads (main thread and Workers) can use sigprof's CPU or event-loop profiling at once";
      error_code_ = "ERR_TOO_MANY_THREADS";
      return false;
    }
  }
  if (!EnsureSignalHandler(foreign_below, error, &error_code_)) return false;
  return true;
}

// Dead code is kept for samples still on their way while anything samples.
void Sampler::UpdateHistory() {
  code_map_.SetKeepHistory(running_ || (watchdog_ && watchdog_->running()));
}

bool Sampler::Start(double hz, std::string* error) {
  error_code_ = nullptr;
  if (running_) {
    *error = "a CPU profile is already running";
    error_code_ = "ERR_PROFILE_IN_USE";
    return false;
  }
  // The TypeScript side validates too; this keeps 1e9 / hz a representable period.
  if (!(hz >= 1 && hz <= 1e6)) {
    *error = "the CPU profile rate must be from 1 to 1000000 Hz";
    error_code_ = "ERR_INVALID_RATE";
    return false;
  }
  const char* forced = getenv("SIGPROF_CLOCK");
  ClockKind want = ClockKind::kNone;  // auto
  if (forced && *forced && strcmp(forced, "auto") != 0) {
    if (strcmp(forced, "perf-event") == 0 || strcmp(forced, "perf") == 0) want = ClockKind::kPerfEvent;
    else if (strcmp(forced, "timer") == 0) want = ClockKind::kCpuTimer;
    else if (strcmp(forced, "thread") == 0) want = ClockKind::kThread;
    else {
      *error = std::string("SIGPROF_CLOCK must be auto, perf-event, timer or thread (got ") + forced + ")";
      error_code_ = "ERR_INVALID_CLOCK";
      return false;
    }
  }
  bool foreign_below = false;
  if (!EnsureTarget(error, &foreign_below)) return false;
  code_map_.Listen();
  clockid_t clock;
  if (pthread_getcpuclockid(pthread_self(), &clock) != 0) {
    *error = "pthread_getcpuclockid failed";
    return false;
  }
  for (auto* c : {&target_.signals, &target_.samples, &target_.weight, &target_.dropped, &target_.dropped_weight,
                  &target_.handler_ns_total, &target_.handler_ns_max, &target_.handler_calls, &target_.credited,
                  &target_.foreign_lost_weight, &target_.rejected}) {
    c->store(0, std::memory_order_relaxed);
  }
  frames_ = 0;
  unresolved_frames_ = 0;
  truncated_ = 0;
  {
    std::lock_guard<std::mutex> lock(out_mu_);
    out_.clear();
  }
  code_map_.SetKeepHistory(true);
  collector_stop_ = false;
  collector_cpu_ns_.store(0, std::memory_order_relaxed);
  collector_ = std::thread(&Sampler::CollectorLoop, this, CollectInterval(hz));
  uint64_t period_ns = static_cast<uint64_t>(1e9 / hz);  // 1000 .. 1e9: hz is in [1, 1e6]
  // Kernel-driven clocks (perf event, CPU timer) cannot look before they fire. Under a
  // foreign handler on our real-time signal (only when SIGPROF_SIGNAL chose a taken one:
  // it may restore SIG_DFL, which kills) only the helper thread, which checks the
  // disposition before each signal, is safe at any rate; this overrides SIGPROF_CLOCK.
  if (foreign_below) want = ClockKind::kThread;
  target_.pending_weight.store(0, std::memory_order_relaxed);
  target_.period_ns.store(period_ns, std::memory_order_relaxed);
  target_.cpu_base_ns.store(ThreadCpuNs(), std::memory_order_relaxed);
  // Fresh tags for this start. The watchdog shares the queue tag; keep it while it runs.
  if (!(watchdog_ && watchdog_->running())) target_.queue_secret.store(NewSecret(), std::memory_order_relaxed);
  target_.timer_secret.store(NewSecret(), std::memory_order_relaxed);
  target_.cpu_active.store(true, std::memory_order_release);
  // Auto: the perf event at every rate where it can start; else the CPU timer up to
  // 200 Hz (it fires on kernel ticks: above that it would take heavier samples, not
  // more) and the helper thread above, or when the timer cannot start either. The perf
  // event costs a server that blocks and wakes often more than the timer (it is
  // switched with the thread) and counts user-mode CPU only, but it is the one clock
  // whose samples stay where the thread was when the machine is loaded: under CPU
  // contention the timer's periods merge into fewer, heavier samples, once 11 points
  // off on a system-call workload (docs/signals-and-clocks.md, "Which clock when").
  std::vector<ClockKind> order;
  if (want != ClockKind::kNone) order = {want};
  else if (hz <= kMaxTimerHz) order = {ClockKind::kPerfEvent, ClockKind::kCpuTimer, ClockKind::kThread};
  else order = {ClockKind::kPerfEvent, ClockKind::kThread};
  bool started = false;
  std::string tried;
  for (ClockKind kind : order) {
    std::string why;
    uint64_t value = 0;
    if (kind == ClockKind::kPerfEvent) {
      clock_ = NewPerfEventClock();
    } else {
      bool thread = kind == ClockKind::kThread;
      clock_ = thread ? NewThreadClock() : NewCpuTimerClock();
      value = SignalValue(slot_, SampleKind::kCpu,
                          (thread ? target_.queue_secret : target_.timer_secret).load(std::memory_order_relaxed));
    }
    started = clock_->Start(&target_, clock, period_ns, value, &why);
    if (started) break;
    if (!tried.empty()) tried += "; ";
    tried += why;
  }
  if (!started) {
    *error = tried;
    clock_.reset();
    if (!error_code_) error_code_ = "ERR_CLOCK_UNAVAILABLE";
    target_.cpu_active.store(false, std::memory_order_release);
    {
      std::lock_guard<std::mutex> lock(collector_mu_);
      collector_stop_ = true;
    }
    collector_cv_.notify_all();
    collector_.join();
    UpdateHistory();
    return false;
  }
  hz_ = hz;
  clock_kind_ = clock_->kind();
  start_ns_ = MonotonicNs();
  stop_ns_ = 0;
  running_ = true;
  return true;
}

void Sampler::Stop() {
  if (!running_) return;
  uint64_t lost = clock_->Stop();
  helper_cpu_ns_ = clock_->helper_cpu_ns();
  target_.foreign_lost_weight.fetch_add(lost, std::memory_order_relaxed);
  // A signal already pending for this thread finds cpu_active false and does nothing.
  target_.cpu_active.store(false, std::memory_order_release);
  stop_ns_ = MonotonicNs();
  {
    std::lock_guard<std::mutex> lock(collector_mu_);
    collector_stop_ = true;
  }
  collector_cv_.notify_all();
  collector_.join();
  CollectOnce();
  running_ = false;
  UpdateHistory();
}

bool Sampler::StartLoopWatchdog(uint64_t threshold_ns, std::string* error) {
  error_code_ = nullptr;
  bool foreign_below = false;  // the watchdog checks before every signal it sends
  if (!EnsureTarget(error, &foreign_below)) return false;
  if (!running_ && !(watchdog_ && watchdog_->running())) target_.queue_secret.store(NewSecret(), std::memory_order_relaxed);
  code_map_.Listen();
  if (!watchdog_) {
    uv_loop_t* loop = node::GetCurrentEventLoop(isolate_);
    if (!loop) {
      *error = "no event loop for this isolate";
      return false;
    }
    watchdog_ = std::make_unique<LoopWatchdog>(loop, &target_, slot_);
  }
  watchdog_->Start(threshold_ns);
  UpdateHistory();
  return true;
}

void Sampler::StopLoopWatchdog() {
  if (watchdog_) watchdog_->Stop();
  UpdateHistory();
}

std::vector<uint32_t> Sampler::TakeLoopRecords() {
  RepairSignalHandler();  // the JS thread checks at every drain too
  CollectOnce();
  std::lock_guard<std::mutex> lock(out_mu_);
  std::vector<uint32_t> records;
  records.swap(loop_out_);
  return records;
}

std::vector<uint64_t> Sampler::TakeLoopDurations() {
  return watchdog_ ? watchdog_->TakeDurations() : std::vector<uint64_t>();
}

void Sampler::CollectorLoop(std::chrono::microseconds every) {
  // Here rather than in Start(): populating 2 MiB takes about a millisecond.
  if (!ring_prefaulted_) {
    ring_->Prefault();
    ring_prefaulted_ = true;
  }
  // The executable's symbol table (~86k functions for node) is read here, once per
  // process, rather than under the code-map lock at the first native frame.
  NativeSymbols::Get().PreloadExecutable();
  std::unique_lock<std::mutex> lock(collector_mu_);
  while (!collector_stop_) {
    collector_cv_.wait_for(lock, every, [this] { return collector_stop_; });
    lock.unlock();
    // Puts ours back if another profiler left SIG_DFL behind (a kernel timer of ours
    // may fire any moment); the helper thread and the watchdog also check before sending.
    RepairSignalHandler();
    CollectOnce();
    collector_cpu_ns_.store(ThreadCpuNs(), std::memory_order_relaxed);
    lock.lock();
  }
}

void Sampler::CollectOnce() {
  if (!ring_) return;
  std::lock_guard<std::mutex> consume(consume_mu_);
  std::vector<uint32_t> batch, loop_batch;
  std::vector<ResolvedFrame> scratch;
  uint64_t min_seq = 0;
  for (bool more = true; more;) {
    auto lock = code_map_.Lock();
    min_seq = code_map_.seq();
    more = false;
    for (int n = 0; const RawSample* s = ring_->Peek(); n++) {
      if (n == kResolveBatch) {
        more = true;
        break;
      }
      scratch.clear();
      ResolveSample(*s, &scratch);
      std::vector<uint32_t>& out = s->kind == SampleKind::kLoopBlock ? loop_batch : batch;
      out.push_back(static_cast<uint32_t>(scratch.size()));
      out.push_back(s->weight);
      out.push_back(static_cast<uint32_t>(s->vm_state) | (static_cast<uint32_t>(s->kind) << 8) |
                    (s->frame_count > 0 ? 1u << 16 : 0u));
      uint64_t aux_us = s->aux / 1000;
      out.push_back(aux_us > 0xffffffffull ? 0xffffffffu : static_cast<uint32_t>(aux_us));
      out.push_back(s->label_id);
      for (const ResolvedFrame& f : scratch) {
        out.push_back(f.fn);
        out.push_back(static_cast<uint32_t>(f.pos));
      }
      ring_->Pop();
    }
    if (const RawSample* oldest = ring_->Peek()) min_seq = oldest->code_seq;
  }
  // Dead code older than every pending sample can no longer be asked for.
  code_map_.PruneHistory(min_seq);
  if (batch.empty() && loop_batch.empty()) return;
  std::lock_guard<std::mutex> lock(out_mu_);
  out_.insert(out_.end(), batch.begin(), batch.end());
  loop_out_.insert(loop_out_.end(), loop_batch.begin(), loop_batch.end());
}

// The PC is in a builtin, a stub or interpreter machinery. If that code built no frame,
// FP is still its JS caller's, and V8's walk, which drops the frame at FP as the leaf's
// own, lost that caller; the caller's return address is then the handler's return hint.
// Taken only when it lies in JS machine code and not in the code V8's first frame is in:
// a builtin that did build a frame has V8's first frame in its JS caller already, and
// whatever sits at its SP is not trusted to name another. The cost is a frameless
// builtin under a recursive caller (the caller's frame stays missing, as before), never
// a frame that was not there.
// `unbuilt`: the PC is in JS code where its own frame certainly does not exist
// (CodeMap::FrameAt). Then V8 dropped the caller for sure and the hint is its
// return address: a JS caller is named from it whatever V8's first frame is, and a
// caller that cannot be named (interpreted: the hint is into interpreter machinery,
// and its frame's function could only be read from V8's frame layout; or a builtin)
// leaves a (missing frame) rather than a call from the caller's caller.
void Sampler::RecoverFramelessCaller(const RawSample& s, bool unbuilt, std::vector<ResolvedFrame>* out) {
  if (s.frame_count == 0) return;
  uintptr_t ret = reinterpret_cast<uintptr_t>(s.return_hint);
  const CodeEntry* caller = ret ? code_map_.FindLocked(ret - 1, s.code_seq) : nullptr;
  if (!IsJsMachineCode(caller)) {
    if (unbuilt) out->push_back({code_map_.MissingFrameFunction(), -1});
    return;
  }
  if (!unbuilt) {
    uintptr_t first = reinterpret_cast<uintptr_t>(s.frames[0]);
    if (first == ret) return;  // V8 walked it itself
    const CodeEntry* walked = code_map_.FindLocked(code_map_.TranslateRemapped(first) - 1, s.code_seq);
    if (walked == caller) return;
  }
  code_map_.ResolveLocked(ret, s.code_seq, true, out);
}

void Sampler::ResolveSample(const RawSample& s, std::vector<ResolvedFrame>* out) {
  uint64_t seq = s.code_seq;
  bool native_leaf = false;
  if (s.vm_state == v8::EXTERNAL && s.external_callback) {
    out->push_back({code_map_.NativeFunctionLocked(reinterpret_cast<uintptr_t>(s.external_callback)), -1});
    native_leaf = true;
  }
  // When the PC is in JIT code, GetStackSample's frames start at the caller: the leaf
  // comes from the PC, as in V8's own sampler. In the interpreter, frames[0] already is
  // the interpreted function.
  uintptr_t pc = code_map_.TranslateRemapped(reinterpret_cast<uintptr_t>(s.pc));
  const CodeEntry* leaf = code_map_.FindLocked(pc, seq);
  if (leaf && !leaf->interpreter_machinery && leaf->code_type != v8::JitCodeEvent::BYTE_CODE) {
    code_map_.ResolveLocked(reinterpret_cast<uintptr_t>(s.pc), seq, false, out);
    // A JS function in its prologue has not built its frame either: V8 takes its caller's
    // frame for the leaf's and names the caller's caller next, a call that never happened
    // (seen: `spinBody <- loop` with spinBody at its first line, once in ~40 runs of the
    // two-level inlining test, where the caller workerAlpha ran as code of its own; and
    // `workerBeta <- loop3` at depth 3, where the caller workerAlpha3 was interpreted).
    CodeMap::Frame frame = leaf->tier == 0 ? CodeMap::Frame::kMaybe : CodeMap::FrameAt(*leaf, pc);
    if (frame != CodeMap::Frame::kBuilt) RecoverFramelessCaller(s, frame == CodeMap::Frame::kNotBuilt, out);
  } else if (leaf && leaf->interpreter_machinery) {
    // Not shown (its time is the JS function's), but it may have dropped that function:
    // Sparkplug code calls frameless *_Baseline builtins for most operations.
    RecoverFramelessCaller(s, false, out);
  } else if (!leaf && !native_leaf && s.frame_count > 0) {
    // V8 12+ reports API callbacks in the JS state without the callback's address: a PC
    // in C++ on top of JS frames is named by its symbol when it has one.
    uint32_t fn = code_map_.SymbolFunctionLocked(pc);
    if (fn != CodeMap::kUnknownFunction) out->push_back({fn, -1});
  }
  // A stack that filled the capture buffer lost its outermost frames: the profile keeps
  // kKeptFrames and says so with a (truncated) root, so that the missing callers read as
  // missing rather than as a complete stack.
  bool truncated = s.frame_count > kKeptFrames;
  uint16_t kept = truncated ? static_cast<uint16_t>(kKeptFrames) : s.frame_count;
  for (uint16_t i = 0; i < kept; i++) {
    code_map_.ResolveLocked(reinterpret_cast<uintptr_t>(s.frames[i]), seq, true, out);
  }
  if (truncated) {
    out->push_back({code_map_.TruncatedFunction(), -1});
    if (s.kind == SampleKind::kCpu) truncated_.fetch_add(1, std::memory_order_relaxed);
  }
  uint64_t unresolved = 0;
  for (const ResolvedFrame& f : *out) unresolved += f.fn == CodeMap::kUnknownFunction;
  frames_.fetch_add(out->size(), std::memory_order_relaxed);
  unresolved_frames_.fetch_add(unresolved, std::memory_order_relaxed);
}

std::vector<uint32_t> Sampler::TakeRecords(bool flush) {
  // While running, the collector thread resolves; the JS thread only takes the result
  // (Stop() collects the rest before the final take), unless asked to flush: then it
  // resolves the ring's backlog itself (at most a quarter ring; consume_mu_ orders it
  // with the collector), as TakeLoopRecords does.
  if (running_) RepairSignalHandler();
  if (!running_ || flush) CollectOnce();
  std::lock_guard<std::mutex> lock(out_mu_);
  std::vector<uint32_t> records;
  records.swap(out_);
  return records;
}

size_t Sampler::RawStack(void** frames, size_t limit) {
  // Called from a native function, so V8 is in EXTERNAL state with an exit frame: it
  // walks from that frame, and our registers only need to be plausible.
  v8::RegisterState regs;
  regs.pc = __builtin_return_address(0);
  regs.sp = __builtin_frame_address(0);
  regs.fp = __builtin_frame_address(0);
  v8::SampleInfo info;
  info.frames_count = 0;
  isolate_->GetStackSample(regs, frames, limit, &info);
  return info.frames_count;
}

Sampler::Stats Sampler::GetStats() const {
  Stats s;
  s.signals = target_.signals.load(std::memory_order_relaxed);
  s.samples = target_.samples.load(std::memory_order_relaxed);
  s.weight = target_.weight.load(std::memory_order_relaxed);
  s.dropped = target_.dropped.load(std::memory_order_relaxed);
  s.dropped_weight = target_.dropped_weight.load(std::memory_order_relaxed);
  s.foreign_lost_weight = target_.foreign_lost_weight.load(std::memory_order_relaxed);
  s.loop_withheld = target_.loop_withheld.load(std::memory_order_relaxed);
  s.rejected = target_.rejected.load(std::memory_order_relaxed);
  s.handler_calls = target_.handler_calls.load(std::memory_order_relaxed);
  s.handler_ns_total = target_.handler_ns_total.load(std::memory_order_relaxed);
  s.handler_ns_max = target_.handler_ns_max.load(std::memory_order_relaxed);
  s.frames = frames_.load(std::memory_order_relaxed);
  s.unresolved_frames = unresolved_frames_.load(std::memory_order_relaxed);
  s.truncated = truncated_.load(std::memory_order_relaxed);
  s.start_ns = start_ns_;
  s.stop_ns = stop_ns_;
  s.collector_cpu_ns = collector_cpu_ns_.load(std::memory_order_relaxed);
  s.helper_cpu_ns = running_ && clock_ ? clock_->helper_cpu_ns() : helper_cpu_ns_;
  s.hz = hz_;
  s.clock = clock_kind_;
  return s;
}

}  // namespace sigprof
