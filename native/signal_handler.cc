// The SIGPROF handler. Async-signal-safe by construction: it saves errno, touches only
// the pre-allocated ring slot and atomics of its target, calls no malloc, takes no lock,
// creates no V8 handle, uses no thread_local and logs nothing. v8::Isolate::GetStackSample
// is V8's API for exactly this context (it is what V8's own sampler calls from its
// signal handler).
#include "signal_handler.h"

#include <errno.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include <mutex>

namespace sigprof {

namespace {

std::atomic<SignalTarget*> g_targets[kMaxTargets];
std::mutex g_targets_mu;
struct sigaction g_previous;
std::atomic<bool> g_have_previous{false};
// Read by the handler instead of calling getpid(), a system call (~0.3 µs here) on every
// signal. A forked child keeps the parent's value until it starts a profile: until then it
// has no timers or helper threads of ours, so a mismatch only means "not ours".
std::atomic<pid_t> g_pid{0};

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
  // (SIGPROF is blocked while it runs), so load+store is enough.
  if (took > t->handler_ns_max.load(std::memory_order_relaxed)) t->handler_ns_max.store(took, std::memory_order_relaxed);
}

void Forward(int sig, siginfo_t* info, void* context) {
  if (!g_have_previous.load(std::memory_order_acquire)) return;
  if (g_previous.sa_flags & SA_SIGINFO) {
    if (g_previous.sa_sigaction) g_previous.sa_sigaction(sig, info, context);
  } else if (g_previous.sa_handler != SIG_DFL && g_previous.sa_handler != SIG_IGN && g_previous.sa_handler) {
    g_previous.sa_handler(sig);
  }
  // SIG_DFL would terminate the process; a stray SIGPROF is not worth dying for.
}

void Handler(int sig, siginfo_t* info, void* context) {
  int saved_errno = errno;
  uint64_t value = reinterpret_cast<uint64_t>(info->si_value.sival_ptr);
  bool from_us = info->si_code == SI_TIMER ||
                 (info->si_code == SI_QUEUE && info->si_pid == g_pid.load(std::memory_order_relaxed));
  if (!from_us || (value >> 48) != kSignalMagic) {
    Forward(sig, info, context);
    errno = saved_errno;
    return;
  }
  int slot = static_cast<int>((value >> 32) & 0xff);
  SampleKind kind = static_cast<SampleKind>((value >> 40) & 0xff);
  uint32_t weight = static_cast<uint32_t>(value & 0xffffffffu);
  if (info->si_code == SI_TIMER) weight = 1 + static_cast<uint32_t>(info->si_overrun);
  SignalTarget* t = slot < kMaxTargets ? g_targets[slot].load(std::memory_order_acquire) : nullptr;
  // A late signal after the profile stopped, or for a thread that is not the target, is
  // dropped: GetStackSample must only walk the stack of the isolate's own thread. Our
  // signals are thread-directed, so this only rejects forged ones; pthread_self() is a
  // read of the thread pointer (glibc, musl), where gettid() would be a system call.
  if (t != nullptr && pthread_equal(pthread_self(), t->thread)) {
    if (weight == 0 && kind == SampleKind::kCpu) {
      uint64_t owed = t->pending_weight.exchange(0, std::memory_order_acq_rel);
      weight = owed > 0xffffffffull ? 0xffffffffu : static_cast<uint32_t>(owed);
    }
    bool active = kind == SampleKind::kLoopBlock ? t->loop_active.load(std::memory_order_acquire)
                                                  : t->cpu_active.load(std::memory_order_acquire);
    if (active && weight > 0) TakeSample(t, kind, weight, context);
  }
  errno = saved_errno;
}

}  // namespace

uint64_t MonotonicNs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);  // async-signal-safe (POSIX list)
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
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

bool EnsureSignalHandler() {
  std::lock_guard<std::mutex> lock(g_targets_mu);
  // Refreshed at every start: a forked child that profiles has a new pid.
  g_pid.store(getpid(), std::memory_order_relaxed);
  struct sigaction current;
  if (sigaction(SIGPROF, nullptr, &current) != 0) return false;
  if ((current.sa_flags & SA_SIGINFO) && current.sa_sigaction == &Handler) return true;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = &Handler;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  struct sigaction previous;
  if (sigaction(SIGPROF, &sa, &previous) != 0) return false;
  g_previous = previous;
  g_have_previous.store(true, std::memory_order_release);
  return true;
}

int QueueSignal(pid_t tid, uint64_t value) {
  siginfo_t si;
  memset(&si, 0, sizeof si);
  si.si_signo = SIGPROF;
  si.si_code = SI_QUEUE;
  si.si_pid = getpid();
  si.si_uid = getuid();
  si.si_value.sival_ptr = reinterpret_cast<void*>(value);
  if (syscall(SYS_rt_tgsigqueueinfo, getpid(), tid, SIGPROF, &si) != 0) return errno;
  return 0;
}

}  // namespace sigprof
