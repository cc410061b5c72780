// The sampling-signal handler (a real-time signal, SampleSignal(); not SIGPROF, which
// V8's CpuProfiler owns and resets). Async-signal-safe by construction: it saves errno, touches only
// the pre-allocated ring slot and atomics of its target, calls no malloc, takes no lock,
// creates no V8 handle, uses no thread_local and logs nothing. v8::Isolate::GetStackSample
// is V8's API for exactly this context (it is what V8's own sampler calls from its
// signal handler). The system calls it makes (clock_gettime, pthread_sigmask when
// forwarding) are on POSIX's async-signal-safe list. Design notes: docs/signals-and-clocks.md.
#include "signal_handler.h"

#include <errno.h>
#include <stdlib.h>
#include <sched.h>
#include <string.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include <mutex>
#include <string>

#include "clock.h"

namespace sigprof {

namespace {

std::atomic<SignalTarget*> g_targets[kMaxTargets];
std::mutex g_targets_mu;  // also serialises every sigaction(SampleSignal()) we make

// The handler that was installed before ours, for forwarding signals that are not ours.
// The handler may run on any thread at any moment, so it never reads a struct that is
// being written: each distinct previous action gets an immutable slot, and installing
// publishes the slot's index atomically. A slot is only rewritten when it is not the
// published one and no handler is inside Forward (g_forwarding is 0), so a handler
// that loaded an older index has finished with it. -1: nothing to forward to.
constexpr int kPreviousSlots = 16;
struct sigaction g_prev_slots[kPreviousSlots];
int g_prev_used = 0;  // under g_targets_mu
std::atomic<int> g_prev_index{-1};
std::atomic<int> g_forwarding{0};

// Read by the handler instead of calling getpid(), a system call (~0.3 µs here) on every
// signal. A forked child keeps the parent's value until it starts a profile: until then it
// has no timers or helper threads of ours, so a mismatch only means "not ours".
std::atomic<pid_t> g_pid{0};

void Handler(int sig, siginfo_t* info, void* context);

bool IsOurs(const struct sigaction& sa) { return (sa.sa_flags & SA_SIGINFO) && sa.sa_sigaction == &Handler; }
// SIG_DFL and SIG_IGN share the union with sa_sigaction, so this holds whatever the flags.
bool IsNobody(const struct sigaction& sa) { return sa.sa_handler == SIG_DFL || sa.sa_handler == SIG_IGN; }

bool SameAction(const struct sigaction& a, const struct sigaction& b) {
  return a.sa_flags == b.sa_flags && reinterpret_cast<void*>(a.sa_sigaction) == reinterpret_cast<void*>(b.sa_sigaction) &&
         memcmp(&a.sa_mask, &b.sa_mask, sizeof a.sa_mask) == 0;
}

// Under g_targets_mu.
void PublishPrevious(const struct sigaction& prev) {
  if (IsNobody(prev) || IsOurs(prev)) {
    // SIG_DFL would terminate the process and SIG_IGN drops: a stray signal on our
    // real-time signal that is not ours is swallowed either way. (SampleSignal() picks
    // one nobody had a handler for, so this only concerns a program that sends it blind;
    // SIGPROF itself is not ours and keeps its default action.)
    g_prev_index.store(-1, std::memory_order_release);
    return;
  }
  int current = g_prev_index.load(std::memory_order_relaxed);
  for (int i = 0; i < g_prev_used; i++) {
    if (SameAction(g_prev_slots[i], prev)) {
      g_prev_index.store(i, std::memory_order_release);
      return;
    }
  }
  int slot;
  if (g_prev_used < kPreviousSlots) {
    slot = g_prev_used++;
  } else {
    // 16 distinct foreign handlers in one process: recycle one that is not published,
    // once no handler can still be reading it (bounded wait; else forward nothing).
    slot = (current + 1 + kPreviousSlots) % kPreviousSlots;
    int spins = 0;
    while (g_forwarding.load(std::memory_order_acquire) != 0 && spins++ < 100000) sched_yield();
    if (g_forwarding.load(std::memory_order_acquire) != 0) {
      g_prev_index.store(-1, std::memory_order_release);
      return;
    }
  }
  g_prev_slots[slot] = prev;
  g_prev_index.store(slot, std::memory_order_release);
}

// Under g_targets_mu: puts ours in place and publishes what it replaced.
bool InstallLocked() {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = &Handler;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  // V8's CpuProfiler samples on SIGPROF with a handler that walks this thread's stack as
  // ours does. Blocked while ours runs, it cannot interrupt our GetStackSample mid-walk.
  // The other way round (ours interrupting V8's handler) is harmless: our walk is
  // read-only and starts from a PC in V8's C++ handler, which yields a native-only sample.
  sigaddset(&sa.sa_mask, SIGPROF);
  struct sigaction previous;
  if (sigaction(SampleSignal(), &sa, &previous) != 0) return false;
  if (!IsOurs(previous)) PublishPrevious(previous);
  return true;
}

uint64_t ThreadCpuNsInHandler() {
  struct timespec ts;
  if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) return 0;
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

void FillRegisters(void* context, v8::RegisterState* regs) {
  ucontext_t* uc = static_cast<ucontext_t*>(context);
#if defined(__x86_64__)
  regs->pc = reinterpret_cast<void*>(uc->uc_mcontext.gregs[REG_RIP]);
  regs->sp = reinterpret_cast<void*>(uc->uc_mcontext.gregs[REG_RSP]);
  regs->fp = reinterpret_cast<void*>(uc->uc_mcontext.gregs[REG_RBP]);
#elif defined(__aarch64__)
  regs->pc = reinterpret_cast<void*>(uc->uc_mcontext.pc);
  regs->sp = reinterpret_cast<void*>(uc->uc_mcontext.sp);
  regs->fp = reinterpret_cast<void*>(uc->uc_mcontext.regs[29]);
  regs->lr = reinterpret_cast<void*>(uc->uc_mcontext.regs[30]);
#else
#error "sigprof supports x86_64 and arm64 Linux"
#endif
}

// The return address of a leaf that has built no frame. V8's walk starts from FP, which
// then still belongs to the JS caller, and drops that caller along with the leaf's
// (absent) frame: docs/symbolization.md "Frameless builtins". On x86_64 a call pushes
// the return address, so a frameless callee has it at SP; the read is bounds-checked
// against the thread's own stack, which is mapped from SP up (this handler's frame sits
// below it). On arm64 it is the link register: no memory is read.
// Not instrumented by ASan: the word at SP belongs to whatever frame was interrupted, and
// when that is C++ of an ASan build, its redzones are poisoned although the memory is
// mapped stack; V8's own stack walker is exempt in the same way.
__attribute__((no_sanitize("address")))
void* ReturnHint(const SignalTarget* t, const v8::RegisterState& regs) {
#if defined(__aarch64__)
  (void)t;
  return regs.lr;
#else
  uintptr_t sp = reinterpret_cast<uintptr_t>(regs.sp);
  if (sp < t->stack_lo || sp >= t->stack_hi || t->stack_hi - sp < sizeof(void*) || (sp & (sizeof(void*) - 1)) != 0) {
    return nullptr;
  }
  return *reinterpret_cast<void* const*>(sp);
#endif
}

void TakeSample(SignalTarget* t, SampleKind kind, uint32_t weight, void* context) {
  uint64_t start = MonotonicNs();
  t->signals.fetch_add(1, std::memory_order_relaxed);
  RawSample* s = t->ring->BeginWrite();
  // CPU counters count CPU samples only; a loop-block sample's weight is its block id.
  bool cpu = kind == SampleKind::kCpu;
  if (s == nullptr) {
    // Never wait for the consumer: the loss is reported as (lost samples) instead.
    if (cpu) {
      t->dropped.fetch_add(1, std::memory_order_relaxed);
      t->dropped_weight.fetch_add(weight, std::memory_order_relaxed);
    }
  } else {
    s->code_seq = t->code_seq->load(std::memory_order_acquire);
    v8::RegisterState regs;
    FillRegisters(context, &regs);
    v8::SampleInfo info;
    info.frames_count = 0;
    info.external_callback_entry = nullptr;
    info.vm_state = v8::OTHER;
    t->isolate->GetStackSample(regs, s->frames, kMaxFrames, &info);
    s->timestamp_ns = start;
    s->aux = kind == SampleKind::kLoopBlock ? t->loop_blocked_ns.load(std::memory_order_acquire) : 0;
    s->pc = regs.pc;
    s->return_hint = ReturnHint(t, regs);
    s->external_callback = info.external_callback_entry;
    s->weight = weight;
    s->frame_count = static_cast<uint16_t>(info.frames_count);
    s->vm_state = static_cast<uint8_t>(info.vm_state);
    s->kind = kind;
    s->label_id = t->label_id.load(std::memory_order_relaxed);
    t->ring->Publish();
    if (cpu) {
      t->samples.fetch_add(1, std::memory_order_relaxed);
      t->weight.fetch_add(weight, std::memory_order_relaxed);
    }
  }
  uint64_t took = MonotonicNs() - start;
  t->handler_ns_total.fetch_add(took, std::memory_order_relaxed);
  t->handler_calls.fetch_add(1, std::memory_order_relaxed);
  // Only this thread's handler writes max, and handlers on one thread do not nest
  // (our signal is blocked while it runs), so load+store is enough.
  if (took > t->handler_ns_max.load(std::memory_order_relaxed)) t->handler_ns_max.store(took, std::memory_order_relaxed);
}

// Calls the previous handler the way the kernel would have: with its sa_mask (and
// the signal itself unless SA_NODEFER) blocked, and SA_RESETHAND honoured by forwarding
// to it once only. Not emulated: SA_ONSTACK (we are already on whatever stack the
// kernel chose for ours) and SA_RESTART (ours has it; it applies to the interrupted call).
void Forward(int sig, siginfo_t* info, void* context) {
  g_forwarding.fetch_add(1, std::memory_order_acq_rel);
  int i = g_prev_index.load(std::memory_order_acquire);
  if (i >= 0) {
    const struct sigaction& p = g_prev_slots[i];
    int flags = p.sa_flags;
    if (flags & SA_RESETHAND) {
      int expected = i;
      g_prev_index.compare_exchange_strong(expected, -1, std::memory_order_acq_rel);
    }
    // Ours runs with its signal and SIGPROF blocked: only mask changes cost syscalls.
    bool mask = !sigisemptyset(&p.sa_mask) || (flags & SA_NODEFER);
    sigset_t old;
    if (mask) {
      pthread_sigmask(SIG_BLOCK, &p.sa_mask, &old);
      if (flags & SA_NODEFER) {
        sigset_t self;
        sigemptyset(&self);
        sigaddset(&self, sig);
        pthread_sigmask(SIG_UNBLOCK, &self, nullptr);
      }
    }
    if (flags & SA_SIGINFO) {
      if (p.sa_sigaction) p.sa_sigaction(sig, info, context);
    } else if (p.sa_handler != SIG_DFL && p.sa_handler != SIG_IGN) {
      p.sa_handler(sig);
    }
    if (mask) pthread_sigmask(SIG_SETMASK, &old, nullptr);
  }
  g_forwarding.fetch_sub(1, std::memory_order_acq_rel);
}

// Caps a CPU sample's weight by what the clock could have owed: the periods of CPU
// this thread has used since the start, less those already credited. A genuine timer
// signal always fits (it fires after its period was used); a forged one that got past
// the tag can at most move weight between stacks, never add CPU time that was not used.
uint32_t BoundWeight(SignalTarget* t, uint64_t weight) {
  uint64_t period = t->period_ns.load(std::memory_order_relaxed);
  if (period == 0) return 0;
  uint64_t now = ThreadCpuNsInHandler();
  uint64_t base = t->cpu_base_ns.load(std::memory_order_relaxed);
  uint64_t owed = now > base ? (now - base) / period : 0;
  // Only this thread's handler writes `credited` (handlers on one thread do not nest).
  uint64_t credited = t->credited.load(std::memory_order_relaxed);
  uint64_t room = owed > credited ? owed - credited : 0;
  if (weight > room) {
    // Two clocks read microseconds apart (the perf counter and the thread CPU clock) can
    // disagree by a period; the excess is credited by a later signal. More is forgery.
    if (weight > room + 1) t->rejected.fetch_add(1, std::memory_order_relaxed);
    weight = room;
  }
  if (weight > 0xffffffffull) weight = 0xffffffffull;
  t->credited.store(credited + weight, std::memory_order_relaxed);
  return static_cast<uint32_t>(weight);
}

void Handler(int sig, siginfo_t* info, void* context) {
  int saved_errno = errno;
  uint64_t value = reinterpret_cast<uint64_t>(info->si_value.sival_ptr);
  // Kernel-generated signals have si_code > 0 and cannot be forged; SI_TIMER (-2) and
  // SI_QUEUE (-1) can be set by any process that may signal us (rt_tgsigqueueinfo
  // refuses only si_code >= 0 and SI_TKILL), si_pid included. So a signal is ours only
  // with the sending path's secret; si_pid is checked too for queued ones (for SI_TIMER
  // that field is the timer id). A forger who read /proc/PID/timers has the timer tag:
  // BoundWeight limits what it can do.
  SignalTarget* t = nullptr;
  // The perf-event clock's signals are generated by the kernel (si_code POLL_IN; no
  // process can queue si_code > 0 at another) and carry no value: the target is the
  // one running on this thread whose perf fd is si_fd.
  if (info->si_code >= POLL_IN && info->si_code <= POLL_HUP) {
    t = info->si_fd >= 0 ? PerfTargetOnThisThread(info->si_fd) : nullptr;
    if (t == nullptr) {
      Forward(sig, info, context);
      errno = saved_errno;
      return;
    }
    if (t->cpu_active.load(std::memory_order_acquire)) {
      uint64_t weight = PerfEventWeight(t, info);
      uint32_t w = weight > 0 ? BoundWeight(t, weight) : 0;
      if (w > 0) TakeSample(t, SampleKind::kCpu, w, context);
    }
    errno = saved_errno;
    return;
  }
  bool kernel_timer = info->si_code == SI_TIMER;
  bool queued = info->si_code == SI_QUEUE && info->si_pid == g_pid.load(std::memory_order_relaxed);
  SampleKind kind = static_cast<SampleKind>((value >> 48) & 0xff);
  if (kernel_timer || queued) {
    int slot = static_cast<int>(value >> 56);
    t = slot < kMaxTargets ? g_targets[slot].load(std::memory_order_acquire) : nullptr;
    if (t != nullptr) {
      uint64_t secret = (kernel_timer ? t->timer_secret : t->queue_secret).load(std::memory_order_relaxed);
      bool kind_ok = kind == SampleKind::kCpu || (queued && kind == SampleKind::kLoopBlock);
      if (secret == 0 || (value & kSecretMask) != secret || !kind_ok) {
        t->rejected.fetch_add(1, std::memory_order_relaxed);
        t = nullptr;
      }
    }
  }
  if (t == nullptr) {
    Forward(sig, info, context);
    errno = saved_errno;
    return;
  }
  // A late signal after the profile stopped, or for a thread that is not the target, is
  // dropped: GetStackSample must only walk the stack of the isolate's own thread. Our
  // signals are thread-directed, so this only rejects forged ones.
  // pthread_self() is a plain read of the thread pointer, no system call (gettid() would
  // be one). Checked by disassembling glibc 2.36's pthread_self:
  //   x86_64 (/lib/x86_64-linux-gnu/libc.so.6):  mov %fs:0x10,%rax ; ret
  //   arm64  (/usr/aarch64-linux-gnu/lib/libc.so.6): mrs x0, tpidr_el0 ; sub x0, x0, #0x740 ; ret
  // (musl: the same thread-pointer read.)
  if (pthread_equal(pthread_self(), t->thread)) {
    if (kind == SampleKind::kLoopBlock) {
      uint32_t id = t->loop_block_id.exchange(0, std::memory_order_acq_rel);
      if (id != 0 && t->loop_active.load(std::memory_order_acquire)) TakeSample(t, kind, id, context);
    } else if (t->cpu_active.load(std::memory_order_acquire)) {
      uint64_t weight = kernel_timer ? CpuTimerWeight(info) : ThreadClockWeight(t);
      uint32_t w = weight > 0 ? BoundWeight(t, weight) : 0;
      if (w > 0) TakeSample(t, kind, w, context);
    }
  }
  errno = saved_errno;
}

}  // namespace

SignalTarget* PerfTargetOnThisThread(int fd) {
  pthread_t self = pthread_self();
  for (int i = 0; i < kMaxTargets; i++) {
    SignalTarget* c = g_targets[i].load(std::memory_order_acquire);
    if (c == nullptr || !pthread_equal(self, c->thread)) continue;
    int armed = c->perf_fd.load(std::memory_order_acquire);
    if (armed >= 0 && (fd < 0 || armed == fd)) return c;
  }
  return nullptr;
}

void CountLostPeriod(SignalTarget* t) {
  if (!t->cpu_active.load(std::memory_order_acquire) || BoundWeight(t, 1) == 0) return;
  t->dropped.fetch_add(1, std::memory_order_relaxed);
  t->dropped_weight.fetch_add(1, std::memory_order_relaxed);
}

uint64_t MonotonicNs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);  // async-signal-safe (POSIX list)
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

uint64_t NewSecret() {
  uint64_t v = 0;
  for (int tries = 0; tries < 8 && (v & kSecretMask) == 0; tries++) {
    ssize_t n = getrandom(&v, sizeof v, 0);
    if (n != static_cast<ssize_t>(sizeof v)) {
      // getrandom is in every kernel Node supports; this only covers a seccomp that
      // blocks it. Not cryptographic, but not guessable by a process that cannot read ours.
      v ^= MonotonicNs() * 0x9e3779b97f4a7c15ull ^ reinterpret_cast<uintptr_t>(&v);
    }
  }
  v &= kSecretMask;
  return v ? v : 1;
}

int RegisterTarget(SignalTarget* target) {
  std::lock_guard<std::mutex> lock(g_targets_mu);
  for (int i = 0; i < kMaxTargets; i++) {
    if (g_targets[i].load(std::memory_order_relaxed) == nullptr) {
      g_targets[i].store(target, std::memory_order_release);
      return i;
    }
  }
  return -1;
}

void UnregisterTarget(int slot) {
  if (slot < 0 || slot >= kMaxTargets) return;
  std::lock_guard<std::mutex> lock(g_targets_mu);
  g_targets[slot].store(nullptr, std::memory_order_release);
}

namespace {
// Chosen once per process, before any handler of ours exists: -1 until then.
std::atomic<int> g_signal{-1};
std::string g_signal_error;
const char* g_signal_code = nullptr;

// Whether the kernel (or what stands for it) takes `sig` as a timer's signal. Under
// qemu-user the top real-time signals are qemu's own: timer_create answers EINVAL for
// 63 and 64 there, which a real arm64 or x86_64 kernel never does. The timer is never armed.
bool TimerAccepts(int sig) {
  struct sigevent sev;
  memset(&sev, 0, sizeof sev);
  sev.sigev_notify = SIGEV_SIGNAL;
  sev.sigev_signo = sig;
  timer_t timer;
  if (timer_create(CLOCK_MONOTONIC, &sev, &timer) != 0) return errno != EINVAL;
  timer_delete(timer);
  return true;
}

// Under g_targets_mu.
bool ChooseSignalLocked(std::string* error, const char** code) {
  if (g_signal.load(std::memory_order_relaxed) > 0) return true;
  if (g_signal_code) {
    *error = g_signal_error;
    *code = g_signal_code;
    return false;
  }
  // glibc's SIGRTMIN already skips the two it keeps for itself (NPTL cancellation, setxid).
  int lo = SIGRTMIN, hi = SIGRTMAX;
  const char* forced = getenv("SIGPROF_SIGNAL");
  int chosen = -1;
  if (forced && *forced) {
    char* end = nullptr;
    errno = 0;
    long n = strtol(forced, &end, 10);
    if (errno != 0 || end == forced || *end != '\0' || n < lo || n > hi) {
      g_signal_error = std::string("SIGPROF_SIGNAL must be a real-time signal number from ") + std::to_string(lo) +
                       " (SIGRTMIN) to " + std::to_string(hi) + " (SIGRTMAX) (got " + forced + ")";
      g_signal_code = "ERR_INVALID_SIGNAL";
    } else {
      chosen = static_cast<int>(n);
    }
  } else {
    // The highest real-time signal nobody has a handler for and this thread does not
    // block. Libraries that take one usually count up from SIGRTMIN; counting down
    // keeps out of their way.
    sigset_t blocked;
    pthread_sigmask(SIG_BLOCK, nullptr, &blocked);
    for (int sig = hi; sig >= lo && chosen < 0; sig--) {
      struct sigaction current;
      if (sigaction(sig, nullptr, &current) != 0) continue;
      if (!(current.sa_flags & SA_SIGINFO) && current.sa_handler == SIG_DFL && !sigismember(&blocked, sig) &&
          TimerAccepts(sig)) {
        chosen = sig;
      }
    }
    if (chosen < 0) {
      g_signal_error = "no free real-time signal for sampling: every one from SIGRTMIN to SIGRTMAX has a handler or is "
                       "blocked (set SIGPROF_SIGNAL to choose one)";
      g_signal_code = "ERR_NO_SIGNAL";
    }
  }
  if (chosen < 0) {
    *error = g_signal_error;
    *code = g_signal_code;
    return false;
  }
  g_signal.store(chosen, std::memory_order_release);
  return true;
}
}  // namespace

int SampleSignal() { return g_signal.load(std::memory_order_acquire); }

bool EnsureSignalHandler(bool* foreign_below, std::string* error, const char** code) {
  std::lock_guard<std::mutex> lock(g_targets_mu);
  if (!ChooseSignalLocked(error, code)) return false;
  // Refreshed at every start: a forked child that profiles has a new pid.
  g_pid.store(getpid(), std::memory_order_relaxed);
  struct sigaction current;
  if (sigaction(SampleSignal(), nullptr, &current) != 0) {
    *error = std::string("could not install the sampling signal handler: ") + strerror(errno);
    *code = "ERR_SIGNAL_HANDLER";
    return false;
  }
  if (!IsOurs(current) && !InstallLocked()) {
    *error = std::string("could not install the sampling signal handler: ") + strerror(errno);
    *code = "ERR_SIGNAL_HANDLER";
    return false;
  }
  *foreign_below = g_prev_index.load(std::memory_order_acquire) >= 0;
  return true;
}

Disposition RepairSignalHandler() {
  int sig = SampleSignal();
  if (sig <= 0) return Disposition::kNobody;
  struct sigaction current;
  // The common case without the lock: one system call (~0.3 µs).
  if (sigaction(sig, nullptr, &current) != 0) return Disposition::kForeign;
  if (IsOurs(current)) return Disposition::kOurs;
  if (!IsNobody(current)) return Disposition::kForeign;
  std::lock_guard<std::mutex> lock(g_targets_mu);
  if (sigaction(sig, nullptr, &current) != 0) return Disposition::kForeign;
  if (IsOurs(current)) return Disposition::kOurs;
  if (!IsNobody(current)) return Disposition::kForeign;
  return InstallLocked() ? Disposition::kOurs : Disposition::kNobody;
}

int QueueSignal(pid_t tid, uint64_t value) {
  siginfo_t si;
  memset(&si, 0, sizeof si);
  int sig = SampleSignal();
  if (sig <= 0) return EINVAL;
  si.si_signo = sig;
  si.si_code = SI_QUEUE;
  si.si_pid = getpid();
  si.si_uid = getuid();
  si.si_value.sival_ptr = reinterpret_cast<void*>(value);
  if (syscall(SYS_rt_tgsigqueueinfo, getpid(), tid, sig, &si) != 0) return errno;
  return 0;
}

}  // namespace sigprof
