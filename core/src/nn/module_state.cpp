#include "asg/nn/module_state.h"

#include <fmt/format.h>

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

}  // namespace asg::nn
