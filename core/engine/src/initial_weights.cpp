#include "initial_weights.h"

#include <fmt/format.h>
#include <fnmatch.h>

#include "asg/error.h"
#include "asg/hash.h"
#include "asg/nn/module_state.h"
#include "asg/nn/safetensors.h"

namespace asg {
namespace {
bool matches_any(const std::string& key, const std::vector<std::string>& patterns) {
  for (const auto& p : patterns)
    if (::fnmatch(p.c_str(), key.c_str(), 0) == 0) return true;
  return false;
}
}  // namespace

void load_initial_weights(const PluginSlot& slot, torch::nn::Module& module) {
  if (!slot.init) return;
  const InitialWeights& init = *slot.init;
  const std::string prefix = fmt::format("{}: [{}] init_from = \"{}\"", init.where, slot.section, init.file.string());
  const std::string actual = sha256_file(init.file);
  if (actual != init.sha256)
    throw config_error(fmt::format("{}: the file's sha256 is {}, not init_sha256 = \"{}\" (valid: the sha256 of the weights the "
                                   "experiment was written for; another file is another experiment)",
                                   prefix, actual, init.sha256));
  std::map<std::string, torch::Tensor> tensors;
  try {
    for (auto& [key, t] : nn::read_safetensors(init.file).tensors)
      if (!matches_any(key, init.allow_missing)) tensors.emplace(key, std::move(t));
  } catch (const Error& e) {
    throw config_error(fmt::format("{}: {}", prefix, e.what()));
  }
  std::vector<std::string> keep;
  for (const auto& item : module.named_parameters())
    if (matches_any(item.key(), init.allow_missing)) keep.push_back(item.key());
  for (const auto& item : module.named_buffers())
    if (matches_any(item.key(), init.allow_missing)) keep.push_back(item.key());
  try {
    nn::load_named_tensors(module, tensors, init.file.string(), keep);
  } catch (const Error& e) {
    throw config_error(fmt::format("{} ({} '{}'): {}{}", prefix, slot.kind, slot.plugin, e.what(),
                                   init.allow_missing.empty() ? " (init_allow_missing lists names that may differ)" : ""));
  }
}

}  // namespace asg
