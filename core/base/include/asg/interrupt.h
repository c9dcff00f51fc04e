// Cooperative interruption: SIGINT/SIGTERM set a flag that long loops poll, so a killed run still
// closes its registry record (KILLED) and keeps its metric history. A second signal exits at once.
#pragma once

namespace asg {

void install_interrupt_handlers();
bool interrupt_requested();
// Throws asg::Error(Interrupted) if a signal arrived.
void throw_if_interrupted();
// For tests: pretend a signal arrived (or clear it).
void set_interrupt_requested(bool value);

}  // namespace asg
