#include "asg/interrupt.h"

#include <csignal>
#include <cstdlib>
#include <unistd.h>

#include "asg/error.h"

namespace asg {

namespace {
volatile std::sig_atomic_t g_signal = 0;

extern "C" void on_signal(int sig) {
  if (g_signal != 0) _exit(128 + sig);  // second signal: the user really wants out
  g_signal = sig;
  const char msg[] = "\nasg: interrupt received; stopping after the current step (send again to force)\n";
  [[maybe_unused]] auto n = write(STDERR_FILENO, msg, sizeof(msg) - 1);
}
}  // namespace

void install_interrupt_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

bool interrupt_requested() { return g_signal != 0; }

void throw_if_interrupted() {
  if (g_signal != 0)
    throw Error(ErrorKind::Interrupted, g_signal == SIGTERM ? "terminated by SIGTERM" : "interrupted by SIGINT");
}

void set_interrupt_requested(bool value) { g_signal = value ? SIGINT : 0; }

}  // namespace asg
