// The sampling-signal handler and the little it needs: a per-thread target holding pre-allocated
// memory and atomics only.
#pragma once
#include <pthread.h>
#include <signal.h>
#include <sys/types.h>
#include <v8.h>

#include <atomic>
#include <cstdint>
#include <string>

#include "ring_buffer.h"

namespace sigprof {

// Everything the handler reads or writes. Owned by a Sampler; registered in a fixed
// slot table so a signal names its target by slot number, never by raw pointer.
struct SignalTarget {
  v8::Isolate* isolate = nullptr;
  pid_t tid = 0;
  pthread_t thread{};  // the same thread, compared in the handler without a syscall
  // The thread's stack, [stack_lo, stack_hi), taken once on that thread: the only memory
  // the handler reads that it does not own (the word at the interrupted SP).
  uintptr_t stack_lo = 0, stack_hi = 0;
  SampleRing* ring = nullptr;
  const std::atomic<uint64_t>* code_seq = nullptr;
  std::atomic<bool> cpu_active{false};
  std::atomic<bool> loop_active{false};
  std::atomic<uint64_t> loop_blocked_ns{0};  // written by the loop watchdog before it signals
  std::atomic<uint32_t> loop_block_id{0};    // the block the watchdog asks a stack for (0: none)
  std::atomic<uint64_t> pending_weight{0};   // CPU periods owed by the helper-thread clock
  std::atomic<int> perf_fd{-1};              // the perf-event clock's fd while it runs

  // Tags a signal must carry to be taken as ours (48 random bits each, from getrandom
  // when a profile starts; see SignalValue). The kernel-timer tag is readable by anyone
  // in /proc/PID/timers, so it gets its own secret and the weight bound below.
  std::atomic<uint64_t> queue_secret{0};
  std::atomic<uint64_t> timer_secret{0};
  // What the CPU clock could have owed: a sample's weight is capped so that the
  // profile never credits more periods than the thread has used CPU since the start.
  std::atomic<uint64_t> period_ns{0};
  std::atomic<uint64_t> cpu_base_ns{0};
  std::atomic<uint64_t> credited{0};  // periods credited (recorded + dropped) since start
  // Id of the current profile-label set (lib/labels.ts), 0 = none. JS writes it with one
  // plain 32-bit store through a Uint32Array over this word; the handler interrupts that
  // same thread, so it sees the old or the new value, never a torn one.
  std::atomic<uint32_t> label_id{0};

  std::atomic<uint64_t> signals{0};
  std::atomic<uint64_t> samples{0};
  std::atomic<uint64_t> weight{0};
  std::atomic<uint64_t> dropped{0};
  std::atomic<uint64_t> dropped_weight{0};
  // Periods whose signal went to, or was withheld because of, another handler on our
  // sampling signal (someone replaced ours, or SIGPROF_SIGNAL chose a taken one).
  std::atomic<uint64_t> foreign_lost_weight{0};
  std::atomic<uint64_t> loop_withheld{0};  // watchdog signals withheld for the same reason
  std::atomic<uint64_t> rejected{0};       // signals that named us but failed the tag or bound
  std::atomic<uint64_t> handler_ns_total{0};
  std::atomic<uint64_t> handler_ns_max{0};
  std::atomic<uint64_t> handler_calls{0};
};

// A signal value: slot (8 bits) | kind (8 bits) | 48-bit secret of the sending path.
// Weights never travel in the value (a timer's comes from si_overrun, the helper
// thread's and the watchdog's from the target's atomics), so nothing in it is trusted
// beyond naming the target.
constexpr uint64_t kSecretMask = (1ull << 48) - 1;
inline uint64_t SignalValue(int slot, SampleKind kind, uint64_t secret) {
  return (static_cast<uint64_t>(slot & 0xff) << 56) | (static_cast<uint64_t>(kind) << 48) | (secret & kSecretMask);
}
// A fresh nonzero 48-bit secret (getrandom; never called from the handler).
uint64_t NewSecret();

// Workers and the main thread each take one slot while their sampler lives.
constexpr int kMaxTargets = 64;
int RegisterTarget(SignalTarget* target);  // slot, or -1 when full
void UnregisterTarget(int slot);

// The real-time signal sigprof samples on, chosen once per process by the first
// EnsureSignalHandler (SIGPROF_SIGNAL=N, else the highest free one); -1 before that.
// Not SIGPROF: V8's CpuProfiler (inspector, DevTools, @datadog/pprof) installs its own
// handler there and restores SIG_DFL when it stops, and a program's own SIGPROF must
// behave as it does without sigprof. See docs/signals-and-clocks.md.
int SampleSignal();

// Chooses the signal (first call) and installs our handler on it if it is not ours
// already (someone may have replaced it since). Signals that are not ours go to the
// handler that was there before. `*foreign_below` says whether that handler is another
// program's live handler, which may later "restore" SIG_DFL over ours: then only a clock
// that checks the disposition before every signal is safe. On failure: `*error`, `*code`.
bool EnsureSignalHandler(bool* foreign_below, std::string* error, const char** code);

enum class Disposition { kOurs, kForeign, kNobody /* SIG_DFL or SIG_IGN */ };
// The current disposition of our sampling signal; when nobody owns SIGPROF, ours is reinstalled first
// (so a later signal of ours never meets SIG_DFL). A foreign handler is left alone: it
// belongs to someone running who may restore ours later, or SIG_DFL, which the next
// check repairs (a real-time signal's default action also terminates). Not for the signal handler.
Disposition RepairSignalHandler();

// The target running on the calling thread whose perf-event clock is armed on `fd`
// (fd < 0: on any fd), or null. Async-signal-safe (the sampling handler; the SIGIO
// fallback's, sigio_fallback.cc).
SignalTarget* PerfTargetOnThisThread(int fd);
// Counts one CPU period of `t` as lost (shown as `(lost samples)`), within the weight
// bound. Async-signal-safe.
void CountLostPeriod(SignalTarget* t);

// Queues our sampling signal for `tid` carrying `value` (rt_tgsigqueueinfo). Returns errno or 0.
int QueueSignal(pid_t tid, uint64_t value);

uint64_t MonotonicNs();

}  // namespace sigprof
