#pragma once
// SIGTERM/SIGINT handling for service binaries (graceful shutdown, as Triton does: signal
// -> stop accepting -> drain -> exit 0). Signals are blocked in every thread and received
// synchronously with sigwait, so no work happens in a signal handler.

namespace rlhf::server {

// Call first in main(), before any thread exists (gRPC, LibTorch and prometheus start
// threads that inherit the mask).
void BlockTerminationSignals();

// Blocks until SIGTERM or SIGINT arrives; returns the signal number.
int WaitForTerminationSignal();

}  // namespace rlhf::server
