// The sampling clocks behind one small interface. A clock makes our sampling signal (a
// real-time signal, SampleSignal()) reach the profiled
// thread once per `period_ns` of its CPU time; the handler (signal_handler.cc) only asks
// the clock's Weight function how many periods a signal stands for. One file per clock:
//   clock_perf_event.cc  per-thread perf event (PERF_COUNT_SW_TASK_CLOCK, user-mode CPU):
//                        the default wherever perf_event_open is permitted
//                        (sigio_fallback.cc: what the kernel sends when its signal cannot queue)
//   clock_cpu_timer.cc   POSIX timer on the thread's CPU clock (user + kernel CPU; fires on
//                        kernel ticks, so up to ~200 Hz): fallback at low rates
//   clock_thread.cc      helper thread watching the thread's CPU clock and queueing our signal
//                        (user + kernel; skids onto system calls): the last fallback, and
//                        the only clock safe under another profiler's handler
// Design notes and measurements: docs/signals-and-clocks.md.
#pragma once
#include <signal.h>
#include <sys/types.h>
#include <time.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

namespace sigprof {

struct SignalTarget;

enum class ClockKind : uint8_t { kNone = 0, kPerfEvent = 1, kCpuTimer = 2, kThread = 3 };
const char* ClockName(ClockKind kind);  // "perf-event", "timer", "thread"

class SampleClock {
 public:
  virtual ~SampleClock() = default;
  virtual ClockKind kind() const = 0;
  // Called on the target thread. `value` is the signal value for clocks that carry one.
  // On failure nothing is left armed and `error` says why.
  virtual bool Start(SignalTarget* target, clockid_t cpu_clock, uint64_t period_ns, uint64_t value,
                     std::string* error) = 0;
  // Disarms; afterwards no new signal of this clock is generated. Returns the periods the
  // clock counted that the handler never credited (they went to another profiler's
  // handler), to be reported as lost.
  virtual uint64_t Stop() = 0;
  // CPU time of a helper thread the clock runs (0 if none).
  virtual uint64_t helper_cpu_ns() const { return 0; }
};

std::unique_ptr<SampleClock> NewPerfEventClock();
std::unique_ptr<SampleClock> NewCpuTimerClock();
std::unique_ptr<SampleClock> NewThreadClock();

// What one signal is worth, in periods, for each clock (async-signal-safe; called by the
// handler after it has recognised the signal as this clock's and the target's).
uint64_t CpuTimerWeight(const siginfo_t* info);
uint64_t ThreadClockWeight(SignalTarget* target);
uint64_t PerfEventWeight(SignalTarget* target, const siginfo_t* info);

// A clock's CPU time in ns (0 when it cannot be read, e.g. the thread is gone).
uint64_t ClockNs(clockid_t clock);
// CPU time of the calling thread (CLOCK_THREAD_CPUTIME_ID), in ns.
uint64_t ThreadCpuNs();

}  // namespace sigprof
