// Event-loop block detection for the `eventloop` profile. libuv prepare/check hooks mark
// when the loop leaves and re-enters its I/O wait; a watchdog thread that sees the loop
// busy for longer than the threshold asks the sampling-signal handler (through the
// sampler's ring) for the JS stack while the loop is still blocked, a few times per block (see
// Run()). When the loop turns again the prepare hook records the block's full duration.
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

  // When the loop last left its I/O wait; 0 while it waits (idle is not blocked).
  std::atomic<uint64_t> busy_since_{0};
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
