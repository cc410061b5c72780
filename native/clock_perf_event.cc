// Per-thread perf event: a software PERF_COUNT_SW_TASK_CLOCK counter on the calling thread,
// user mode only (exclude_kernel: perf_event_paranoid 2, the common default, allows it for
// one's own threads), overflowing every period. The overflow is taken in the timer
// interrupt on the thread itself, so the signal lands where the thread was (no skid onto
// system calls, unlike a signal sent from another thread), and there is no helper thread.
// Time spent inside system calls is not counted at all: see docs/signals-and-clocks.md.
//
// Delivery: O_ASYNC + F_SETSIG(SampleSignal()) + F_SETOWN_EX(F_OWNER_TID, thread) makes an
// overflow send our real-time signal to this thread only, with si_code POLL_IN (POLL_HUP
// for the last one of a refresh count) and si_fd = our fd. Real-time signals queue, one
// entry per overflow, and when the queue is full (RLIMIT_SIGPENDING, per user) the kernel
// falls back to plain SIGIO, whose default action kills (sigio_fallback.cc takes it). So the event is armed with
// PERF_EVENT_IOC_REFRESH kRefresh: after that many overflows it disables itself (the last
// one's signal has si_code POLL_HUP) and the handler re-arms it on that one, so at most
// kRefresh of its signals are ever pending, whatever the rate, however long the thread
// blocks our signal. One re-arm per kRefresh samples keeps the ioctl off the common path;
// the user CPU between the last overflow and the re-arm (about a microsecond) is not counted.
#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "clock.h"
#include "sigio_fallback.h"
#include "signal_handler.h"

namespace sigprof {

namespace {

// Overflows per arming (see above): bounds the queue per profiled thread to 64 entries
// (64 threads at most: 4,096, far below RLIMIT_SIGPENDING's usual tens of thousands).
constexpr int kRefresh = 64;

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
    // Before the first overflow can be demoted to SIGIO (sigio_fallback.cc).
    if (!EnsureSigioFallback(error)) return false;
    int fd = OpenTaskClock(period_ns, error);
    if (fd < 0) return false;
    struct f_owner_ex owner;
    owner.type = F_OWNER_TID;
    owner.pid = target->tid;
    if (fcntl(fd, F_SETSIG, SampleSignal()) != 0 || fcntl(fd, F_SETOWN_EX, &owner) != 0 ||
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_ASYNC) != 0) {
      *error = std::string("perf event fcntl: ") + strerror(errno);
      close(fd);
      return false;
    }
    target_ = target;
    period_ns_ = period_ns;
    // Published before enabling: the first overflow finds it.
    target->perf_fd.store(fd, std::memory_order_release);
    if (ioctl(fd, PERF_EVENT_IOC_RESET, 0) != 0 || ioctl(fd, PERF_EVENT_IOC_REFRESH, kRefresh) != 0) {
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
    // Unpublished first: a signal taken on this thread from here on does not re-arm.
    target_->perf_fd.store(-1, std::memory_order_release);
    // Disabled before closing: a forked child holding a copy of the fd keeps the event
    // alive, and it would go on counting our thread and signalling it.
    ioctl(fd_, PERF_EVENT_IOC_DISABLE, 0);
    close(fd_);
    fd_ = -1;
    // Nothing to count as lost: no overflow merges into another (real-time signals queue),
    // and the counter is no witness of what another handler took had someone replaced
    // ours (nobody would re-arm: the event stops after kRefresh overflows). Nor of what the
    // sampling missed: it counts kernel-mode time too, where exclude_kernel suppresses
    // the overflow.
    return 0;
  }

 private:
  int fd_ = -1;
  SignalTarget* target_ = nullptr;
  uint64_t period_ns_ = 1;
};

}  // namespace

std::unique_ptr<SampleClock> NewPerfEventClock() { return std::make_unique<PerfEventClock>(); }

// One overflow, one signal, one period (real-time signals queue: none merges). The last
// overflow of an arming (POLL_HUP) re-arms the event. ioctl is a bare system call (no
// libc state), safe in a signal handler.
uint64_t PerfEventWeight(SignalTarget* target, const siginfo_t* info) {
  if (info->si_code == POLL_HUP) {
    int fd = target->perf_fd.load(std::memory_order_acquire);
    if (fd >= 0) ioctl(fd, PERF_EVENT_IOC_REFRESH, kRefresh);
  }
  return 1;
}

}  // namespace sigprof
