#ifndef SIGPROF_FRAME_WINDOWS_H_
#define SIGPROF_FRAME_WINDOWS_H_

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

namespace sigprof {

// Code offsets [begin, end) of one JIT function where its own frame does not exist: the
// instructions before its prologue pushes the frame pointer, and those between the
// epilogue's pop of it and the return. There FP is still the caller's frame, so V8's
// stack walk takes that frame for the leaf's own and names the caller's caller next,
// while the word at SP is the return address into the caller.
using FrameWindows = std::vector<std::pair<uint32_t, uint32_t>>;

// JS thread, from the code event, while the code is live. Read from the machine code
// itself: V8's code events say nothing about frames. Null when none is found, and
// always on architectures other than x86_64, where callers fall back to the code's first
// source-position range (see CodeMap::FrameAt).
std::shared_ptr<const FrameWindows> FindFrameWindows(const uint8_t* code, uint32_t size);

inline bool InFrameWindow(const FrameWindows& w, uint32_t offset) {
  for (const auto& r : w) {
    if (offset >= r.first && offset < r.second) return true;
  }
  return false;
}

}  // namespace sigprof

#endif  // SIGPROF_FRAME_WINDOWS_H_
