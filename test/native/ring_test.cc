// Unit test of the SPSC ring used between the SIGPROF handler and the collector.
// Built and run by test/ring-buffer.test.js; exits non-zero with a message on failure.
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "../../native/ring_buffer.h"

using sigprof::SpscRing;

struct Item {
  uint64_t seq;
  uint64_t check;
};

#define EXPECT(cond)                                                   \
  do {                                                                 \
    if (!(cond)) {                                                     \
      fprintf(stderr, "%s:%d: expected %s\n", __FILE__, __LINE__, #cond); \
      exit(1);                                                         \
    }                                                                  \
  } while (0)

int main() {
  {
    SpscRing<Item> ring(4);
    EXPECT(ring.capacity() == 4);
    EXPECT(ring.Peek() == nullptr);
    for (uint64_t i = 0; i < 4; i++) {
      Item* slot = ring.BeginWrite();
      EXPECT(slot != nullptr);
      slot->seq = i;
      ring.Publish();
    }
    EXPECT(ring.BeginWrite() == nullptr);  // full: the producer is refused, never blocked
    EXPECT(ring.Size() == 4);
    for (uint64_t i = 0; i < 4; i++) {
      const Item* it = ring.Peek();
      EXPECT(it != nullptr && it->seq == i);  // FIFO
      ring.Pop();
    }
    EXPECT(ring.Peek() == nullptr);
    EXPECT(ring.BeginWrite() != nullptr);  // room again after popping
  }
  {
    // Concurrent producer/consumer: every published item arrives once, in order, intact.
    SpscRing<Item> ring(64);
    const uint64_t n = 2000000;
    std::atomic<uint64_t> refused{0};
    std::thread producer([&] {
      uint64_t i = 0;
      while (i < n) {
        Item* slot = ring.BeginWrite();
        if (!slot) {
          refused++;
          continue;
        }
        slot->seq = i;
        slot->check = i * 2654435761u;
        ring.Publish();
        i++;
      }
    });
    uint64_t expect = 0;
    while (expect < n) {
      const Item* it = ring.Peek();
      if (!it) continue;
      EXPECT(it->seq == expect);
      EXPECT(it->check == expect * 2654435761u);
      ring.Pop();
      expect++;
    }
    producer.join();
    EXPECT(ring.Peek() == nullptr);
    printf("ok %llu items, producer refused %llu times\n", (unsigned long long)n, (unsigned long long)refused.load());
  }
  return 0;
}
