// Lock-free single-producer/single-consumer ring of fixed-size sample slots.
//
// The producer is the sampling-signal handler on the JS thread, the consumer the sampler's
// collector thread. Slots are allocated once, before the timer starts, so the handler
// only writes pre-allocated memory and two atomics. A full ring never blocks the
// producer: the caller counts the sample as dropped.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include <sys/mman.h>
#include <unistd.h>

namespace sigprof {

// Frames captured per sample: one more than a profile keeps (kKeptFrames, 255 like V8's
// own TickSample), so that a stack that did not fit is known to be truncated.
constexpr size_t kKeptFrames = 255;
constexpr size_t kMaxFrames = kKeptFrames + 1;

enum class SampleKind : uint8_t { kCpu = 0, kLoopBlock = 1 };

struct RawSample {
  uint64_t timestamp_ns;       // CLOCK_MONOTONIC when the handler ran
  uint64_t code_seq;           // code-map events applied when the sample was taken
  uint64_t aux;                // kLoopBlock: how long the loop had been blocked (ns)
  void* pc;                    // register PC: the leaf when it is JIT code
  void* external_callback;     // set when V8 was running an API callback
  // Where a leaf with no frame of its own returns to: the word at the interrupted SP
  // (x86_64) or the link register (arm64); null when SP was outside the thread's stack.
  // Used only when the PC is in a builtin or interpreter machinery (Sampler::ResolveSample).
  void* return_hint;
  uint32_t weight;             // timer periods this sample stands for (1 + overrun)
  uint16_t frame_count;
  uint8_t vm_state;            // v8::StateTag
  SampleKind kind;
  uint32_t label_id;           // SignalTarget::label_id when the sample was taken
  void* frames[kMaxFrames];
};

template <typename T>
class SpscRing {
 public:
  // capacity must be a power of two.
  explicit SpscRing(size_t capacity) : mask_(capacity - 1), slots_(new T[capacity]) {}

  size_t capacity() const { return mask_ + 1; }

  // Maps every page of the slots writable without writing to them (no race with a
  // producer that is already writing). Without it the handler takes a page fault (a
  // zeroed page, several µs) at the first write into each page of the first lap.
  // Best effort: kernels before 5.14 lack MADV_POPULATE_WRITE and keep the lazy faults.
  void Prefault() {
#ifdef MADV_POPULATE_WRITE
    const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
    uintptr_t begin = reinterpret_cast<uintptr_t>(slots_.get());
    uintptr_t end = begin + capacity() * sizeof(T);
    begin = (begin + page - 1) & ~(page - 1);
    end &= ~(page - 1);
    if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_POPULATE_WRITE);
#endif
  }

  // Producer: a slot to fill, or nullptr when full. Call Publish() after filling it.
  T* BeginWrite() {
    uint64_t tail = tail_.load(std::memory_order_relaxed);
    uint64_t head = head_.load(std::memory_order_acquire);
    if (tail - head > mask_) return nullptr;
    return &slots_[tail & mask_];
  }
  void Publish() {
    tail_.store(tail_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  }

  // Consumer: the oldest published slot, or nullptr when empty. Call Pop() when done with it.
  const T* Peek() const {
    uint64_t head = head_.load(std::memory_order_relaxed);
    uint64_t tail = tail_.load(std::memory_order_acquire);
    if (head == tail) return nullptr;
    return &slots_[head & mask_];
  }
  void Pop() { head_.store(head_.load(std::memory_order_relaxed) + 1, std::memory_order_release); }

  size_t Size() const {
    return static_cast<size_t>(tail_.load(std::memory_order_acquire) - head_.load(std::memory_order_acquire));
  }

 private:
  static_assert(std::atomic<uint64_t>::is_always_lock_free, "the handler needs lock-free 64-bit atomics");
  const size_t mask_;
  std::unique_ptr<T[]> slots_;
  // Separate cache lines: the handler writes tail_, the collector head_.
  alignas(64) std::atomic<uint64_t> head_{0};
  alignas(64) std::atomic<uint64_t> tail_{0};
};

using SampleRing = SpscRing<RawSample>;

}  // namespace sigprof
