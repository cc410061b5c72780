// LD_PRELOAD interposer for the signal-safety test: counts allocator calls made on the
// main (JS) thread while SIGPROF, and only SIGPROF, is blocked in its signal mask: that
// is the mask while a SIGPROF handler runs (sa_mask is empty). Node blocks every signal
// around pthread_create; SIGTERM being blocked tells those moments apart. Reports at exit.
#define _GNU_SOURCE
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

extern void* __libc_malloc(size_t);
extern void* __libc_calloc(size_t, size_t);
extern void* __libc_realloc(void*, size_t);
extern void __libc_free(void*);

static volatile unsigned long in_handler_calls;
static volatile unsigned long total_calls;

static void note(void) {
  total_calls++;
  if (syscall(SYS_gettid) != getpid()) return;
  sigset_t cur;
  if (pthread_sigmask(SIG_BLOCK, NULL, &cur) == 0 && sigismember(&cur, SIGPROF) && !sigismember(&cur, SIGTERM)) in_handler_calls++;
}

void* malloc(size_t n) { note(); return __libc_malloc(n); }
void* calloc(size_t a, size_t b) { note(); return __libc_calloc(a, b); }
void* realloc(void* p, size_t n) { note(); return __libc_realloc(p, n); }
void free(void* p) { if (p) note(); __libc_free(p); }

__attribute__((destructor)) static void report(void) {
  char buf[128];
  int len = snprintf(buf, sizeof buf, "MALLOC_COUNT total=%lu in_sigprof_handler=%lu\n", total_calls, in_handler_calls);
  if (len > 0) (void)!write(2, buf, (size_t)len);
}
