#include "asg/nn/module_state.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "asg/error.h"

namespace asg::nn {

void save_module_state(const torch::nn::Module& module, torch::serialize::OutputArchive& archive) {
  torch::NoGradGuard no_grad;
  for (const auto& item : module.named_parameters()) archive.write(item.key(), item.value().detach().clone());
  for (const auto& item : module.named_buffers()) archive.write(item.key(), item.value(), /*is_buffer=*/true);
}

void load_module_state(torch::nn::Module& module, torch::serialize::InputArchive& archive, const std::string& file) {
  torch::NoGradGuard no_grad;
  auto load = [&](const std::string& key, torch::Tensor& target, bool is_buffer) {
    torch::Tensor stored;
    if (!archive.try_read(key, stored, is_buffer))
      throw config_error(fmt::format("{}: no tensor '{}' in the file (it holds another model's weights)", file, key));
    if (stored.sizes() != target.sizes())
      throw config_error(fmt::format("{}: '{}' is {} in the file but {} in this model (the file holds a differently configured "
                                     "model's weights)",
                                     file, key, c10::str(stored.sizes()), c10::str(target.sizes())));
    target.copy_(stored);
  };
  for (auto& item : module.named_parameters()) load(item.key(), item.value(), false);
  for (auto& item : module.named_buffers()) load(item.key(), item.value(), true);
}

namespace {
// Every key, one per line: a long list is still complete (the refusal names all of them).
std::string list_keys(const std::vector<std::string>& keys) {
  std::string out;
  for (const auto& key : keys) out += "\n    " + key;
  return out;
}
}  // namespace

void load_named_tensors(torch::nn::Module& module, const std::map<std::string, torch::Tensor>& tensors,
                        const std::string& source, const std::vector<std::string>& allow_missing) {
  torch::NoGradGuard no_grad;
  std::map<std::string, torch::Tensor> targets;
  for (auto& item : module.named_parameters()) targets.emplace(item.key(), item.value());
  for (auto& item : module.named_buffers()) targets.emplace(item.key(), item.value());
  const std::set<std::string> optional(allow_missing.begin(), allow_missing.end());

  std::vector<std::string> missing, unexpected, mismatched;
  for (const auto& [key, target] : targets) {
    auto it = tensors.find(key);
    if (it == tensors.end()) {
      if (!optional.contains(key)) missing.push_back("'" + key + "'");
    } else if (it->second.sizes() != target.sizes()) {
      mismatched.push_back(fmt::format("'{}' is {} in the file, {} in the model", key, c10::str(it->second.sizes()),
                                       c10::str(target.sizes())));
    }
  }
  for (const auto& [key, tensor] : tensors)
    if (!targets.contains(key)) unexpected.push_back("'" + key + "'");

  if (!missing.empty() || !unexpected.empty() || !mismatched.empty()) {
    std::string message = fmt::format("{}: the weights do not fit this model (nothing was loaded):", source);
    if (!missing.empty()) message += fmt::format("\n  missing ({}):{}", missing.size(), list_keys(missing));
    if (!unexpected.empty()) message += fmt::format("\n  unexpected ({}):{}", unexpected.size(), list_keys(unexpected));
    if (!mismatched.empty()) message += fmt::format("\n  shape mismatch ({}):{}", mismatched.size(), list_keys(mismatched));
    throw config_error(message);
  }
  for (auto& [key, target] : targets) {
    auto it = tensors.find(key);
    if (it != tensors.end()) target.copy_(it->second);
  }
}

void adopt_children(torch::nn::Module& module, const torch::nn::Module& wrapped) {
  for (const auto& child : wrapped.named_children()) module.register_module(child.key(), child.value());
}

void freeze(torch::nn::Module& module) {
  for (auto& parameter : module.parameters()) parameter.set_requires_grad(false);
  module.eval();
}

}  // namespace asg::nn
