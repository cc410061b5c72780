#include "loop_watchdog.h"

#include <chrono>

#include "signal_handler.h"

namespace sigprof {

LoopWatchdog::LoopWatchdog(uv_loop_t* loop, SignalTarget* target, int slot) : loop_(loop), target_(target), slot_(slot) {}

LoopWatchdog::~LoopWatchdog() { Stop(); }

void LoopWatchdog::Start(uint64_t threshold_ns) {
  Stop();
  threshold_ns_ = threshold_ns;
  // The JS that turns the watchdog on is itself running outside the I/O wait.
  busy_since_.store(MonotonicNs(), std::memory_order_release);
  sampled_start_.store(0, std::memory_order_relaxed);
  prepare_ = new uv_prepare_t;
  check_ = new uv_check_t;
  uv_prepare_init(loop_, prepare_);
  uv_check_init(loop_, check_);
  prepare_->data = this;
  check_->data = this;
  uv_prepare_start(prepare_, &LoopWatchdog::OnPrepare);
  uv_check_start(check_, &LoopWatchdog::OnCheck);
  // Observing the loop must not keep it alive.
  uv_unref(reinterpret_cast<uv_handle_t*>(prepare_));
  uv_unref(reinterpret_cast<uv_handle_t*>(check_));
  target_->loop_active.store(true, std::memory_order_release);
  stop_ = false;
  thread_ = std::thread(&LoopWatchdog::Run, this);
  running_ = true;
}

void LoopWatchdog::Stop() {
  if (!running_) return;
  target_->loop_active.store(false, std::memory_order_release);
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
  uv_prepare_stop(prepare_);
  uv_check_stop(check_);
  // Handles are freed once libuv is done with them.
  uv_close(reinterpret_cast<uv_handle_t*>(prepare_), [](uv_handle_t* h) { delete reinterpret_cast<uv_prepare_t*>(h); });
  uv_close(reinterpret_cast<uv_handle_t*>(check_), [](uv_handle_t* h) { delete reinterpret_cast<uv_check_t*>(h); });
  prepare_ = nullptr;
  check_ = nullptr;
  running_ = false;
}

void LoopWatchdog::OnPrepare(uv_prepare_t* handle) {
  auto* self = static_cast<LoopWatchdog*>(handle->data);
  uint64_t now = MonotonicNs();
  uint64_t start = self->busy_since_.exchange(0, std::memory_order_acq_rel);
  if (start != 0 && self->sampled_start_.load(std::memory_order_acquire) == start) {
    uint32_t id = self->sampled_id_.load(std::memory_order_acquire);
    std::lock_guard<std::mutex> lock(self->durations_mu_);
    self->durations_.push_back(id);
    self->durations_.push_back(now - start);
  }
}

void LoopWatchdog::OnCheck(uv_check_t* handle) {
  auto* self = static_cast<LoopWatchdog*>(handle->data);
  self->busy_since_.store(MonotonicNs(), std::memory_order_release);
}

void LoopWatchdog::Run() {
  // Polling at a quarter of the threshold finds a block at most 25% late; the stack is
  // taken while the block goes on, so it shows what blocked.
  auto period = std::chrono::nanoseconds(std::max<uint64_t>(threshold_ns_ / 4, 1000000));
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    cv_.wait_for(lock, period, [this] { return stop_; });
    if (stop_) break;
    uint64_t start = busy_since_.load(std::memory_order_acquire);
    if (start == 0) continue;
    uint64_t now = MonotonicNs();
    if (now - start < threshold_ns_ || sampled_start_.load(std::memory_order_relaxed) == start) continue;
    // Never send our signal into SIG_DFL (a real-time signal's default action kills): if
    // someone else's handler owns it, the block waits (sampled at a later poll if ours
    // comes back in time). One signal per block at most, so none pile up in the queue.
    if (RepairSignalHandler() != Disposition::kOurs) {
      target_->loop_withheld.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    uint32_t id = ++next_id_;
    if (id == 0) id = ++next_id_;  // 0 means "no weight" to the handler
    sampled_id_.store(id, std::memory_order_release);
    sampled_start_.store(start, std::memory_order_release);
    target_->loop_blocked_ns.store(now - start, std::memory_order_release);
    target_->loop_block_id.store(id, std::memory_order_release);
    QueueSignal(target_->tid, SignalValue(slot_, SampleKind::kLoopBlock, target_->queue_secret.load(std::memory_order_relaxed)));
  }
}

std::vector<uint64_t> LoopWatchdog::TakeDurations() {
  std::lock_guard<std::mutex> lock(durations_mu_);
  std::vector<uint64_t> out;
  out.swap(durations_);
  return out;
}

}  // namespace sigprof
