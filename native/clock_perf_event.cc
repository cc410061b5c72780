// Per-thread perf event: a software PERF_COUNT_SW_TASK_CLOCK counter on the calling thread,
// user mode only (exclude_kernel: perf_event_paranoid 2, the common default, allows it for
// one's own threads), overflowing every period. The overflow is taken in the timer
// interrupt on the thread itself, so the signal lands where the thread was (no skid onto
// system calls, unlike a signal sent from another thread), and there is no helper thread.
// Time spent inside system calls is not counted at all: see docs/signals-and-clocks.md.
//
// Delivery: O_ASYNC + F_SETSIG(SIGPROF) + F_SETOWN_EX(F_OWNER_TID, thread) makes every
// overflow send SIGPROF to this thread only, with si_code POLL_IN and si_fd = our fd. The
// event is enabled without PERF_EVENT_IOC_REFRESH: a refresh count would disable the event
// after that many overflows and need re-arming (an ioctl from the handler); with no count
// the kernel signals every overflow for as long as the event is enabled.
#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "clock.h"
#include "signal_handler.h"

namespace sigprof {

namespace {

int OpenTaskClock(uint64_t period_ns, std::string* error) {
  struct perf_event_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.size = sizeof attr;
  attr.type = PERF_TYPE_SOFTWARE;
  attr.config = PERF_COUNT_SW_TASK_CLOCK;
  attr.sample_period = period_ns;
  attr.disabled = 1;
  attr.exclude_kernel = 1;
  attr.exclude_hv = 1;
  attr.wakeup_events = 1;
  // pid 0, cpu -1: this thread, wherever it runs. CLOEXEC: an exec'd child must not hold
  // (and keep alive) an event that counts and signals our thread.
  long fd = syscall(SYS_perf_event_open, &attr, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
  if (fd < 0) {
    *error = std::string("perf_event_open: ") + strerror(errno);
    return -1;
  }
  return static_cast<int>(fd);
}

class PerfEventClock : public SampleClock {
 public:
  ~PerfEventClock() override { Stop(); }
  ClockKind kind() const override { return ClockKind::kPerfEvent; }

  bool Start(SignalTarget* target, clockid_t cpu_clock, uint64_t period_ns, uint64_t value, std::string* error) override {
    (void)cpu_clock;
    (void)value;
    Stop();
    int fd = OpenTaskClock(period_ns, error);
    if (fd < 0) return false;
    struct f_owner_ex owner;
    owner.type = F_OWNER_TID;
    owner.pid = target->tid;
    if (fcntl(fd, F_SETSIG, SIGPROF) != 0 || fcntl(fd, F_SETOWN_EX, &owner) != 0 ||
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_ASYNC) != 0) {
      *error = std::string("perf event fcntl: ") + strerror(errno);
      close(fd);
      return false;
    }
    target_ = target;
    period_ns_ = period_ns;
    // Published before enabling: the first overflow finds it.
    target->perf_fd.store(fd, std::memory_order_release);
    if (ioctl(fd, PERF_EVENT_IOC_RESET, 0) != 0 || ioctl(fd, PERF_EVENT_IOC_ENABLE, 0) != 0) {
      *error = std::string("perf event enable: ") + strerror(errno);
      target->perf_fd.store(-1, std::memory_order_release);
      close(fd);
      return false;
    }
    fd_ = fd;
    return true;
  }

  uint64_t Stop() override {
    if (fd_ < 0) return 0;
    // Disabled before closing: a forked child holding a copy of the fd keeps the event
    // alive, and it would go on counting our thread and signalling it.
    ioctl(fd_, PERF_EVENT_IOC_DISABLE, 0);
    uint64_t count = 0;
    if (read(fd_, &count, sizeof count) != static_cast<ssize_t>(sizeof count)) count = 0;
    target_->perf_fd.store(-1, std::memory_order_release);
    close(fd_);
    fd_ = -1;
    // Periods the counter passed whose signals our handler never credited: taken by
    // another profiler's handler, or merged; one may still be in flight.
    uint64_t periods = count / period_ns_;
    uint64_t seen = target_->credited.load(std::memory_order_relaxed);
    return periods > seen + 1 ? periods - seen - 1 : 0;
  }

 private:
  int fd_ = -1;
  SignalTarget* target_ = nullptr;
  uint64_t period_ns_ = 1;
};

}  // namespace

std::unique_ptr<SampleClock> NewPerfEventClock() { return std::make_unique<PerfEventClock>(); }

// One overflow, one signal, one period. Not the counter's value: while another
// profiler's handler owns SIGPROF its signals go there, and crediting their periods to
// the next sample of ours would pin that CPU on whatever ran then. A signal merged into
// a pending one (rare: our handler takes µs, the period is ≥ 1 µs and usually ms) and the
// periods another handler took are counted at Stop (from the counter) as lost.
uint64_t PerfEventWeight(SignalTarget* target) {
  (void)target;
  return 1;
}

}  // namespace sigprof
