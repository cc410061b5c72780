// Module init: context-aware so every isolate (main thread, each Worker) gets its own state.
#include "module.h"

NODE_MODULE_INIT(/* exports, module, context */) {
  sigprof::InitCpu(exports, context);
  if (sigprof::InitHeap) sigprof::InitHeap(exports, context);
}
