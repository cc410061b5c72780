// When the kernel cannot queue the perf-event clock's real-time signal (the user's
// RLIMIT_SIGPENDING is used up: a small `ulimit -i`, or other processes of the same user
// holding queued signals), send_sigio_to_task sends a plain SIGIO instead (si_code
// SI_KERNEL, no si_fd) to the same thread, and SIGIO's default action terminates the
// process. A profiler must not kill its host because the signal queue is full, so while
// sigprof has ever run the perf-event clock, SIGIO has this handler:
// - a kernel SIGIO on a thread whose perf clock is armed is that demoted overflow: its
//   period is counted as lost (`(lost samples)`), and the event is re-armed for one more
//   overflow. The lost signal may have been the last of an arming (POLL_HUP, which
//   disables the event and which the sampling handler re-arms on); adding one overflow
//   per demoted one keeps the event counting without ever raising the number of its
//   signals that can be pending above the arming's 64 (each demoted overflow used one).
//   Several demotions while a SIGIO is already pending merge into one: then fewer
//   periods are counted lost than were, and the event may disable itself at the end of
//   its arming, to be re-armed by the next demoted or queued overflow it sends.
// - anything else (a SIGIO someone sent, an O_ASYNC fd of another library) gets what it
//   would have had without sigprof: the previous handler, nothing if it was ignored,
//   and termination if it was the default. A kernel SIGIO on a perf-profiled thread also
//   goes to a previous handler when there is one (the two causes cannot be told apart).
#include "sigio_fallback.h"

#include <errno.h>
#include <linux/perf_event.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>

#include <mutex>

#include "signal_handler.h"

namespace sigprof {

namespace {

std::mutex g_mu;
bool g_installed = false;  // under g_mu
// Written once under g_mu before our handler is installed; read-only afterwards.
struct sigaction g_prev;

bool PreviousIsHandler() {
  if (g_prev.sa_flags & SA_SIGINFO) return g_prev.sa_sigaction != nullptr;
  return g_prev.sa_handler != SIG_DFL && g_prev.sa_handler != SIG_IGN;
}

void AsBefore(int sig, siginfo_t* info, void* context) {
  if (g_prev.sa_flags & SA_SIGINFO) {
    if (g_prev.sa_sigaction) g_prev.sa_sigaction(sig, info, context);
  } else if (g_prev.sa_handler == SIG_DFL) {
    // The default action: terminate, by the signal. SIGIO is blocked while this runs, so
    // the raised one is delivered, with the default disposition, when it returns.
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, nullptr);
    raise(sig);
  } else if (g_prev.sa_handler != SIG_IGN) {
    g_prev.sa_handler(sig);
  }
}

void OnSigio(int sig, siginfo_t* info, void* context) {
  int saved_errno = errno;
  SignalTarget* t = info->si_code == SI_KERNEL ? PerfTargetOnThisThread(-1) : nullptr;
  if (t != nullptr) {
    int fd = t->perf_fd.load(std::memory_order_acquire);
    if (fd >= 0) ioctl(fd, PERF_EVENT_IOC_REFRESH, 1);  // a bare system call
    CountLostPeriod(t);
    if (PreviousIsHandler()) AsBefore(sig, info, context);
  } else {
    AsBefore(sig, info, context);
  }
  errno = saved_errno;
}

}  // namespace

bool EnsureSigioFallback(std::string* error) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_installed) return true;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = &OnSigio;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGIO, nullptr, &g_prev) != 0 || sigaction(SIGIO, &sa, nullptr) != 0) {
    *error = std::string("sigaction(SIGIO): ") + strerror(errno);
    return false;
  }
  g_installed = true;
  return true;
}

}  // namespace sigprof
