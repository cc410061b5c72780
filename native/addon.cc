// Module init: context-aware so every isolate (main thread, each Worker) gets its own state.
#include <dlfcn.h>

#include <mutex>

#include "module.h"

namespace {

// Node dlcloses an addon when the last Environment that loaded it goes away. When only
// Workers load sigprof, the last of them to exit would unmap code that stays in use after
// it: the process-wide signal handler, libuv close callbacks still queued on that
// Worker's loop, and cleanup hooks of other isolates. So the object pins itself for the
// life of the process (RTLD_NODELETE on its own, already loaded, file).
void PinSelf() {
  static std::once_flag once;
  std::call_once(once, [] {
    Dl_info info;
    if (dladdr(reinterpret_cast<void*>(&PinSelf), &info) && info.dli_fname) {
      // The handle is deliberately never closed: holding it is the point.
      dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
    }
  });
}

}  // namespace

NODE_MODULE_INIT(/* exports, module, context */) {
  PinSelf();
  sigprof::InitCpu(exports, context);
  if (sigprof::InitHeap) sigprof::InitHeap(exports, context);
}
