#include "asg/nn/torchscript.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include "asg/error.h"
#include "asg/hash.h"

namespace asg {

torch::jit::script::Module load_torchscript(const std::filesystem::path& file, const std::string& expected_sha256,
                                            const std::string& what, const std::string& interface) {
  if (!std::filesystem::is_regular_file(file))
    throw config_error(fmt::format("{}: no {} TorchScript file here (expected: {})", file.string(), what, interface));
  std::string expected = expected_sha256;
  std::transform(expected.begin(), expected.end(), expected.begin(), [](unsigned char c) { return std::tolower(c); });
  const std::string actual = sha256_file(file);
  if (actual != expected)
    throw config_error(fmt::format("{}: sha256 is {} but the experiment expects {}: not the {} it names (replace the "
                                   "file, or set the sha256 key to the new file's hash if the change is intended)",
                                   file.string(), actual, expected_sha256, what));
  try {
    return torch::jit::load(file.string(), torch::kCPU);
  } catch (const c10::Error& e) {
    const std::string message = e.what_without_backtrace();
    throw config_error(fmt::format("{}: not a TorchScript archive the {} can load ({}); expected: {}", file.string(), what,
                                   message.substr(0, message.find('\n')), interface));
  }
}

std::vector<ParamSpec> with_torchscript_model_params(const std::string& model_doc, std::vector<ParamSpec> more) {
  std::vector<ParamSpec> specs = {
      path_param("model", "", model_doc).must_set(),
      string_param("sha256", "", "the model file's sha256; a different file is refused, naming both hashes").must_set(),
  };
  specs.insert(specs.end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
  return specs;
}

}  // namespace asg
