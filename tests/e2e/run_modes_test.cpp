// End-to-end: run modes through the real `asg` binary: build validation, bf16/fp16/CUDA precision and device,
// latent diffusion with its autoencoder stage, image-conditioned tasks.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <string>

#include "asg/media/gif.h"
#include "asg/registry.h"

#include "cli_fixture.h"

namespace fs = std::filesystem;
using asg::testing::CliTest;
using Result = asg::testing::CliResult;
using asg::testing::run_asg;

TEST_F(CliTest, ValidateBuildRefusesCombinationsThatCannotWorkNamingBothSides) {
  // `validate` alone checks keys and values; `--build` builds the model as a run would and runs it once.
  Result ok = run_asg("validate tiny.toml --build", dir_);
  ASSERT_EQ(ok.code, 0) << ok.output;
  EXPECT_NE(ok.output.find("# built: backbone 'unet3d' with "), std::string::npos) << ok.output;
  EXPECT_NE(ok.output.find("one forward pass at batch 1 on the CPU gave [1, 4, "), std::string::npos) << ok.output;
  // dit's patch against the dataset's frame size, and swap_attention's heads against the backbone's channels.
  std::ofstream(dir_ / "dit.toml") << "base = [\"tiny.toml\"]\n[backbone]\nplugin = \"dit\"\npatch = 3\n";
  Result patch = run_asg("validate dit.toml --build", dir_);
  EXPECT_EQ(patch.code, 2) << patch.output;
  EXPECT_NE(patch.output.find("[backbone] backbone 'dit': patch = 3 must divide the clip's height and width"), std::string::npos)
      << patch.output;
  EXPECT_NE(patch.output.find("(the clips come from [dataset] 'synthetic_stickers': 4 channels, "), std::string::npos) << patch.output;
  Result heads = run_asg("validate tiny.toml --build --set temporal.plugin=\\\"swap_attention\\\" --set temporal.heads=5", dir_);
  EXPECT_EQ(heads.code, 2) << heads.output;
  EXPECT_NE(heads.output.find("[temporal] temporal 'swap_attention': heads = 5 does not divide"), std::string::npos) << heads.output;
  EXPECT_NE(heads.output.find("of [backbone] backbone 'unet3d': "), std::string::npos) << heads.output;
  // Without --build the same files validate: only their keys and values are checked.
  EXPECT_EQ(run_asg("validate tiny.toml --set temporal.plugin=\\\"swap_attention\\\" --set temporal.heads=5", dir_).code, 0);
  EXPECT_FALSE(fs::exists(registry()));  // nothing recorded
}

TEST_F(CliTest, Bf16PrecisionRunsWhereAutocastCoversTheBackboneAndIsRefusedBeforeRecordingElsewhere) {
  // A backbone whose custom kernel has no bfloat16 instantiation: refused, naming its error, nothing recorded.
  std::ofstream(dir_ / "float_only.toml") << fmt::format(
      "base = [\"tiny.toml\"]\n[backbone]\nplugin = \"float_only\"\n[temporal]\nplugin = \"none\"\n"
      "[runtime]\nprecision = \"bf16\"\nplugin_path = [\"{}\"]\n",
      asg::testing::test_plugin_dir("float_only").string());
  Result refused = run_asg("--allow-plugin-path run float_only.toml", dir_);
  EXPECT_EQ(refused.code, 2) << refused.output;
  EXPECT_NE(refused.output.find("float_only.toml: [runtime] precision = \"bf16\": the backbone cannot run under this LibTorch's "
                                "bfloat16 autocast on cpu (\"square_float_only\" not implemented for 'BFloat16')"),
            std::string::npos)
      << refused.output;
  EXPECT_FALSE(fs::exists(registry()));
  // The same file in float32 runs: the refusal was about bfloat16 alone.
  ASSERT_EQ(run_asg("--allow-plugin-path run float_only.toml --set runtime.precision=\\\"fp32\\\" --set train.steps=2", dir_).code, 0);
  // unet3d (GroupNorm, which LibTorch 2.x's CPU autocast runs in float32) with STI, and dit, train and sample under it.
  Result unet = run_asg("run tiny.toml --set runtime.precision=\\\"bf16\\\" --set temporal.plugin=\\\"sti\\\"", dir_);
  ASSERT_EQ(unet.code, 0) << unet.output;
  EXPECT_NE(unet.output.find("FINISHED"), std::string::npos) << unet.output;
  std::ofstream(dir_ / "dit_bf16.toml") << "base = [\"tiny.toml\"]\n[backbone]\nplugin = \"dit\"\nwidth = 32\ndepth = 2\n"
                                           "[runtime]\nprecision = \"bf16\"\n";
  Result ok = run_asg("run dit_bf16.toml", dir_);
  ASSERT_EQ(ok.code, 0) << ok.output;
  EXPECT_NE(ok.output.find("FINISHED"), std::string::npos) << ok.output;
}

TEST_F(CliTest, Fp16PrecisionTrainsWithADynamicLossScaleThatTheRegistryRecords) {
  Result r = run_asg("run tiny.toml --set runtime.precision=\\\"fp16\\\" --set train.log_every=5", dir_);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("FINISHED"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("steps skipped for an overflowing gradient; loss scale at the last step "), std::string::npos)
      << r.output;
  asg::Registry reg(registry());
  const auto run = reg.list_runs().at(0);
  const auto scale = reg.metric_history(run.id, "train/loss_scale");
  ASSERT_FALSE(scale.empty());
  EXPECT_GT(scale.back().value, 1);
  EXPECT_FALSE(reg.metric_history(run.id, "train/skipped_steps").empty());
  // A precision that is not one of the three is refused before anything runs, naming the valid ones.
  Result bad = run_asg("run tiny.toml --set runtime.precision=\\\"fp8\\\"", dir_);
  EXPECT_EQ(bad.code, 2) << bad.output;
  EXPECT_NE(bad.output.find("fp16"), std::string::npos) << bad.output;
}

TEST_F(CliTest, ACudaRunTrainsInBf16AndRecordsItsDeviceOrIsRefusedBeforeRecordingWithoutOne) {
  Result r = run_asg("run tiny.toml --set runtime.device=\\\"cuda:0\\\" --set runtime.precision=\\\"bf16\\\" "
                     "--set train.checkpoint_every=10",
                     dir_);
  if (!fs::exists("/dev/nvidiactl")) {
    // No GPU driver on this machine: refused before anything is recorded, naming what would be valid.
    EXPECT_EQ(r.code, 2) << r.output;
    EXPECT_NE(r.output.find("[runtime] device = \"cuda:0\": no CUDA device is available"), std::string::npos) << r.output;
    EXPECT_FALSE(fs::exists(registry()));
    GTEST_SKIP() << "no GPU: would check that the reduced quickstart trains on cuda:0 under bf16 autocast, records the "
                    "card's name and its peak device memory, and writes checkpoints with the CUDA RNG state";
  }
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("FINISHED"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("cuda:0: peak allocated "), std::string::npos) << r.output;
  asg::Registry reg(registry());
  const auto run = reg.list_runs().at(0);
  EXPECT_EQ(run.status, asg::RunStatus::Finished);
  const auto host = nlohmann::json::parse(run.host_json);
  EXPECT_EQ(host.value("device", ""), "cuda:0");
  EXPECT_NE(host.value("device_name", "").find("sm_"), std::string::npos) << run.host_json;
  const auto peak = reg.metric_history(run.id, "run/peak_device_allocated_mib");
  ASSERT_EQ(peak.size(), 1u);
  EXPECT_GT(peak[0].value, 0);
}

TEST_F(CliTest, LatentDiffusionTrainsTheAutoencoderFirstThenDiffusesAndDecodesItsLatents) {
  // frame_vae halves 16x16 frames to 8x8 latents; asg run trains it, measures the scaling factor, freezes it
  // and trains the diffusion model on its latents; evaluation decodes the sampled latents.
  write_latent_experiment("[train]\nsteps = 10\n");
  Result built = run_asg("validate latent.toml --build", dir_);
  ASSERT_EQ(built.code, 0) << built.output;
  EXPECT_NE(built.output.find("autoencoder 'frame_vae' codes [4, 8, 16, 16] clips as [4, 8, 8, 8] latents"), std::string::npos)
      << built.output;
  EXPECT_NE(built.output.find("one forward pass at batch 1 on the CPU gave [1, 4, 8, 8, 8]"), std::string::npos) << built.output;

  Result r = run_asg("run latent.toml", dir_);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("autoencoder: training 40 steps"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("autoencoder: latent scaling factor "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("diffused as 4 latents of 8x8 ([autoencoder] 'frame_vae')"), std::string::npos) << r.output;
  asg::Registry reg(registry());
  const auto first = reg.list_runs().front();
  ASSERT_EQ(first.status, asg::RunStatus::Finished);
  auto ae_loss = reg.metric_history(first.id, "autoencoder/loss");
  ASSERT_GE(ae_loss.size(), 8u);
  EXPECT_LT(ae_loss.back().value, 0.5 * ae_loss.front().value);
  const fs::path weights = dir_ / "runs" / first.id / "autoencoder.pt";
  ASSERT_TRUE(fs::exists(weights));
  EXPECT_TRUE(fs::exists(dir_ / "runs" / first.id / "samples" / "grid.gif"));

  // The trained autoencoder, loaded from the file: no training, the same scaling factor, and the diffusion
  // stage after it is the first run's to the bit.
  Result again = run_asg("run latent.toml --set autoencoder.weights=" + weights.string(), dir_);
  ASSERT_EQ(again.code, 0) << again.output;
  EXPECT_EQ(again.output.find("autoencoder: training"), std::string::npos) << again.output;
  const auto second = reg.list_runs().front();
  auto a = reg.metric_history(first.id, "train/loss"), b = reg.metric_history(second.id, "train/loss");
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].value, b[i].value) << "step " << a[i].step;
  auto ra = reg.results(first.id), rb = reg.results(second.id);
  ASSERT_EQ(ra.size(), rb.size());
  for (size_t i = 0; i < ra.size(); ++i) EXPECT_EQ(ra[i].value, rb[i].value) << ra[i].key;

  // asg eval of a latent run restores the autoencoder it trained (its autoencoder.pt): under the run's own
  // protocol, the run's numbers exactly.
  write_definitions();
  Result own = run_asg("run latent.toml --set benchmark.name=e2e-def", dir_);
  ASSERT_EQ(own.code, 0) << own.output;
  const auto held = reg.list_runs().front();
  Result evaluated = run_asg("eval " + held.id + " --benchmark e2e-def", dir_);
  ASSERT_EQ(evaluated.code, 0) << evaluated.output;
  EXPECT_NE(evaluated.output.find("autoencoder: the run's, from " + (fs::path("runs") / held.id / "autoencoder.pt").string()),
            std::string::npos)
      << evaluated.output;
  const auto own_results = reg.results(held.id), set_results = reg.result_set_values(reg.result_sets(held.id).at(0).id);
  ASSERT_EQ(own_results.size(), set_results.size());
  for (size_t i = 0; i < own_results.size(); ++i) EXPECT_EQ(own_results[i].value, set_results[i].value) << own_results[i].key;

  // A latent the backbone cannot take is refused naming both sides, before anything is recorded.
  Result small = run_asg("run latent.toml --set 'autoencoder.channels=[8, 8, 8, 8, 8]'", dir_);
  EXPECT_EQ(small.code, 2) << small.output;
  EXPECT_NE(small.output.find("[backbone] backbone 'unet3d': 2 levels needs height and width divisible by 2, data are 1x1"),
            std::string::npos)
      << small.output;
  EXPECT_NE(small.output.find("(the latents come from [autoencoder] autoencoder 'frame_vae' over [dataset] 'synthetic_stickers'"),
            std::string::npos)
      << small.output;
  EXPECT_EQ(reg.list_runs().size(), 3u);
}

TEST_F(CliTest, AResumedLatentRunLoadsTheAutoencoderItTrainedAndEndsAsIfNeverKilled) {
  write_latent_experiment();
  const std::vector<std::string> args = {"--set", "train.steps=300", "--set", "train.checkpoint_every=100", "--set",
                                         "train.log_every=1"};
  Result reference = run_asg("run latent.toml --set train.steps=300 --set train.checkpoint_every=100 --set train.log_every=1 "
                             "--registry ref.sqlite --runs-dir ref",
                             dir_);
  ASSERT_EQ(reference.code, 0) << reference.output;
  asg::Registry ref_reg(dir_ / "ref.sqlite");
  const auto ref_run = ref_reg.list_runs().at(0);

  pid_t pid = start_endless_run(130, args, {"run", "latent.toml"});
  ASSERT_GT(pid, 0);
  const std::string killed = kill_hard(pid);
  ASSERT_FALSE(killed.empty());
  ASSERT_TRUE(fs::exists(dir_ / "runs" / killed / "autoencoder.pt"));
  Result resumed = run_asg("resume " + killed, dir_);
  ASSERT_EQ(resumed.code, 0) << resumed.output;
  EXPECT_EQ(resumed.output.find("autoencoder: training"), std::string::npos) << resumed.output;
  EXPECT_NE(resumed.output.find("autoencoder: trained by an earlier attempt, loaded from"), std::string::npos) << resumed.output;

  asg::Registry reg(registry());
  const auto attempt = reg.list_runs().at(0);
  EXPECT_EQ(attempt.status, asg::RunStatus::Finished);
  const auto history = reg.metric_history(attempt.id, "train/loss"), ref_history = ref_reg.metric_history(ref_run.id, "train/loss");
  ASSERT_EQ(history.size(), ref_history.size());
  for (size_t i = 0; i < history.size(); ++i) ASSERT_EQ(history[i].value, ref_history[i].value) << "step " << history[i].step;
  const auto results = reg.results(attempt.id), ref_results = ref_reg.results(ref_run.id);
  ASSERT_EQ(results.size(), ref_results.size());
  for (size_t i = 0; i < results.size(); ++i) EXPECT_EQ(results[i].value, ref_results[i].value) << results[i].key;
}

TEST_F(CliTest, ImageConditionedRunsTrainOnMaskedFramesAndEvaluateTheirTask) {
  std::ofstream(dir_ / "i2v.toml") << "base = [\"tiny.toml\"]\n[conditioning]\ntasks = [\"generation\", \"image\", \"interpolation\"]\n"
                                      "[eval]\ntask = \"interpolation\"\n[train]\nsteps = 10\n";
  Result built = run_asg("validate i2v.toml --build", dir_);
  ASSERT_EQ(built.code, 0) << built.output;
  EXPECT_NE(built.output.find("one forward pass at batch 1 on the CPU gave [1, 4, 8, 16, 16]"), std::string::npos) << built.output;
  Result r = run_asg("run i2v.toml", dir_);
  ASSERT_EQ(r.code, 0) << r.output;
  ASSERT_EQ(run_asg("run tiny.toml --set train.steps=10", dir_).code, 0);
  asg::Registry reg(registry());
  auto runs = reg.list_runs();
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_NE(runs[0].protocol_hash, runs[1].protocol_hash);  // interpolation is measured apart from generation
  EXPECT_NE(runs[0].method_hash, runs[1].method_hash);

  // An eval task the model was not trained for, and a task that does not exist: exit 2, nothing recorded.
  Result untrained = run_asg("run i2v.toml --set eval.task=\\\"prediction\\\"", dir_);
  EXPECT_EQ(untrained.code, 2) << untrained.output;
  EXPECT_NE(untrained.output.find("[eval] task = \"prediction\" needs a model trained for it: [conditioning] tasks = "
                                  "[\"generation\", \"image\", \"interpolation\"] does not include it"),
            std::string::npos)
      << untrained.output;
  Result unknown = run_asg("run i2v.toml --set 'conditioning.tasks=[\"imgae\"]'", dir_);
  EXPECT_EQ(unknown.code, 2) << unknown.output;
  EXPECT_NE(unknown.output.find("not an allowed value"), std::string::npos) << unknown.output;
  EXPECT_EQ(reg.list_runs().size(), 2u);
}
