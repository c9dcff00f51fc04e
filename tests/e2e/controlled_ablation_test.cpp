// Swapping the temporal module must change nothing else. One-step runs at lr = 0 through the real
// binary: their checkpoints hold the initial weights, and every backbone tensor outside the temporal
// slots (and every text-encoder tensor) must be bit-identical across none / temporal_conv /
// temporal_attention / sti. (Untrained metrics cannot show this: the zero-initialised output layer
// makes every untrained model output zero.)
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <map>

#include "asg/registry.h"
#include "asg_cli.h"
#include "test_paths.h"

namespace fs = std::filesystem;

namespace {

std::map<std::string, torch::Tensor> initial_weights(const fs::path& checkpoint) {
  torch::serialize::InputArchive archive;
  archive.load_from(checkpoint.string());
  std::map<std::string, torch::Tensor> out;
  for (const auto& key : archive.keys()) {
    // Slots other than the temporal ones: text encoder and backbone tensors outside ".temporal.".
    bool shared = key.rfind("text_encoder.", 0) == 0 || (key.rfind("backbone.", 0) == 0 && key.find(".temporal.") == std::string::npos);
    if (!shared) continue;
    torch::Tensor t;
    archive.read(key, t);
    out[key] = t;
  }
  return out;
}

}  // namespace

TEST(ControlledAblation, BackboneInitialWeightsDoNotDependOnTheTemporalModule) {
  fs::path dir = asg::testing::make_temp_dir("ablation");
  std::ofstream(dir / "one_step.toml") << fmt::format(R"(
base = ["{}"]
name = "one-step"
[backbone]
channels = [8, 16]
[text_encoder]
dim = 16
[sampler]
steps = 1
[train]
steps = 1
batch_size = 2
lr = 0.0
[eval]
num_samples = 2
save_gifs = 0
[runtime]
threads = 1
[benchmark]
name = ""
)",
                                                      (asg::testing::source_dir() / "experiments" / "quickstart.toml").string());
  std::map<std::string, std::map<std::string, torch::Tensor>> weights;
  for (const std::string module : {"none", "temporal_conv", "temporal_attention", "sti"}) {
    auto r = asg::testing::run_asg("run one_step.toml --set temporal.plugin=" + module, dir);
    ASSERT_EQ(r.code, 0) << r.output;
    asg::Registry registry(dir / "runs" / "registry.sqlite");
    auto runs = registry.list_runs("", asg::RunStatus::Finished);
    ASSERT_FALSE(runs.empty());
    weights[module] = initial_weights(dir / "runs" / runs.front().id / "checkpoints" / "final.pt");  // newest first
    ASSERT_GT(weights[module].size(), 20u) << module;
  }
  const auto& reference = weights.at("none");
  for (const auto& [module, tensors] : weights) {
    ASSERT_EQ(tensors.size(), reference.size()) << module;
    for (const auto& [key, value] : reference) {
      ASSERT_TRUE(tensors.count(key)) << module << " lacks " << key;
      EXPECT_TRUE(torch::equal(tensors.at(key), value)) << key << " differs between none and " << module;
    }
  }
  fs::remove_all(dir);
}
