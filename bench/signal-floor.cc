// What a signal costs the thread it interrupts on this machine, with an empty handler:
// the floor under every signal-based sampling profiler (sigprof, V8's CpuProfiler, Go's
// runtime), before any stack is walked. A CPU-bound loop runs in blocks, alternately
// undisturbed and receiving SIGPROF at the given rate, timed by its own thread CPU
// time; the result is the median ratio and the cost per signal.
//
// Sources: `thread` = another thread sends tgkill() every 1/rate s (what V8's sampler
// and sigprof above 200 Hz do; an inter-processor interrupt when the target runs on
// another core), `timer` = a CPU-time POSIX timer on the thread itself (delivered from
// the kernel tick on the thread's own core; at most CONFIG_HZ signals per second).
//
// Built and run by bench/signal-floor.js.
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

namespace {

std::atomic<long> g_signals{0};
void Handler(int, siginfo_t*, void*) { g_signals.fetch_add(1, std::memory_order_relaxed); }

double ThreadCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

volatile double g_sink;
void Work() {
  double x = 0;
  for (int i = 1; i < 20000000; i++) x += std::sqrt(static_cast<double>(i)) / ((i & 7) | 1);
  g_sink = x;
}

}  // namespace

int main(int argc, char** argv) {
  int hz = argc > 1 ? atoi(argv[1]) : 1000;
  bool use_timer = argc > 2 && strcmp(argv[2], "timer") == 0;
  int reps = argc > 3 ? atoi(argv[3]) : 40;
  if (hz <= 0 || reps < 6) return 2;

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = Handler;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigaction(SIGPROF, &sa, nullptr);
  pid_t tid = static_cast<pid_t>(syscall(SYS_gettid));

  std::atomic<bool> on{false}, quit{false};
  std::thread sender;
  timer_t timer{};
  if (use_timer) {
    sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = SIGPROF;
    sev._sigev_un._tid = tid;
    if (timer_create(CLOCK_THREAD_CPUTIME_ID, &sev, &timer) != 0) return 1;
  } else {
    sender = std::thread([&] {
      while (!quit.load()) {
        if (on.load()) syscall(SYS_tgkill, getpid(), tid, SIGPROF);
        usleep(static_cast<useconds_t>(1000000 / hz));
      }
    });
  }
  auto set = [&](bool enable) {
    if (use_timer) {
      itimerspec its;
      memset(&its, 0, sizeof its);
      if (enable) {
        its.it_interval.tv_sec = 0;
        its.it_interval.tv_nsec = 1000000000L / hz;
        its.it_value = its.it_interval;
      }
      timer_settime(timer, 0, &its, nullptr);
    } else {
      on.store(enable);
    }
  };

  Work();  // warm-up
  std::vector<double> ratios, per_signal_us;
  for (int rep = 0; rep < reps; rep++) {
    double t[2];
    long signals = 0;
    for (int k = 0; k < 2; k++) {
      bool enable = (k + rep) % 2 == 1;
      long s0 = g_signals.load();
      set(enable);
      double c0 = ThreadCpuSeconds();
      Work();
      t[enable] = ThreadCpuSeconds() - c0;
      set(false);
      if (enable) signals = g_signals.load() - s0;
    }
    ratios.push_back(t[1] / t[0]);
    if (signals > 0) per_signal_us.push_back((t[1] - t[0]) / static_cast<double>(signals) * 1e6);
  }
  quit.store(true);
  if (sender.joinable()) sender.join();
  std::sort(ratios.begin(), ratios.end());
  std::sort(per_signal_us.begin(), per_signal_us.end());
  // JSON for the driver: sorted ratios (it computes the CI) and the median cost per signal.
  printf("{\"hz\":%d,\"source\":\"%s\",\"ratios\":[", hz, use_timer ? "timer" : "thread");
  for (size_t i = 0; i < ratios.size(); i++) printf("%s%.6f", i ? "," : "", ratios[i]);
  printf("],\"perSignalUs\":%.3f}\n", per_signal_us.empty() ? 0.0 : per_signal_us[per_signal_us.size() / 2]);
  return 0;
}
