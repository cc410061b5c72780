// Event-loop block detection for the `eventloop` profile. libuv prepare/check hooks mark
// the poll phase, and inside it libuv's own idle-time metric (uv_metrics_idle_time) says
// how long the loop actually waited: the loop is busy from the end of its I/O wait
// (inside the poll phase, where I/O callbacks run) to the next prepare. A watchdog thread
// that sees the loop busy for longer than the threshold asks the sampling-signal handler
// (through the sampler's ring) for the JS stack while the loop is still blocked, a few
// times per block (see Run()). When the loop turns again the prepare hook records the
// block's full duration.
#pragma once
#include <uv.h>
#include <v8.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace sigprof {

struct SignalTarget;

class LoopWatchdog {
 public:
  LoopWatchdog(uv_loop_t* loop, SignalTarget* target, int slot);
  ~LoopWatchdog();

  // JS thread.
  void Start(uint64_t threshold_ns);
  void Stop();
  bool running() const { return running_; }

  // (block id, duration ns) of blocks that have ended; JS thread.
  std::vector<uint64_t> TakeDurations();

 private:
  static void OnPrepare(uv_prepare_t* handle);
  static void OnCheck(uv_check_t* handle);
  static void OnGCPrologue(v8::Isolate* isolate, v8::GCType type, v8::GCCallbackFlags flags, void* data);
  static void OnGCEpilogue(v8::Isolate* isolate, v8::GCType type, v8::GCCallbackFlags flags, void* data);
  void Run();
  // Inside the poll phase: when the I/O wait ended (the busy span's start), as far as
  // libuv's idle time and the watchdog's floor say; `now` while the loop still waits.
  uint64_t PollBusySince(uint64_t entry, uint64_t now);
  void SendSample(uint32_t id, uint64_t blocked_ns);

  // Samples taken per block at most, and their spacing (see Run()).
  static constexpr int kSamplesPerBlock = 8;
  static constexpr std::chrono::nanoseconds kResampleEvery{5000000};

  uv_loop_t* const loop_;
  SignalTarget* const target_;
  const int slot_;
  uv_prepare_t* prepare_ = nullptr;
  uv_check_t* check_ = nullptr;
  bool running_ = false;
  uint64_t threshold_ns_ = 0;

  // When the loop last left its I/O wait, outside the poll phase; 0 inside it (the prepare
  // hook clears it; the check hook sets it to when the poll phase's wait ended).
  std::atomic<uint64_t> busy_since_{0};
  // The poll phase (prepare hook → check hook): when it began (0 outside it), libuv's idle
  // time then, and a lower bound on when its wait ended, raised by the watchdog whenever
  // it sees the idle time move. The bound is what keeps a wait that a signal interrupted
  // from looking like work: libuv restarts an interrupted epoll_wait without counting the
  // time already waited.
  std::atomic<uint64_t> poll_entry_{0};
  std::atomic<uint64_t> idle_at_entry_{0};
  std::atomic<uint64_t> wait_floor_{0};
  // The poll phase a block the watchdog sampled began in (0: the block began outside one).
  std::atomic<uint64_t> sampled_poll_entry_{0};
  // The block the watchdog sampled: its start and its id (sent as the signal's weight).
  std::atomic<uint64_t> sampled_start_{0};
  std::atomic<uint32_t> sampled_id_{0};
  uint32_t next_id_ = 0;
  // V8 is collecting (set by GC prologue, cleared by epilogue; JS thread), and the block
  // id whose sample waits for the GC's end (watchdog thread sets, epilogue takes).
  std::atomic<bool> in_gc_{false};
  std::atomic<uint32_t> after_gc_{0};

  std::mutex durations_mu_;
  std::vector<uint64_t> durations_;

  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
};

}  // namespace sigprof
