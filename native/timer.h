// Per-thread CPU-time sampling clock. Either a POSIX timer on the target thread's CPU
// clock, delivering SIGPROF to that thread only (what Go does since 1.18), or, above
// what the kernel tick can deliver, a helper thread that watches the target's CPU clock
// and queues SIGPROF each time it has consumed a period.
#pragma once
#include <sys/types.h>
#include <time.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

namespace sigprof {

struct SignalTarget;

class CpuTimer {
 public:
  // CPU-clock timers fire on kernel ticks (CONFIG_HZ, 250/s here); above this rate the
  // helper thread is used so that more samples, not just heavier ones, are taken.
  static constexpr double kMaxTimerHz = 200;

  ~CpuTimer() { Stop(); }
  // `clock` is the target thread's CPU clock; `value` the encoded signal value. In thread
  // mode the weight travels through the target's `pending_weight`, not the signal:
  // SIGPROF is not a real-time signal, so a second one sent while the first is pending is
  // merged. Before each signal the thread checks that SIGPROF is still ours (reinstalling
  // ours over SIG_DFL); while another profiler's handler owns it, the periods are counted
  // as lost instead of sent.
  bool Start(SignalTarget* target, clockid_t clock, uint64_t period_ns, uint64_t value, bool use_thread,
             std::string* error);
  // Thread CPU time (of the target) when the clock was armed: periods are counted from it.
  uint64_t armed_cpu_ns() const { return armed_cpu_ns_; }
  void Stop();
  bool thread_mode() const { return thread_.joinable(); }
  // CPU time the helper thread has used since Start (0 in timer mode): part of what
  // profiling costs, on another core.
  uint64_t helper_cpu_ns() const { return helper_cpu_ns_.load(std::memory_order_relaxed); }

 private:
  void Run(SignalTarget* target, clockid_t clock, uint64_t period_ns, uint64_t value);

  timer_t timer_{};
  bool timer_armed_ = false;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::atomic<uint64_t> helper_cpu_ns_{0};
  uint64_t armed_cpu_ns_ = 0;
};

// The target thread's CPU clock, read from any thread; 0 when the thread is gone.
uint64_t ClockNs(clockid_t clock);

// CPU time of the calling thread (CLOCK_THREAD_CPUTIME_ID), in ns.
uint64_t ThreadCpuNs();

}  // namespace sigprof
