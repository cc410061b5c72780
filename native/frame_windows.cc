#include "frame_windows.h"

#include <cstring>

namespace sigprof {

#if defined(__x86_64__)
namespace {
// V8 builds every JS frame on x86_64 with `push rbp; mov rbp, rsp` (its own sampler
// matches the same bytes, at the PC only, in IsNoFrameRegion) and leaves it with
// `mov rsp, rbp; pop rbp` before the return sequence, which since V8 9 also compares
// the argument count with the formal one and has a second return for extra arguments.
constexpr uint8_t kPushFrame[] = {0x55, 0x48, 0x89, 0xe5};
constexpr uint8_t kLeaveFrame[] = {0x48, 0x8b, 0xe5, 0x5d};
// The deoptimization check before the push is a few instructions; a push further in is
// not this prologue.
constexpr uint32_t kPrologueReach = 64;
// From the pop to the `ret n`: compare, branch (seen: 6 bytes); and the extra-argument
// path after it (pop, lea, push, ret; seen: 9 bytes).
constexpr uint32_t kEpilogueReach = 32;
constexpr uint8_t kRet = 0xc3;
constexpr uint8_t kRetImm16 = 0xc2;

bool At(const uint8_t* code, uint32_t size, uint32_t i, const uint8_t* pattern, uint32_t n) {
  return i + n <= size && memcmp(code + i, pattern, n) == 0;
}
}  // namespace

std::shared_ptr<const FrameWindows> FindFrameWindows(const uint8_t* code, uint32_t size) {
  if (code == nullptr || size == 0) return nullptr;
  FrameWindows w;
  for (uint32_t i = 0; i < size && i <= kPrologueReach; i++) {
    if (At(code, size, i, kPushFrame, sizeof(kPushFrame))) {
      if (i > 0) w.emplace_back(0, i);
      break;
    }
  }
  // memmem: every JIT code object passes through here once, on the JS thread.
  for (uint32_t i = 0; i + sizeof(kLeaveFrame) <= size;) {
    const void* hit = memmem(code + i, size - i, kLeaveFrame, sizeof(kLeaveFrame));
    if (hit == nullptr) break;
    i = static_cast<uint32_t>(static_cast<const uint8_t*>(hit) - code);
    uint32_t begin = i + sizeof(kLeaveFrame);
    uint32_t limit = begin + kEpilogueReach < size ? begin + kEpilogueReach : size;
    uint32_t end = 0;
    for (uint32_t j = begin; j < limit; j++) {
      if (code[j] == kRet) { end = j + 1; break; }
      if (code[j] != kRetImm16) continue;
      end = j + 3;
      // The extra-argument path, reached only by the branch before the `ret n`, starts
      // right after it by popping the return address into a scratch register, and is
      // frameless through its own `ret`. Anything else after the `ret n` is other code.
      uint32_t k = end;
      if (k + 1 < size && code[k] == 0x41 && code[k + 1] >= 0x58 && code[k + 1] <= 0x5f) {
        k += 2;
      } else if (k < size && code[k] >= 0x58 && code[k] <= 0x5f) {
        k += 1;
      } else {
        break;
      }
      for (uint32_t stop = k + kEpilogueReach < size ? k + kEpilogueReach : size; k < stop; k++) {
        if (code[k] == kRet) { end = k + 1; break; }
      }
      break;
    }
    if (end > begin) w.emplace_back(begin, end < size ? end : size);
    i = begin;
  }
  if (w.empty()) return nullptr;
  return std::make_shared<const FrameWindows>(std::move(w));
}
#else
std::shared_ptr<const FrameWindows> FindFrameWindows(const uint8_t*, uint32_t) { return nullptr; }
#endif

}  // namespace sigprof
