// The SIGPROF handler and the little it needs: a per-thread target holding pre-allocated
// memory and atomics only.
#pragma once
#include <pthread.h>
#include <signal.h>
#include <sys/types.h>
#include <v8.h>

#include <atomic>
#include <cstdint>

#include "ring_buffer.h"

namespace sigprof {

// Everything the handler reads or writes. Owned by a Sampler; registered in a fixed
// slot table so a signal names its target by slot number, never by raw pointer.
struct SignalTarget {
  v8::Isolate* isolate = nullptr;
  pid_t tid = 0;
  pthread_t thread{};  // the same thread, compared in the handler without a syscall
  SampleRing* ring = nullptr;
  const std::atomic<uint64_t>* code_seq = nullptr;
  std::atomic<bool> cpu_active{false};
  std::atomic<bool> loop_active{false};
  std::atomic<uint64_t> loop_blocked_ns{0};  // written by the loop watchdog before it signals
  std::atomic<uint64_t> pending_weight{0};   // CPU periods owed by the helper-thread timer
  // Id of the current profile-label set (lib/labels.ts), 0 = none. JS writes it with one
  // plain 32-bit store through a Uint32Array over this word; the handler interrupts that
  // same thread, so it sees the old or the new value, never a torn one.
  std::atomic<uint32_t> label_id{0};

  std::atomic<uint64_t> signals{0};
  std::atomic<uint64_t> samples{0};
  std::atomic<uint64_t> weight{0};
  std::atomic<uint64_t> dropped{0};
  std::atomic<uint64_t> dropped_weight{0};
  std::atomic<uint64_t> handler_ns_total{0};
  std::atomic<uint64_t> handler_ns_max{0};
  std::atomic<uint64_t> handler_calls{0};
};

// A signal value says: ours (magic), which slot, what kind, and a weight (0 = take the
// helper thread's pending weight; timer signals use 1 + si_overrun).
constexpr uint64_t kSignalMagic = 0x5350;  // "SP"
inline uint64_t EncodeSignal(int slot, SampleKind kind, uint32_t weight) {
  return (kSignalMagic << 48) | (static_cast<uint64_t>(kind) << 40) | (static_cast<uint64_t>(slot & 0xff) << 32) | weight;
}

constexpr int kMaxTargets = 64;
int RegisterTarget(SignalTarget* target);  // slot, or -1 when full
void UnregisterTarget(int slot);

// Installs the SIGPROF handler if it is not ours already (another profiler may have
// replaced it since). Signals that are not ours go to the handler that was there before.
bool EnsureSignalHandler();

// Queues SIGPROF for `tid` carrying `value` (rt_tgsigqueueinfo). Returns errno or 0.
int QueueSignal(pid_t tid, uint64_t value);

uint64_t MonotonicNs();

}  // namespace sigprof
