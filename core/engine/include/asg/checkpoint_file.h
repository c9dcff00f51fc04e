// Writing a torch archive so that a crash or a full disk never leaves half a checkpoint in its place.
// Host-only.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>

namespace asg {

// Writes `archive` to `path` atomically: a temporary file, fsync, rename (a reader or a crash never sees
// half a file). asg::Error(Data) naming the file when it fails; a previous file at `path` is then intact.
// failpoint_step: the step the crash tests' ASG_FAILPOINT_KILL_IN_CHECKPOINT_WRITE matches (-1 = none).
void save_archive_atomically(torch::serialize::OutputArchive& archive, const std::string& path, int64_t failpoint_step = -1);

}  // namespace asg
