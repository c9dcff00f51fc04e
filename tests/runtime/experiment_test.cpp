// Experiment files: inheritance, overrides, canonical hashing, and the exact text of every
// validation error (file:line:col, key, value, what is valid, did-you-mean).
#include "asg/experiment.h"
#include "asg/hash.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "experiment_files.h"
#include "minimal_experiment.h"
#include "test_paths.h"

namespace fs = std::filesystem;

namespace {

constexpr const char* kMinimal = asg::testing::kMinimalExperiment;

// kMinimal with extra lines in the [backbone] table (TOML forbids opening a table twice).
std::string with_backbone(const std::string& extra) {
  std::string text = kMinimal;
  std::string anchor = "plugin = \"unet3d\"\n";
  text.insert(text.find(anchor) + anchor.size(), extra);
  return text;
}

class ExperimentTest : public asg::testing::ExperimentFilesTest {};

}  // namespace

TEST_F(ExperimentTest, DefaultsAreFilledInAndResolvedConfigListsEveryKey) {
  auto f = write("e.toml", kMinimal);
  auto exp = load(f);
  EXPECT_EQ(exp.name, "e");
  EXPECT_EQ(exp.train.integer("steps"), 1000);
  EXPECT_EQ(exp.slot("backbone").params.integers("channels"), (std::vector<int64_t>{32, 64}));
  EXPECT_EQ(exp.metric_slots().size(), 1u);
  EXPECT_NE(exp.resolved_toml.find("layers_per_level = 1"), std::string::npos);
  EXPECT_NE(exp.resolved_toml.find("[[metrics]]"), std::string::npos);
  EXPECT_EQ(exp.config_hash.size(), 64u);
}

TEST_F(ExperimentTest, BaseFilesMergeTablesAndReplaceScalarsAndArrays) {
  write("base/common.toml", with_backbone("channels = [8, 16]\ngroups = 4\n") + R"(
[train]
steps = 10
lr = 0.01
)");
  auto f = write("child.toml", R"(
base = ["base/common.toml"]
name = "child"
[train]
steps = 20
[backbone]
channels = [16]
[[metrics]]
plugin = "caption_accuracy"
)");
  auto exp = load(f);
  EXPECT_EQ(exp.name, "child");
  EXPECT_EQ(exp.train.integer("steps"), 20);             // scalar replaced
  EXPECT_DOUBLE_EQ(exp.train.real("lr"), 0.01);          // sibling kept: tables merge
  EXPECT_EQ(exp.slot("backbone").params.integers("channels"), (std::vector<int64_t>{16}));  // array replaced
  EXPECT_EQ(exp.slot("backbone").params.integer("groups"), 4);
  ASSERT_EQ(exp.metric_slots().size(), 1u);              // [[metrics]] is an array: replaced
  EXPECT_EQ(exp.metric_slots()[0]->plugin, "caption_accuracy");
}

TEST_F(ExperimentTest, BasesApplyInOrderAndNest) {
  write("a.toml", std::string(kMinimal) + "[train]\nsteps = 1\nlr = 0.5\n");
  write("b.toml", "base = [\"a.toml\"]\n[train]\nsteps = 2\n");
  write("c.toml", "[train]\nsteps = 3\nwarmup_steps = 7\n");
  auto exp = load(write("d.toml", "base = [\"b.toml\", \"c.toml\"]\n"));
  EXPECT_EQ(exp.train.integer("steps"), 3);
  EXPECT_EQ(exp.train.integer("warmup_steps"), 7);
  EXPECT_DOUBLE_EQ(exp.train.real("lr"), 0.5);
}

TEST_F(ExperimentTest, ReplaceMarkerDropsInheritedKeys) {
  write("a.toml", std::string(kMinimal) + "[train]\nsteps = 1\nlr = 0.5\n");
  auto exp = load(write("b.toml", "base = [\"a.toml\"]\n[train]\n__replace__ = true\nsteps = 4\n"));
  EXPECT_EQ(exp.train.integer("steps"), 4);
  EXPECT_DOUBLE_EQ(exp.train.real("lr"), 1e-3);  // back to the default
}

TEST_F(ExperimentTest, SwitchingASlotToAnotherPluginDropsTheOldPluginsKeys) {
  std::string base = kMinimal;
  base.replace(base.find("plugin = \"none\"\n"), 16, "plugin = \"temporal_conv\"\nwidth_multiplier = 2\n");
  write("a.toml", base);
  // temporal_attention has no `width_multiplier`: merged, it would be an unknown key; switched, it starts afresh.
  auto exp = load(write("b.toml", "base = [\"a.toml\"]\n[temporal]\nplugin = \"temporal_attention\"\n"));
  EXPECT_EQ(exp.slot("temporal").plugin, "temporal_attention");
  // The same plugin again still merges key by key.
  auto same = load(write("c.toml", "base = [\"a.toml\"]\n[temporal]\nplugin = \"temporal_conv\"\n"));
  EXPECT_EQ(same.slot("temporal").params.integer("width_multiplier"), 2);
}

TEST_F(ExperimentTest, OverridesWinAndParseTomlValues) {
  auto f = write("e.toml", kMinimal);
  auto exp = load(f, {"train.steps=7", "backbone.channels=[8, 16]", "sampler.guidance_scale=1", "diffusion.schedule=linear",
                      "metrics.0.pool=2"});
  EXPECT_EQ(exp.train.integer("steps"), 7);
  EXPECT_EQ(exp.slot("backbone").params.integers("channels"), (std::vector<int64_t>{8, 16}));
  EXPECT_DOUBLE_EQ(exp.slot("sampler").params.real("guidance_scale"), 1.0);
  EXPECT_EQ(exp.diffusion.str("schedule"), "linear");  // bare word taken as a string
  EXPECT_EQ(exp.metric_slots()[0]->params.integer("pool"), 2);
}

TEST_F(ExperimentTest, HashIgnoresFormattingOrderAndNameButNotValues) {
  auto a = load(write("a.toml", std::string("name = \"one\"\n") + kMinimal + "[train]\nsteps = 5\nlr = 0.001\n"));
  auto b = load(write("b.toml", std::string("name = \"two\"\n[train]\nlr = 1e-3\n  steps   =   5\n") + kMinimal));
  auto c = load(write("c.toml", std::string(kMinimal) + "[train]\nsteps = 6\n"));
  EXPECT_EQ(a.config_hash, b.config_hash);
  EXPECT_NE(a.config_hash, c.config_hash);
  // Defaults written out explicitly change nothing.
  auto d = load(write("d.toml", with_backbone("layers_per_level = 1\n") + "[train]\nsteps = 5\n"));
  EXPECT_EQ(a.config_hash, d.config_hash);
}

// ---- every validation error, exactly ----------------------------------------------------------

TEST_F(ExperimentTest, UnknownKeySuggestsTheNearestValidKey) {
  auto f = write("e.toml", std::string(kMinimal) + "[train]\nstesp = 5\n");
  EXPECT_EQ(error_of(f), fmt::format("{}:15:1: [train] unknown key 'stesp' for [train] (valid keys: steps, batch_size, lr, "
                                     "weight_decay, warmup_steps, ema_decay, caption_dropout, grad_clip, "
                                     "high_noise_fraction, high_noise_shift, log_every, checkpoint_every, init_checkpoint, lr_schedule, min_lr_fraction, "
                                     "micro_batches). "
                                     "Did you mean 'steps'?",
                                     f));
}

TEST_F(ExperimentTest, UnknownPluginKeyNamesThePlugin) {
  auto f = write("e.toml", with_backbone("chanels = [8]\n"));
  EXPECT_EQ(error_of(f), fmt::format("{}:8:1: [backbone] unknown key 'chanels' for backbone 'unet3d' (valid keys: channels, "
                                     "layers_per_level, groups, emb_dim, dropout, frame_embedding, coord_channels, attention_from_level, "
                                     "attention_heads, layout, transformer_depth, temporal_transformer, swap_window, init_from, init_sha256, "
                        "init_allow_missing). Did you mean "
                                     "'channels'?",
                                     f));
}

TEST_F(ExperimentTest, WrongTypeOutOfRangeAndDisallowedValues) {
  auto f = write("e.toml", std::string(kMinimal) + "[train]\nsteps = \"many\"\n");
  EXPECT_EQ(error_of(f), fmt::format("{}:15:9: [train] steps = \"many\": expected an integer, got string (valid: int, 0 <= x "
                                     "<= 1000000000).",
                                     f));
  f = write("e.toml", std::string(kMinimal) + "[train]\nlr = -1.0\n");
  EXPECT_EQ(error_of(f), fmt::format("{}:15:6: [train] lr = -1.0: out of range (valid: float, 0.0 <= x <= 10.0).", f));
  f = write("e.toml", std::string(kMinimal) + "[diffusion]\nschedule = \"cosin\"\n");
  EXPECT_EQ(error_of(f), fmt::format("{}:15:12: [diffusion] schedule = \"cosin\": not an allowed value (valid: string, one of: "
                                     "cosine, linear, scaled_linear). Did you mean 'cosine'?",
                                     f));
  f = write("e.toml", with_backbone("channels = [8, 2]\n"));
  EXPECT_EQ(error_of(f), fmt::format("{}:8:12: [backbone] channels = [ 8, 2 ]: out of range (valid: int list, 4 <= x <= "
                                     "4096; 1..6 items).",
                                     f));
}

TEST_F(ExperimentTest, UnknownPluginListsKnownOnesAndTheNearest) {
  std::string text = kMinimal;
  text.replace(text.find("\"unet3d\""), 8, "\"unet\"");
  auto f = write("e.toml", text);
  EXPECT_EQ(error_of(f), fmt::format("{}:7:10: [backbone] plugin = \"unet\": unknown backbone plugin (known: dit, i2vgenxl_unet, modelscope_unet3d, unet3d). Did you "
                                     "mean 'unet3d'?",
                                     f));
}

TEST_F(ExperimentTest, MissingSlotAndMissingMetrics) {
  std::string text = kMinimal;
  text.erase(text.find("[sampler]"), std::string("[sampler]\nplugin = \"ddim\"\n").size());
  auto f = write("e.toml", text);
  EXPECT_EQ(error_of(f), fmt::format("{}: missing [sampler] table: add one with plugin = \"<name>\" (known sampler plugins: ddim, ddpm, dpm_solver_pp, euler)", f));
  text = kMinimal;
  text.erase(text.find("[[metrics]]"));
  f = write("e.toml", text);
  EXPECT_EQ(error_of(f), fmt::format("{}: no metrics: add at least one [[metrics]] table with plugin = \"<name>\" (known: "
                                     "alpha_flicker, alpha_halo, caption_accuracy, clip_score, dover, fid, frechet_pixel, fvd, inception_score, loop_seam, motion, temporal_flickering)",
                                     f));
}

// The [conditioning] / [eval] keys that only mean something together: each refusal names the key and what is valid.
TEST_F(ExperimentTest, ConditioningKeysThatDisagreeAreRefusedNamingTheKey) {
  const std::string tasks = "[conditioning]\ntasks = [\"generation\", \"image\"]\n";
  auto f = write("dropout.toml", std::string(kMinimal) + tasks + "text_dropout = [0.5]\n");
  EXPECT_EQ(error_of(f), fmt::format("{}:16:16: [conditioning] text_dropout has 1 entries for 2 tasks (valid: one probability per entry "
                                     "of tasks, in its order, or none)",
                                     f));
  f = write("curriculum.toml", std::string(kMinimal) + "[conditioning]\ncurriculum = \"dcl\"\n");
  EXPECT_EQ(error_of(f), fmt::format("{}:15:14: [conditioning] curriculum = \"dcl\" draws among tasks, and tasks is empty (valid: list "
                                     "the tasks, or curriculum = \"uniform\")",
                                     f));
  f = write("guidance.toml", std::string(kMinimal) + tasks + "[eval]\nimage_guidance_scale = 2.0\n");
  EXPECT_EQ(error_of(f), fmt::format("{}:17:24: [eval] image_guidance_scale = 2 guides on given frames, and task = \"generation\" gives "
                                     "none (valid: 0, or an image task)",
                                     f));
  // Agreeing, they load.
  f = write("agreeing.toml", std::string(kMinimal) + tasks + "text_dropout = [0.0, 0.5]\ncurriculum = \"dcl\"\n[eval]\ntask = \"image\"\n"
                                                            "image_guidance_scale = 2.0\n");
  EXPECT_EQ(load(f).conditioning.reals("text_dropout"), (std::vector<double>{0.0, 0.5}));
}

TEST_F(ExperimentTest, UnknownSectionAndMissingBaseFile) {
  auto f = write("e.toml", std::string(kMinimal) + "[trian]\nsteps = 1\n");
  EXPECT_EQ(error_of(f), fmt::format("{}:14:2: unknown top-level key 'trian' (valid: base, name, description, metrics, dataset, "
                                     "text_encoder, backbone, temporal, sampler, autoencoder, image_encoder, train, eval, conditioning, diffusion, runtime, data, benchmark). "
                                     "Did you mean 'train'?",
                                     f));
  f = write("m.toml", "base = [\"nope.toml\"]\n");
  EXPECT_EQ(error_of(f), fmt::format("{}:1:8: base file 'nope.toml' does not exist (looked for {})", f,
                                     (dir_ / "nope.toml").string()));
}

TEST_F(ExperimentTest, CircularBasesAndSyntaxErrors) {
  write("x.toml", "base = [\"y.toml\"]\n");
  auto y = write("y.toml", "base = [\"x.toml\"]\n");
  EXPECT_NE(error_of(y).find("circular base inheritance"), std::string::npos);
  auto bad = write("bad.toml", "[train\nsteps = 1\n");
  EXPECT_EQ(error_of(bad).rfind(bad + ":1:", 0), 0u) << error_of(bad);
  EXPECT_NE(error_of(bad).find("TOML syntax error"), std::string::npos);
}

TEST_F(ExperimentTest, OverrideErrorsNameTheCommandLine) {
  auto f = write("e.toml", kMinimal);
  EXPECT_EQ(error_of(f, {"train.stepz=5"}),
            "command line --set train.stepz=5: [train] unknown key 'stepz' for [train] (valid keys: steps, batch_size, lr, "
            "weight_decay, warmup_steps, ema_decay, caption_dropout, grad_clip, high_noise_fraction, high_noise_shift, "
            "log_every, checkpoint_every, init_checkpoint, lr_schedule, min_lr_fraction, micro_batches). Did you mean "
            "'steps'?");
  EXPECT_EQ(error_of(f, {"train.steps=-3"}),
            "command line --set train.steps=-3: [train] steps = -3: out of range (valid: int, 0 <= x <= 1000000000).");
  EXPECT_EQ(error_of(f, {"trainsteps"}), "--set 'trainsteps': expected section.key=value, e.g. --set train.steps=100");
}

TEST_F(ExperimentTest, DeviceIsCpuCudaCudaNOrAuto) {
  auto f = write("e.toml", kMinimal);
  for (const char* ok : {"runtime.device=\"cpu\"", "runtime.device=\"cuda\"", "runtime.device=\"cuda:3\"", "runtime.device=\"auto\""})
    EXPECT_NO_THROW(load(f, {ok})) << ok;
  for (const char* device : {"gpu", "cuda:", "cuda:x", "cuda:-1", "CUDA"})
    EXPECT_EQ(error_of(f, {fmt::format("runtime.device=\"{}\"", device)}),
              fmt::format("command line --set runtime.device=\"{}\": [runtime] device = \"{}\": not a device (valid: \"cpu\", "
                          "\"cuda\", \"cuda:N\" with N the GPU's index, \"auto\")",
                          device, device));
}

TEST_F(ExperimentTest, MissingPluginPathEntryIsAPluginError) {
  auto f = write("e.toml", std::string(kMinimal) + "[runtime]\nplugin_path = [\"no_such_dir\"]\n");
  try {
    asg::PluginCatalog catalog;
    asg::PluginLoadPolicy policy;
    policy.allow_experiment_paths = true;  // past the policy, to the missing folder
    catalog.set_policy(policy);
    (void)asg::load_experiment(f, {}, catalog);
    FAIL();
  } catch (const asg::Error& e) {
    EXPECT_EQ(e.kind(), asg::ErrorKind::PluginLoad);
    EXPECT_EQ(std::string(e.what()), fmt::format("plugin path entry '{}' does not exist (it must be a directory of asg_*.so "
                                                 "libraries or a library file)",
                                                 (dir_ / "no_such_dir").string()));
  }
}

// ---- method and protocol hashes --------------------------------------------------------------------

TEST_F(ExperimentTest, MethodHashCoversWhatWasTrainedAndNothingAboutWhereOrHowOften) {
  auto f = write("e.toml", kMinimal);
  const auto base = load(f);
  EXPECT_EQ(base.method_hash.size(), 64u);
  // Execution and bookkeeping: the same method.
  for (const char* same : {"runtime.threads=1", "runtime.prefetch_batches=0", "train.log_every=5", "train.checkpoint_every=10",
                           "eval.num_samples=8", "metrics.0.covariance=\"biased\"", "benchmark.name=\"other\""})
    EXPECT_EQ(load(f, {same}).method_hash, base.method_hash) << same;
  EXPECT_EQ(load(write("renamed.toml", "name = \"renamed\"\n" + std::string(kMinimal))).method_hash, base.method_hash);
  // What was trained: another method.
  for (const char* other : {"runtime.seed=1", "train.lr=0.01", "train.steps=7", "backbone.channels=[8]",
                            "temporal.plugin=\"temporal_conv\"", "diffusion.prediction=\"eps\"", "dataset.frames=6"})
    EXPECT_NE(load(f, {other}).method_hash, base.method_hash) << other;
}

TEST_F(ExperimentTest, KeysAddedLaterLeaveTheHashesAsTheyWereAtTheirDefaults) {
  // [data], [train] lr_schedule / min_lr_fraction / micro_batches and [eval] negative_prompt came after
  // runs were recorded: set to their defaults they change no hash (those runs stay resumable and ranked
  // with new ones); set to anything else they do.
  auto f = write("e.toml", kMinimal);
  const auto base = load(f);
  for (const char* same : {"train.lr_schedule=\"constant\"", "train.min_lr_fraction=0.0", "train.micro_batches=1", "runtime.precision=\"fp32\"",
                           "data.max_frames=2000", "data.max_bad_fraction=0.01", "eval.negative_prompt=\"\""}) {
    const auto e = load(f, {same});
    EXPECT_EQ(e.method_hash, base.method_hash) << same;
    EXPECT_EQ(e.protocol_hash, base.protocol_hash) << same;
  }
  for (const char* other : {"train.lr_schedule=\"cosine\"", "train.micro_batches=2", "data.max_frames=100", "data.max_bad_fraction=0.5",
                            "runtime.precision=\"bf16\""})
    EXPECT_NE(load(f, {other}).method_hash, base.method_hash) << other;
  // [eval] num_real came after config hashes were recorded too: at its default it is left out of the config
  // hash as well (a sweep finds its finished runs by config hash).
  const auto real = load(f, {"eval.num_real=0"}), more_real = load(f, {"eval.num_real=9"});
  EXPECT_EQ(real.config_hash, base.config_hash);
  EXPECT_EQ(real.protocol_hash, base.protocol_hash);
  EXPECT_NE(more_real.config_hash, base.config_hash);
  EXPECT_NE(more_real.protocol_hash, base.protocol_hash);
  EXPECT_EQ(more_real.method_hash, base.method_hash);
  const auto negative = load(f, {"eval.negative_prompt=\"blurry\""});
  EXPECT_EQ(negative.method_hash, base.method_hash);
  EXPECT_NE(negative.protocol_hash, base.protocol_hash);
  EXPECT_NE(negative.protocol_json.find("\"negative_prompt\":\"blurry\""), std::string::npos) << negative.protocol_json;
}

TEST_F(ExperimentTest, ProtocolHashCoversWhatWasMeasured) {
  auto f = write("e.toml", kMinimal);
  const auto base = load(f);
  EXPECT_EQ(base.protocol_hash, asg::sha256_hex(base.protocol_json));
  for (const char* same : {"runtime.seed=3", "train.steps=7", "backbone.channels=[8]", "runtime.threads=1", "eval.batch_size=4"})
    EXPECT_EQ(load(f, {same}).protocol_hash, base.protocol_hash) << same;
  for (const char* other : {"eval.num_samples=8", "eval.split=\"validation\"", "metrics.0.covariance=\"biased\"",
                            "benchmark.version=\"2\"", "benchmark.name=\"b\""})
    EXPECT_NE(load(f, {other}).protocol_hash, base.protocol_hash) << other;
  EXPECT_NE(base.protocol_json.find("\"num_samples\":32"), std::string::npos) << base.protocol_json;
  EXPECT_NE(base.protocol_json.find("\"frechet_pixel\""), std::string::npos) << base.protocol_json;
}

TEST_F(ExperimentTest, PathValuesCountByFileContentNotLocation) {
  write("a/weights.pt", "the same bytes");
  write("b/elsewhere.pt", "the same bytes");
  write("c/weights.pt", "other bytes");
  auto f = write("e.toml", kMinimal);
  auto at = [&](const std::string& path) {
    return load(f, {"train.init_checkpoint=\"" + (dir_ / path).string() + "\""}).method_hash;
  };
  EXPECT_EQ(at("a/weights.pt"), at("b/elsewhere.pt"));
  EXPECT_NE(at("a/weights.pt"), at("c/weights.pt"));
  EXPECT_NE(at("a/weights.pt"), load(f).method_hash);
}
