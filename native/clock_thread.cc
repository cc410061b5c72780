// Helper-thread clock: a thread that wakes once per period of wall time, reads the target
// thread's CPU clock, and queues our sampling signal (rt_tgsigqueueinfo) when at least a
// period was consumed.
// Counts user + kernel CPU. A signal sent from another thread is taken when the target
// next returns from the kernel, so samples skid onto system-call sites (issue 11); it is
// the fallback where perf events are not permitted and above the kernel timer's rates,
// and the only clock that can check, before every signal, that our handler is in place.
#include <errno.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "clock.h"
#include "signal_handler.h"

namespace sigprof {

uint64_t ClockNs(clockid_t clock) {
  struct timespec ts;
  if (clock_gettime(clock, &ts) != 0) return 0;
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

uint64_t ThreadCpuNs() { return ClockNs(CLOCK_THREAD_CPUTIME_ID); }

const char* ClockName(ClockKind kind) {
  switch (kind) {
    case ClockKind::kPerfEvent: return "perf-event";
    case ClockKind::kCpuTimer: return "timer";
    case ClockKind::kThread: return "thread";
    default: return "none";
  }
}

namespace {

class ThreadClock : public SampleClock {
 public:
  ~ThreadClock() override { Stop(); }
  ClockKind kind() const override { return ClockKind::kThread; }

  bool Start(SignalTarget* target, clockid_t cpu_clock, uint64_t period_ns, uint64_t value, std::string* error) override {
    (void)error;
    Stop();
    helper_cpu_ns_.store(0, std::memory_order_relaxed);
    stop_ = false;
    uint64_t armed = ClockNs(cpu_clock);
    thread_ = std::thread(&ThreadClock::Run, this, target, cpu_clock, period_ns, value, armed);
    return true;
  }

  uint64_t Stop() override {
    if (!thread_.joinable()) return 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
    return 0;  // what it withheld is already counted in foreign_lost_weight
  }

  uint64_t helper_cpu_ns() const override { return helper_cpu_ns_.load(std::memory_order_relaxed); }

 private:
  void Run(SignalTarget* target, clockid_t clock, uint64_t period_ns, uint64_t value, uint64_t last) {
    uint64_t owed = 0;
    // Wall-clock wake-ups at the period: the target cannot consume more than one period of
    // CPU per period of wall time, so none is missed; CPU consumed while we slept longer
    // than asked is carried as weight.
    auto wait = std::chrono::nanoseconds(period_ns);
    std::unique_lock<std::mutex> lock(mu_);
    // Reading our own CPU clock is a system call: every 64 periods, and at exit.
    for (uint32_t n = 1; !stop_; n++) {
      if (n % 64 == 0) helper_cpu_ns_.store(ThreadCpuNs(), std::memory_order_relaxed);
      cv_.wait_for(lock, wait, [this] { return stop_; });
      if (stop_) break;
      uint64_t now = ClockNs(clock);
      if (now == 0) break;  // the thread is gone
      owed += now - last;
      last = now;
      if (owed < period_ns) continue;
      uint64_t periods = owed / period_ns;
      owed -= periods * period_ns;
      // A signal of ours must never meet SIG_DFL (it would kill the process): check first.
      // Only matters if someone else touches our real-time signal; see
      // docs/signals-and-clocks.md.
      if (RepairSignalHandler() != Disposition::kOurs) {
        target->foreign_lost_weight.fetch_add(periods, std::memory_order_relaxed);
        continue;
      }
      // Real-time signals queue (one entry each, RLIMIT_SIGPENDING per user) instead of
      // merging: at most one of ours is outstanding. While the last one is not taken yet
      // (the thread blocks signals, or sits in a long system call), the weight only grows
      // and that one signal carries it all.
      if (target->pending_weight.fetch_add(periods, std::memory_order_acq_rel) != 0) continue;
      int err = QueueSignal(target->tid, value);
      if (err == ESRCH) break;
      if (err != 0) {
        // Not queued (EAGAIN: the user's signal queue is full): nothing will take the
        // weight, so count it as dropped rather than block every later signal.
        uint64_t w = target->pending_weight.exchange(0, std::memory_order_acq_rel);
        target->dropped_weight.fetch_add(w, std::memory_order_relaxed);
      }
    }
    helper_cpu_ns_.store(ThreadCpuNs(), std::memory_order_relaxed);
  }

  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::atomic<uint64_t> helper_cpu_ns_{0};
};

}  // namespace

std::unique_ptr<SampleClock> NewThreadClock() { return std::make_unique<ThreadClock>(); }

// The weight travels through the target, not the signal: the signal value is only a tag,
// and the helper queues a new signal only once the handler took the last one's weight.
uint64_t ThreadClockWeight(SignalTarget* target) { return target->pending_weight.exchange(0, std::memory_order_acq_rel); }

}  // namespace sigprof
