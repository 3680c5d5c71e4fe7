#include "common/server/termination_signal.h"

#include <pthread.h>
#include <signal.h>

namespace rlhf::server {
namespace {

sigset_t TerminationSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  return set;
}

}  // namespace

void BlockTerminationSignals() {
  // A shell starts background jobs with SIGINT ignored, and an ignored signal is
  // discarded instead of left pending for sigwait: restore the default first.
  signal(SIGTERM, SIG_DFL);
  signal(SIGINT, SIG_DFL);
  const sigset_t set = TerminationSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int WaitForTerminationSignal() {
  const sigset_t set = TerminationSignals();
  int signal_number = 0;
  while (sigwait(&set, &signal_number) != 0) {
  }
  return signal_number;
}

}  // namespace rlhf::server
