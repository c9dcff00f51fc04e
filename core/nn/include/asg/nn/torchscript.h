// Loading a user-supplied TorchScript file (a pretrained encoder or feature extractor ASG Lab cannot
// download): the file's sha256 must be the one the experiment names, so a run records exactly which
// weights it used and a swapped file is refused instead of silently measured. Needs torch.
#pragma once

#include <torch/script.h>

#include <filesystem>
#include <string>
#include <vector>

#include "asg/params.h"

namespace asg {

// asg::Error(Config) naming the file when it is missing, when its sha256 differs from `expected_sha256`
// (both hashes in the message) or when it is not a TorchScript archive; `what` names the role ("CLIP text
// encoder") and `interface` the expected forward signature, for the messages.
torch::jit::script::Module load_torchscript(const std::filesystem::path& file, const std::string& expected_sha256,
                                            const std::string& what, const std::string& interface);

// The parameters of a plugin that loads one TorchScript file: "model" (the file; `model_doc` says which one) and
// "sha256" (its digest), both required, followed by the plugin's own `more`.
std::vector<ParamSpec> with_torchscript_model_params(const std::string& model_doc, std::vector<ParamSpec> more);

}  // namespace asg
