// The perf-event clock's safety net for a full signal queue: see sigio_fallback.cc.
#pragma once
#include <string>

namespace sigprof {

// Installs (once per process) the SIGIO handler that takes the kernel's fallback for a
// perf overflow signal it could not queue. Not for the signal handler. False + `*error`
// when sigaction fails.
bool EnsureSigioFallback(std::string* error);

}  // namespace sigprof
