#include "loop_watchdog.h"

#include <algorithm>
#include <chrono>

#include "signal_handler.h"

namespace sigprof {

LoopWatchdog::LoopWatchdog(uv_loop_t* loop, SignalTarget* target, int slot) : loop_(loop), target_(target), slot_(slot) {}

LoopWatchdog::~LoopWatchdog() { Stop(); }

void LoopWatchdog::Start(uint64_t threshold_ns) {
  Stop();
  threshold_ns_ = threshold_ns;
  // Node turns libuv's idle-time metric on for every loop it runs (eventLoopUtilization
  // reads it); this makes sure of it. It only sets a flag, read at the next poll.
  uv_loop_configure(loop_, UV_METRICS_IDLE_TIME);
  // The JS that turns the watchdog on is itself running outside the I/O wait.
  busy_since_.store(MonotonicNs(), std::memory_order_release);
  poll_entry_.store(0, std::memory_order_relaxed);
  sampled_start_.store(0, std::memory_order_relaxed);
  sampled_poll_entry_.store(0, std::memory_order_relaxed);
  prepare_ = new uv_prepare_t;
  check_ = new uv_check_t;
  uv_prepare_init(loop_, prepare_);
  uv_check_init(loop_, check_);
  prepare_->data = this;
  check_->data = this;
  in_gc_.store(false, std::memory_order_relaxed);
  after_gc_.store(0, std::memory_order_relaxed);
  target_->isolate->AddGCPrologueCallback(&LoopWatchdog::OnGCPrologue, this);
  target_->isolate->AddGCEpilogueCallback(&LoopWatchdog::OnGCEpilogue, this);
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
  target_->isolate->RemoveGCPrologueCallback(&LoopWatchdog::OnGCPrologue, this);
  target_->isolate->RemoveGCEpilogueCallback(&LoopWatchdog::OnGCEpilogue, this);
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
  // The poll phase begins: the baseline goes first, so that the watchdog, which reads
  // them once it sees poll_entry_, never pairs this entry with an older baseline.
  self->idle_at_entry_.store(uv_metrics_idle_time(self->loop_), std::memory_order_relaxed);
  self->wait_floor_.store(now, std::memory_order_relaxed);
  self->poll_entry_.store(now, std::memory_order_release);
}

void LoopWatchdog::OnCheck(uv_check_t* handle) {
  auto* self = static_cast<LoopWatchdog*>(handle->data);
  uint64_t now = MonotonicNs();
  uint64_t entry = self->poll_entry_.load(std::memory_order_acquire);
  uint64_t start = now;
  if (entry != 0) {
    // A block the watchdog already sampled in this poll phase keeps its start (its id is
    // matched by it); otherwise the busy span began when the wait ended.
    if (self->sampled_poll_entry_.load(std::memory_order_acquire) == entry) start = self->sampled_start_.load(std::memory_order_acquire);
    else start = self->PollBusySince(entry, now);
  }
  self->busy_since_.store(start, std::memory_order_release);
  self->poll_entry_.store(0, std::memory_order_release);
}

uint64_t LoopWatchdog::PollBusySince(uint64_t entry, uint64_t now) {
  uint64_t idle = uv_metrics_idle_time(loop_) - idle_at_entry_.load(std::memory_order_relaxed);
  uint64_t since = std::max(entry + idle, wait_floor_.load(std::memory_order_acquire));
  return std::min(since, now);
}

// V8 runs GC callbacks in the EXTERNAL state on the JS thread, with the JS that allocated
// still on the stack below an exit frame: a sample taken from the epilogue sees it.
void LoopWatchdog::OnGCPrologue(v8::Isolate*, v8::GCType, v8::GCCallbackFlags, void* data) {
  static_cast<LoopWatchdog*>(data)->in_gc_.store(true, std::memory_order_release);
}

void LoopWatchdog::OnGCEpilogue(v8::Isolate*, v8::GCType, v8::GCCallbackFlags, void* data) {
  auto* self = static_cast<LoopWatchdog*>(data);
  self->in_gc_.store(false, std::memory_order_release);
  uint32_t id = self->after_gc_.exchange(0, std::memory_order_acq_rel);
  if (id == 0) return;
  uint64_t start = self->busy_since_.load(std::memory_order_acquire);
  // Inside the poll phase the block is the one sampled there, if it is this phase's.
  uint64_t entry = self->poll_entry_.load(std::memory_order_acquire);
  if (start == 0 && entry != 0 && self->sampled_poll_entry_.load(std::memory_order_acquire) == entry) {
    start = self->sampled_start_.load(std::memory_order_acquire);
  }
  if (start == 0 || self->sampled_start_.load(std::memory_order_acquire) != start ||
      self->sampled_id_.load(std::memory_order_acquire) != id) {
    return;  // that block is over
  }
  // Signals to the calling thread are delivered before the call returns.
  self->SendSample(id, MonotonicNs() - start);
}

void LoopWatchdog::SendSample(uint32_t id, uint64_t blocked_ns) {
  // Never send our signal into SIG_DFL (a real-time signal's default action kills): if
  // someone else's handler owns it, the block waits (sampled at a later poll if ours comes
  // back in time). At most kSamplesPerBlock signals per block, kResampleEvery apart, each
  // taken by the handler long before the next: the real-time queue stays short.
  if (RepairSignalHandler() != Disposition::kOurs) {
    target_->loop_withheld.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  target_->loop_blocked_ns.store(blocked_ns, std::memory_order_release);
  target_->loop_block_id.store(id, std::memory_order_release);
  QueueSignal(target_->tid, SignalValue(slot_, SampleKind::kLoopBlock, target_->queue_secret.load(std::memory_order_relaxed)));
}

void LoopWatchdog::Run() {
  // Polling at a quarter of the threshold finds a block at most 25% late; the stack is
  // taken while the block goes on, so it shows what blocked.
  auto period = std::chrono::nanoseconds(std::max<uint64_t>(threshold_ns_ / 4, 1000000));
  // One sample per block was a lottery (issue 9): the handler gets no JS frames while V8
  // is in a GC (GetStackSample returns none in that state), and on this loaded 2-core
  // machine 7-9 of 100 60-ms blocks of a busy loop calling performance.now() were sampled
  // inside a scavenge, some of which waited 85 ms for helper threads that had no core.
  // So: (1) a block found while V8 is in a GC is sampled from the GC epilogue instead, on
  // the JS thread, where the stack is visible again; (2) while the block goes on it is
  // sampled again, kSamplesPerBlock times at most and kResampleEvery apart, for the other
  // moments without JS frames (a frame being set up, a GC starting as the signal is
  // sent). lib/loop-watchdog.ts keeps the first sample with JS frames. The handler
  // does not tell this thread which sample had them, hence the fixed count.
  auto resample_every = std::min<std::chrono::nanoseconds>(period, kResampleEvery);
  int sent = 0;
  // The poll phase seen at the last look, libuv's idle time then, and when that was.
  uint64_t seen_entry = 0, seen_idle = 0, seen_at = 0;
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    bool resampling = sent > 0 && sent < kSamplesPerBlock;
    cv_.wait_for(lock, resampling ? resample_every : period, [this] { return stop_; });
    if (stop_) break;
    uint64_t start = busy_since_.load(std::memory_order_acquire);
    uint64_t now = MonotonicNs();
    uint64_t entry = 0;
    if (start == 0) {
      // In the poll phase (or between the check hook's two stores: the next look sees it).
      entry = poll_entry_.load(std::memory_order_acquire);
      if (entry == 0) {
        sent = 0;
        continue;
      }
      uint64_t idle = uv_metrics_idle_time(loop_);
      if (entry != seen_entry) {
        seen_entry = entry;
        seen_idle = idle_at_entry_.load(std::memory_order_relaxed);
        seen_at = entry;
      }
      // The idle time moved since the last look: the loop waited after it, so its wait
      // ended no earlier than that look. Exact waits make this redundant; a wait a signal
      // interrupted (whose time libuv drops) would otherwise look like work.
      if (idle != seen_idle) {
        uint64_t floor = wait_floor_.load(std::memory_order_relaxed);
        if (seen_at > floor) wait_floor_.store(seen_at, std::memory_order_release);
        seen_idle = idle;
      }
      seen_at = now;
      start = PollBusySince(entry, now);
    }
    uint32_t id;
    if (sampled_start_.load(std::memory_order_relaxed) == start) {
      if (sent >= kSamplesPerBlock) continue;
      id = sampled_id_.load(std::memory_order_relaxed);
    } else {
      if (now - start < threshold_ns_) {
        sent = 0;
        continue;
      }
      id = ++next_id_;
      if (id == 0) id = ++next_id_;  // 0 means "no weight" to the handler
      sampled_id_.store(id, std::memory_order_release);
      sampled_poll_entry_.store(entry, std::memory_order_release);
      sampled_start_.store(start, std::memory_order_release);
      sent = 0;
    }
    sent++;
    if (in_gc_.load(std::memory_order_acquire)) {
      after_gc_.store(id, std::memory_order_release);
      continue;
    }
    SendSample(id, now - start);
  }
}

std::vector<uint64_t> LoopWatchdog::TakeDurations() {
  std::lock_guard<std::mutex> lock(durations_mu_);
  std::vector<uint64_t> out;
  out.swap(durations_);
  return out;
}

}  // namespace sigprof
