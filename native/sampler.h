// Per-isolate CPU sampler: owns the ring, the timer, the code map and the collector
// thread that empties the ring and resolves raw addresses while the JS thread runs.
// No process-wide state besides the handler's slot table and the thread registry
// (worker_registry.cc, which only starts, stops and drains samplers), so each Worker gets its own.
#pragma once
#include <v8.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "code_map.h"
#include "loop_watchdog.h"
#include "ring_buffer.h"
#include "signal_handler.h"
#include "clock.h"

namespace sigprof {

class Sampler {
 public:
  // Resolved records, as 32-bit words: [frame count, weight, vm_state | kind << 8 |
  // had_js << 16, aux (µs), label id] followed by (function id, source position) per
  // frame, leaf first. had_js: V8 walked JS frames (the frame count may also hold a leaf
  // named from the PC alone).
  static constexpr size_t kRecordHeaderWords = 5;

  explicit Sampler(v8::Isolate* isolate);
  ~Sampler();

  CodeMap& code_map() { return code_map_; }
  // The word the handler copies into every sample as its label id (JS writes it).
  std::atomic<uint32_t>* label_slot() { return &target_.label_id; }
  bool running() const { return running_; }
  // Samples recorded since the last Start (any thread: an atomic).
  uint64_t samples_recorded() const { return target_.samples.load(std::memory_order_relaxed); }

  // JS thread. The clock: SIGPROF_CLOCK=perf-event|timer|thread forces one (an error if it
  // cannot start); otherwise the perf event where permitted, else the CPU timer up to
  // 200 Hz, and the helper thread above or when the timer fails too. Under another
  // profiler's handler: the helper thread.
  bool Start(double hz, std::string* error);
  void Stop();

  // Hands over all resolved records; when stopped or asked to flush, it first empties the
  // ring on the calling thread.
  std::vector<uint32_t> TakeRecords(bool flush = false);

  // Raw frame addresses of the calling thread's JS stack (GetStackSample from a native
  // function: V8 walks from the exit frame). Returns the count.
  size_t RawStack(void** frames, size_t limit);

  // Event-loop block detection (the eventloop profile). JS thread.
  bool StartLoopWatchdog(uint64_t threshold_ns, std::string* error);
  void StopLoopWatchdog();
  // Resolved loop-block samples (same record layout; the weight word is the block id)
  // and (block id, duration ns) pairs of blocks that have ended.
  std::vector<uint32_t> TakeLoopRecords();
  std::vector<uint64_t> TakeLoopDurations();

  // Profile.Add's stacks memoized by physical call path (cpu_profiler.cc). Per isolate,
  // so the arrays it holds go away with it.
  struct StackMemo {
    uint64_t seq = ~0ull;
    uint32_t skip = 0, max = 0;
    std::vector<void*> raw;
    v8::Global<v8::Uint32Array> out;
  };
  StackMemo& stack_memo(uint64_t hash) { return stack_memo_[hash & (kStackMemoSlots - 1)]; }

  // A stable `code` for the last error Start/StartLoopWatchdog reported (or nullptr).
  const char* error_code() const { return error_code_; }

  struct Stats {
    uint64_t signals, samples, weight, dropped, dropped_weight, handler_calls, handler_ns_total, handler_ns_max;
    uint64_t foreign_lost_weight, loop_withheld, rejected;
    uint64_t frames, unresolved_frames, truncated, start_ns, stop_ns;
    uint64_t collector_cpu_ns, helper_cpu_ns;  // the profiler's CPU on its own threads
    double hz;
    ClockKind clock;
  };
  Stats GetStats() const;

 private:
  bool EnsureTarget(std::string* error, bool* foreign_below);
  void UpdateHistory();
  void CollectorLoop(std::chrono::microseconds every);
  void CollectOnce();
  void ResolveSample(const RawSample& s, std::vector<ResolvedFrame>* scratch);
  void RecoverFramelessCaller(const RawSample& s, bool js_prologue, std::vector<ResolvedFrame>* out);

  v8::Isolate* const isolate_;
  CodeMap code_map_;
  std::unique_ptr<SampleRing> ring_;
  SignalTarget target_;
  int slot_ = -1;
  std::unique_ptr<SampleClock> clock_;
  bool running_ = false;
  bool ring_prefaulted_ = false;  // collector thread only (one at a time)
  ClockKind clock_kind_ = ClockKind::kNone;
  uint64_t helper_cpu_ns_ = 0;  // the last clock's helper thread, after it stopped
  const char* error_code_ = nullptr;
  double hz_ = 0;
  uint64_t start_ns_ = 0, stop_ns_ = 0;

  std::thread collector_;
  std::atomic<uint64_t> collector_cpu_ns_{0};
  std::mutex collector_mu_;
  std::condition_variable collector_cv_;
  bool collector_stop_ = false;
  std::mutex consume_mu_;  // the ring has one consumer at a time: collector or JS thread

  std::mutex out_mu_;
  std::vector<uint32_t> out_;
  std::vector<uint32_t> loop_out_;
  std::unique_ptr<LoopWatchdog> watchdog_;
  static constexpr size_t kStackMemoSlots = 1024;
  std::unique_ptr<StackMemo[]> stack_memo_{new StackMemo[kStackMemoSlots]};
  std::atomic<uint64_t> frames_{0}, unresolved_frames_{0}, truncated_{0};
};

}  // namespace sigprof
