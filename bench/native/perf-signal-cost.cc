// What one sampling signal costs the thread it interrupts, per way of making it: which
// part of the perf-event clock's ~40 µs per signal (docs/benchmarks.md "Clocks compared")
// is the event's timer, which the signal, which the kernel's deferred wake-up, and what
// the other clocks cost on the same loop. docs/signals-and-clocks.md "What a signal costs".
//
//   g++ -O2 -Wall -Wextra -o /tmp/perf-signal-cost bench/native/perf-signal-cost.cc -lpthread
//   nice -n 10 /tmp/perf-signal-cost [--hz 1000] [--reps 31] [--block-ms 150] [--only a,b]
//                                    [--sleeps N]  (the block in N chunks, a 50 µs sleep after
//                                                   each: also reports extra CPU per sleep)
//
// One thread, pinned to the CPU it starts on, runs a fixed block of floating-point work
// (no memory traffic, no system calls) once per variant per repetition, the variants in
// a rotated order each repetition, each paired with a block of `none` (nothing armed)
// right before or after it. A variant's cost per signal in a repetition is (its block's
// thread CPU - its pair's `none` block) / its signals; the report is the median over repetitions with a distribution-free 95%
// interval (order statistics), and per signal the extra interrupts on our CPU
// (/proc/interrupts: LOC = local timer, IWI = irq_work self-IPI, RES, CAL) and context
// switches (/proc/thread-self/status). This kernel has no IRQ_TIME_ACCOUNTING, so time
// in interrupts is charged to the interrupted thread, as is time in VM exits the
// interrupts cause.
//
// Variants (the perf ones: software event on this thread, sample_period = 1e9/hz ns):
//   task         sigprof's recipe: TASK_CLOCK, exclude_kernel, exclude_hv, wakeup_events 1,
//                O_ASYNC + F_SETSIG + F_SETOWN_EX(tid), REFRESH 64 re-armed on POLL_HUP
//                (SIGPROF here; sigprof uses a real-time signal: task-rt)
//   task-rt      the same on SIGRTMIN+5
//   cpu-clock    CPU_CLOCK instead of TASK_CLOCK
//   kernel       exclude_kernel = 0 (refused under perf_event_paranoid 2: reported)
//   hv0          exclude_hv = 0
//   idle         exclude_idle = 1
//   refresh1     REFRESH 1 re-armed on every signal
//   refresh-big  REFRESH 1<<30 once (no re-arm)
//   nolimit      ENABLE, no event_limit (no re-arm, no POLL_HUP)
//   wakeup0      wakeup_events = 0
//   mmap         a 1+1 page ring buffer (sample_type IP): a record per overflow
//   sigio        F_SETSIG 0: plain SIGIO, no siginfo (so nolimit); not queued
//   noasync      no O_ASYNC: the event's timer and overflow only, no signal, no wake-up
//                ("signals" = overflows, from the counter's value / period)
//   sigtrap      attr.sigtrap (SIGTRAP/TRAP_PERF via task_work on return to user, no
//                O_ASYNC, no irq_work), nolimit
//   timer        timer_create(CLOCK_THREAD_CPUTIME_ID, SIGEV_THREAD_ID) SIGPROF at hz
//                (fires on kernel ticks: CONFIG_HZ = 250 here caps it)
//   tgkill       a thread pinned to another CPU sends SIGPROF by tgkill every 1/hz s
#define _GNU_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <string>
#include <thread>
#include <vector>

#ifndef TRAP_PERF
#define TRAP_PERF 6
#endif

namespace {

std::atomic<long> g_signals{0};
std::atomic<int> g_fd{-1};
std::atomic<int> g_refresh{0};  // > 0: re-arm with this on POLL_HUP (or on every signal if g_every)
std::atomic<bool> g_every{false};

void Handler(int, siginfo_t* info, void*) {
  g_signals.fetch_add(1, std::memory_order_relaxed);
  int r = g_refresh.load(std::memory_order_relaxed);
  if (r > 0 && info != nullptr && (info->si_code == POLL_HUP || g_every.load(std::memory_order_relaxed))) {
    int fd = g_fd.load(std::memory_order_relaxed);
    if (fd >= 0) ioctl(fd, PERF_EVENT_IOC_REFRESH, r);
  }
}

uint64_t ThreadCpuNs() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

volatile double g_sink;
void Work(long iters) {
  double x = 0;
  for (long i = 1; i < iters; i++) x += std::sqrt(static_cast<double>(i)) / static_cast<double>((i & 7) | 1);
  g_sink = x;
}

struct Irqs {
  long v[4] = {0, 0, 0, 0};  // LOC IWI RES CAL
};
const char* kIrqNames[4] = {"LOC", "IWI", "RES", "CAL"};

Irqs ReadIrqs(int cpu) {
  Irqs out;
  FILE* f = fopen("/proc/interrupts", "r");
  if (!f) return out;
  char line[4096];
  while (fgets(line, sizeof line, f)) {
    char* p = line;
    while (*p == ' ') p++;
    for (int k = 0; k < 4; k++) {
      size_t n = strlen(kIrqNames[k]);
      if (strncmp(p, kIrqNames[k], n) == 0 && p[n] == ':') {
        char* q = p + n + 1;
        long val = 0;
        for (int c = 0; c <= cpu; c++) val = strtol(q, &q, 10);
        out.v[k] = val;
      }
    }
  }
  fclose(f);
  return out;
}

void ReadSwitches(long* vol, long* invol) {
  *vol = *invol = 0;
  FILE* f = fopen("/proc/thread-self/status", "r");
  if (!f) return;
  char line[256];
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "voluntary_ctxt_switches:", 24) == 0) *vol = atol(line + 24);
    if (strncmp(line, "nonvoluntary_ctxt_switches:", 27) == 0) *invol = atol(line + 27);
  }
  fclose(f);
}

struct Variant {
  std::string name;
  uint32_t config = PERF_COUNT_SW_TASK_CLOCK;
  bool perf = true;
  bool exclude_kernel = true, exclude_hv = true, exclude_idle = false;
  uint32_t wakeup_events = 1;
  int signo = SIGPROF;  // F_SETSIG; 0 = plain SIGIO
  bool async = true;
  int refresh = 64;  // 0: ENABLE without event_limit
  bool every = false;
  bool mmap_rb = false;
  bool sigtrap = false;
  bool timer = false, tgkill = false, none = false;
};

std::vector<Variant> AllVariants() {
  std::vector<Variant> v;
  auto add = [&](const char* name, auto tweak) {
    Variant x;
    x.name = name;
    tweak(x);
    v.push_back(x);
  };
  add("none", [](Variant& x) { x.perf = false; x.none = true; });
  add("task", [](Variant&) {});
  add("task-rt", [](Variant& x) { x.signo = SIGRTMIN + 5; });
  add("cpu-clock", [](Variant& x) { x.config = PERF_COUNT_SW_CPU_CLOCK; });
  add("kernel", [](Variant& x) { x.exclude_kernel = false; });
  add("hv0", [](Variant& x) { x.exclude_hv = false; });
  add("idle", [](Variant& x) { x.exclude_idle = true; });
  add("refresh1", [](Variant& x) { x.refresh = 1; x.every = true; });
  add("refresh-big", [](Variant& x) { x.refresh = 1 << 30; });
  add("nolimit", [](Variant& x) { x.refresh = 0; });
  add("wakeup0", [](Variant& x) { x.wakeup_events = 0; });
  add("mmap", [](Variant& x) { x.mmap_rb = true; });
  add("sigio", [](Variant& x) { x.signo = 0; x.refresh = 0; });
  add("noasync", [](Variant& x) { x.async = false; x.refresh = 0; });
  add("sigtrap", [](Variant& x) { x.async = false; x.sigtrap = true; x.refresh = 0; });
  add("timer", [](Variant& x) { x.perf = false; x.timer = true; });
  add("tgkill", [](Variant& x) { x.perf = false; x.tgkill = true; });
  return v;
}

struct Armed {
  int fd = -1;
  void* rb = nullptr;
  size_t rb_len = 0;
  timer_t timer{};
  bool has_timer = false;
};

std::atomic<bool> g_send{false}, g_quit{false};
pid_t g_tid;

bool Arm(const Variant& v, uint64_t period_ns, Armed* a, std::string* err) {
  g_refresh.store(0);
  g_every.store(false);
  g_fd.store(-1);
  if (v.none) return true;
  if (v.tgkill) {
    g_send.store(true);
    return true;
  }
  if (v.timer) {
    sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = SIGPROF;
    sev._sigev_un._tid = g_tid;
    if (timer_create(CLOCK_THREAD_CPUTIME_ID, &sev, &a->timer) != 0) {
      *err = strerror(errno);
      return false;
    }
    a->has_timer = true;
    itimerspec its;
    memset(&its, 0, sizeof its);
    its.it_interval.tv_nsec = static_cast<long>(period_ns);
    its.it_value = its.it_interval;
    timer_settime(a->timer, 0, &its, nullptr);
    return true;
  }
  perf_event_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.size = sizeof attr;
  attr.type = PERF_TYPE_SOFTWARE;
  attr.config = v.config;
  attr.sample_period = period_ns;
  attr.disabled = 1;
  attr.exclude_kernel = v.exclude_kernel;
  attr.exclude_hv = v.exclude_hv;
  attr.exclude_idle = v.exclude_idle;
  attr.wakeup_events = v.wakeup_events;
  if (v.mmap_rb) attr.sample_type = PERF_SAMPLE_IP;
  if (v.sigtrap) {
    attr.sigtrap = 1;
    attr.remove_on_exec = 1;
    attr.sig_data = 0x5167;
  }
  long fd = syscall(SYS_perf_event_open, &attr, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
  if (fd < 0) {
    *err = std::string("perf_event_open: ") + strerror(errno);
    return false;
  }
  a->fd = static_cast<int>(fd);
  if (v.mmap_rb) {
    a->rb_len = 2 * static_cast<size_t>(sysconf(_SC_PAGESIZE));
    a->rb = mmap(nullptr, a->rb_len, PROT_READ | PROT_WRITE, MAP_SHARED, a->fd, 0);
    if (a->rb == MAP_FAILED) {
      a->rb = nullptr;
      *err = std::string("mmap: ") + strerror(errno);
      return false;
    }
  }
  if (v.async) {
    f_owner_ex owner;
    owner.type = F_OWNER_TID;
    owner.pid = g_tid;
    if (fcntl(a->fd, F_SETSIG, v.signo) != 0 || fcntl(a->fd, F_SETOWN_EX, &owner) != 0 ||
        fcntl(a->fd, F_SETFL, fcntl(a->fd, F_GETFL) | O_ASYNC) != 0) {
      *err = std::string("fcntl: ") + strerror(errno);
      return false;
    }
  }
  g_fd.store(a->fd);
  g_every.store(v.every);
  g_refresh.store(v.refresh);
  ioctl(a->fd, PERF_EVENT_IOC_RESET, 0);
  int rc = v.refresh > 0 ? ioctl(a->fd, PERF_EVENT_IOC_REFRESH, v.refresh) : ioctl(a->fd, PERF_EVENT_IOC_ENABLE, 0);
  if (rc != 0) {
    *err = std::string("enable: ") + strerror(errno);
    return false;
  }
  return true;
}

// Returns the overflows a signal-less event took (noasync), else 0.
long Disarm(const Variant& v, uint64_t period_ns, Armed* a) {
  long overflows = 0;
  g_send.store(false);
  if (a->has_timer) {
    timer_delete(a->timer);
    a->has_timer = false;
  }
  if (a->fd >= 0) {
    g_refresh.store(0);
    g_fd.store(-1);
    ioctl(a->fd, PERF_EVENT_IOC_DISABLE, 0);
    if (!v.async && !v.sigtrap) {
      uint64_t count = 0;
      if (read(a->fd, &count, sizeof count) == static_cast<ssize_t>(sizeof count)) overflows = static_cast<long>(count / period_ns);
    }
    if (a->rb) munmap(a->rb, a->rb_len);
    close(a->fd);
    a->fd = -1;
    a->rb = nullptr;
  }
  return overflows;
}

struct Result {
  std::vector<double> cost_us, switch_us, rate, irq[4], vol, invol;
  long signals = 0;
  std::string error;
};

double Median(std::vector<double> x) {
  if (x.empty()) return NAN;
  std::sort(x.begin(), x.end());
  size_t n = x.size();
  return n % 2 ? x[n / 2] : (x[n / 2 - 1] + x[n / 2]) / 2;
}

// Distribution-free 95% interval for the median: order statistics k..n+1-k with
// k = floor(n/2 - 0.98*sqrt(n)) (normal approximation to Binomial(n, 1/2)).
void MedianCi(std::vector<double> x, double* lo, double* hi) {
  *lo = *hi = NAN;
  size_t n = x.size();
  if (n < 6) return;
  std::sort(x.begin(), x.end());
  long k = static_cast<long>(std::floor(n / 2.0 - 0.98 * std::sqrt(static_cast<double>(n))));
  if (k < 1) k = 1;
  *lo = x[static_cast<size_t>(k - 1)];
  *hi = x[n - static_cast<size_t>(k)];
}

}  // namespace

int main(int argc, char** argv) {
  int hz = 1000, reps = 31, block_ms = 150, sleeps = 0;
  std::string only;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--hz")) hz = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--block-ms")) block_ms = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--only")) only = argv[i + 1];
    else if (!strcmp(argv[i], "--sleeps")) sleeps = atoi(argv[i + 1]);
  }
  if (hz <= 0 || reps < 6 || block_ms <= 0) return 2;
  uint64_t period_ns = 1000000000ull / static_cast<uint64_t>(hz);

  std::vector<Variant> variants;
  for (auto& v : AllVariants()) {
    if (v.none || only.empty() || ("," + only + ",").find("," + v.name + ",") != std::string::npos) variants.push_back(v);
  }

  g_tid = static_cast<pid_t>(syscall(SYS_gettid));
  int cpu = sched_getcpu();
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof set, &set) != 0) perror("sched_setaffinity");
  int ncpu = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
  int other = ncpu > 1 ? (cpu + 1) % ncpu : cpu;

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = Handler;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  for (int s : {SIGPROF, SIGIO, SIGTRAP, SIGRTMIN + 5}) sigaction(s, &sa, nullptr);

  std::thread sender([&] {
    cpu_set_t s2;
    CPU_ZERO(&s2);
    CPU_SET(other, &s2);
    sched_setaffinity(0, sizeof s2, &s2);
    timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    while (!g_quit.load()) {
      next.tv_nsec += static_cast<long>(period_ns);
      while (next.tv_nsec >= 1000000000L) {
        next.tv_nsec -= 1000000000L;
        next.tv_sec++;
      }
      clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, nullptr);
      if (g_send.load()) syscall(SYS_tgkill, getpid(), g_tid, SIGPROF);
    }
  });

  // Calibrate the block to block_ms of thread CPU.
  long iters = 1000000;
  for (;;) {
    uint64_t c0 = ThreadCpuNs();
    Work(iters);
    uint64_t dt = ThreadCpuNs() - c0;
    if (dt > 20000000ull) {
      iters = static_cast<long>(static_cast<double>(iters) * block_ms * 1e6 / static_cast<double>(dt));
      break;
    }
    iters *= 2;
  }
  Work(iters);

  size_t nv = variants.size();
  std::vector<Result> results(nv);
  // One block: arms v, runs the work, disarms. false if v cannot be armed.
  struct Block {
    double cpu_ns = 0, signals = 0;
    Irqs irqs;
    long vol = 0, invol = 0;
  };
  auto run_block = [&](const Variant& v, Block* b, std::string* err) {
    Armed a;
    if (sched_getcpu() != cpu) fprintf(stderr, "migrated off cpu %d\n", cpu);
    long s0 = g_signals.load();
    long v0, i0, v1, i1;
    ReadSwitches(&v0, &i0);
    Irqs q0 = ReadIrqs(cpu);
    if (!Arm(v, period_ns, &a, err)) {
      Disarm(v, period_ns, &a);
      return false;
    }
    uint64_t c0 = ThreadCpuNs();
    if (sleeps > 0) {
      // The same work in `sleeps` chunks with a short sleep after each: a thread that
      // blocks and wakes, which switches a per-thread event out and in every time.
      timespec nap = {0, 50000};
      for (int k = 0; k < sleeps; k++) {
        Work(iters / sleeps);
        nanosleep(&nap, nullptr);
      }
    } else {
      Work(iters);
    }
    uint64_t c1 = ThreadCpuNs();
    long overflows = Disarm(v, period_ns, &a);
    Irqs q1 = ReadIrqs(cpu);
    ReadSwitches(&v1, &i1);
    // Signals still queued at disarm are taken here, before the count is read; they
    // are counted though their delivery cost falls outside the block (a few at most).
    long s = g_signals.load() - s0;
    if (!v.async && !v.sigtrap && v.perf) s = overflows;
    b->cpu_ns = static_cast<double>(c1 - c0);
    b->signals = static_cast<double>(s);
    for (int k = 0; k < 4; k++) b->irqs.v[k] = q1.v[k] - q0.v[k];
    b->vol = v1 - v0;
    b->invol = i1 - i0;
    return true;
  };
  // Each variant's block is paired with a `none` block run right before or after it
  // (the order alternating), so slow drifts of the machine's speed (a neighbour on
  // the other hyperthread, frequency) cancel within the pair.
  for (int rep = 0; rep < reps; rep++) {
    for (size_t j = 1; j < nv; j++) {
      size_t i = 1 + (j - 1 + static_cast<size_t>(rep)) % (nv - 1);
      Result& r = results[i];
      if (!r.error.empty()) continue;
      Block b[2];  // [0] none, [1] the variant
      bool variant_first = (rep + static_cast<int>(j)) % 2 == 1;
      std::string err;
      bool ok = true;
      for (int k = 0; k < 2 && ok; k++) {
        int which = variant_first ? 1 - k : k;
        ok = run_block(variants[which == 0 ? 0 : i], &b[which], &err);
      }
      if (!ok) {
        r.error = err;
        continue;
      }
      double sig = b[1].signals;
      if (sig <= 0) continue;
      r.cost_us.push_back((b[1].cpu_ns - b[0].cpu_ns) / sig / 1000.0);
      if (sleeps > 0) r.switch_us.push_back((b[1].cpu_ns - b[0].cpu_ns) / sleeps / 1000.0);
      r.rate.push_back(sig / (b[1].cpu_ns * 1e-9));
      for (int k = 0; k < 4; k++) r.irq[k].push_back(static_cast<double>(b[1].irqs.v[k] - b[0].irqs.v[k]) / sig);
      r.vol.push_back(static_cast<double>(b[1].vol - b[0].vol) / sig);
      r.invol.push_back(static_cast<double>(b[1].invol - b[0].invol) / sig);
      r.signals += static_cast<long>(sig);
    }
  }
  g_quit.store(true);
  sender.join();

  double loadavg[3] = {0, 0, 0};
  getloadavg(loadavg, 3);
  printf("# hz %d, reps %d, block %d ms of thread CPU (%ld iterations), cpu %d, load average %.2f %.2f %.2f\n", hz,
         reps, block_ms, iters, cpu, loadavg[0], loadavg[1], loadavg[2]);
  printf("%-12s %9s %19s %9s %6s %6s %6s %6s %7s %7s%s\n", "variant", "us/signal", "[95% CI]", "signals/s", "LOC", "IWI",
         "RES", "CAL", "volCS", "involCS", sleeps > 0 ? "  us/sleep [95% CI]" : "");
  for (size_t i = 1; i < nv; i++) {
    const Result& r = results[i];
    if (!r.error.empty()) {
      printf("%-12s refused: %s\n", variants[i].name.c_str(), r.error.c_str());
      continue;
    }
    double lo, hi;
    MedianCi(r.cost_us, &lo, &hi);
    printf("%-12s %9.2f [%7.2f, %7.2f] %9.0f %6.2f %6.2f %6.2f %6.2f %7.3f %7.3f", variants[i].name.c_str(),
           Median(r.cost_us), lo, hi, Median(r.rate), Median(r.irq[0]), Median(r.irq[1]), Median(r.irq[2]),
           Median(r.irq[3]), Median(r.vol), Median(r.invol));
    if (sleeps > 0) {
      MedianCi(r.switch_us, &lo, &hi);
      printf("  %6.2f [%5.2f, %5.2f]", Median(r.switch_us), lo, hi);
    }
    printf("\n");
  }
  return 0;
}
