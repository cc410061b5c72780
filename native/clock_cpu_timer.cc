// POSIX timer on the target thread's CPU clock, delivering our sampling signal (a
// real-time signal, SampleSignal()) to that thread only
// (SIGEV_THREAD_ID; what Go does since 1.18). Counts user + kernel CPU time. CPU-clock
// timers are checked on kernel ticks (CONFIG_HZ, 250/s here): above ~200 Hz they deliver
// fewer, heavier signals (si_overrun carries the rest), so the sampler uses this clock
// only up to 200 Hz unless forced.
#include <errno.h>
#include <string.h>

#include "clock.h"
#include "signal_handler.h"

namespace sigprof {

namespace {

class CpuTimerClock : public SampleClock {
 public:
  ~CpuTimerClock() override { Stop(); }
  ClockKind kind() const override { return ClockKind::kCpuTimer; }

  bool Start(SignalTarget* target, clockid_t cpu_clock, uint64_t period_ns, uint64_t value, std::string* error) override {
    Stop();
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = SampleSignal();
    // A timer owns one preallocated queue entry: while its signal is pending, further
    // expirations count in si_overrun instead of queueing, real-time signal or not.
    sev.sigev_value.sival_ptr = reinterpret_cast<void*>(value);
    // glibc has no sigev_notify_thread_id macro before 2.35 in every header set.
    sev._sigev_un._tid = target->tid;
    if (timer_create(cpu_clock, &sev, &timer_) != 0) {
      *error = std::string("timer_create: ") + strerror(errno);
      return false;
    }
    struct itimerspec its;
    its.it_interval.tv_sec = static_cast<time_t>(period_ns / 1000000000ull);
    its.it_interval.tv_nsec = static_cast<long>(period_ns % 1000000000ull);
    its.it_value = its.it_interval;
    target_ = target;
    cpu_clock_ = cpu_clock;
    period_ns_ = period_ns;
    armed_cpu_ns_ = ClockNs(cpu_clock);
    if (timer_settime(timer_, 0, &its, nullptr) != 0) {
      *error = std::string("timer_settime: ") + strerror(errno);
      timer_delete(timer_);
      return false;
    }
    armed_ = true;
    return true;
  }

  uint64_t Stop() override {
    if (!armed_) return 0;
    uint64_t now = ClockNs(cpu_clock_);
    timer_delete(timer_);
    armed_ = false;
    // The timer delivered every period it counted (1 + si_overrun each) to whichever
    // handler owned our signal: what ours never credited went to another one (someone
    // replaced ours). Up to one period may still be due on the next tick (not lost).
    uint64_t fired = now > armed_cpu_ns_ ? (now - armed_cpu_ns_) / period_ns_ : 0;
    uint64_t seen = target_->credited.load(std::memory_order_relaxed);
    return fired > seen + 1 ? fired - seen - 1 : 0;
  }

 private:
  timer_t timer_{};
  bool armed_ = false;
  SignalTarget* target_ = nullptr;
  clockid_t cpu_clock_{};
  uint64_t period_ns_ = 1;
  uint64_t armed_cpu_ns_ = 0;
};

}  // namespace

std::unique_ptr<SampleClock> NewCpuTimerClock() { return std::make_unique<CpuTimerClock>(); }

// The kernel counts the expirations it could not deliver while one was pending.
uint64_t CpuTimerWeight(const siginfo_t* info) {
  return 1 + static_cast<uint64_t>(info->si_overrun > 0 ? info->si_overrun : 0);
}

}  // namespace sigprof
