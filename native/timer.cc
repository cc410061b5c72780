#include "timer.h"

#include <errno.h>
#include <signal.h>
#include <string.h>

#include <chrono>

#include "signal_handler.h"

namespace sigprof {

uint64_t ClockNs(clockid_t clock) {
  struct timespec ts;
  if (clock_gettime(clock, &ts) != 0) return 0;
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

uint64_t ThreadCpuNs() { return ClockNs(CLOCK_THREAD_CPUTIME_ID); }

bool CpuTimer::Start(SignalTarget* target, clockid_t clock, uint64_t period_ns, uint64_t value, bool use_thread,
                     std::string* error) {
  Stop();
  helper_cpu_ns_.store(0, std::memory_order_relaxed);
  armed_cpu_ns_ = ClockNs(clock);
  if (use_thread) {
    stop_ = false;
    thread_ = std::thread(&CpuTimer::Run, this, target, clock, period_ns, value);
    return true;
  }
  pid_t tid = target->tid;
  struct sigevent sev;
  memset(&sev, 0, sizeof sev);
  sev.sigev_notify = SIGEV_THREAD_ID;
  sev.sigev_signo = SIGPROF;
  sev.sigev_value.sival_ptr = reinterpret_cast<void*>(value);
  // glibc has no sigev_notify_thread_id macro before 2.35 in every header set.
  sev._sigev_un._tid = tid;
  if (timer_create(clock, &sev, &timer_) != 0) {
    *error = std::string("timer_create: ") + strerror(errno);
    return false;
  }
  struct itimerspec its;
  its.it_interval.tv_sec = static_cast<time_t>(period_ns / 1000000000ull);
  its.it_interval.tv_nsec = static_cast<long>(period_ns % 1000000000ull);
  its.it_value = its.it_interval;
  if (timer_settime(timer_, 0, &its, nullptr) != 0) {
    *error = std::string("timer_settime: ") + strerror(errno);
    timer_delete(timer_);
    return false;
  }
  timer_armed_ = true;
  return true;
}

void CpuTimer::Stop() {
  if (timer_armed_) {
    timer_delete(timer_);
    timer_armed_ = false;
  }
  if (thread_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
}

void CpuTimer::Run(SignalTarget* target, clockid_t clock, uint64_t period_ns, uint64_t value) {
  uint64_t last = armed_cpu_ns_;
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
    // What remains is a window of microseconds (another thread restoring SIG_DFL between
    // this check and the delivery); see docs/signals-and-clocks.md.
    if (RepairSignalHandler() != Disposition::kOurs) {
      target->foreign_lost_weight.fetch_add(periods, std::memory_order_relaxed);
      continue;
    }
    target->pending_weight.fetch_add(periods, std::memory_order_release);
    if (QueueSignal(target->tid, value) == ESRCH) break;
  }
  helper_cpu_ns_.store(ThreadCpuNs(), std::memory_order_relaxed);
}

}  // namespace sigprof
