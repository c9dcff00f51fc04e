// DiffusionTrainer's checkpoint as a training state: a trainer that loads it continues bit for bit where
// the one that wrote it went on (weights, EMA, AdamW moments, step counts, both RNG streams), and the file
// is written atomically.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>

#include "asg/error.h"
#include "asg/kinds/backbone.h"
#include "asg/kinds/text_encoder.h"
#include "asg/plugin_catalog.h"
#include "asg/trainer.h"
#include "test_paths.h"

namespace fs = std::filesystem;

namespace {

// A temporary directory removed at the end of the test.
class TempDir {
 public:
  TempDir() : path_(asg::testing::make_temp_dir("trainer-state")) {}
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

const asg::PluginCatalog& catalog() {
  static const asg::PluginCatalog c = asg::PluginCatalog::discover();
  return c;
}

asg::Params params_of(const std::string& kind, const std::string& name, std::map<std::string, asg::ParamValue> changes) {
  const auto& record = catalog().find(kind, name);
  auto values = asg::default_params(name, record->factory.params).values();
  for (auto& [k, v] : changes) values[k] = v;
  return asg::Params(name, values);
}

// A small unet3d with dropout, so the global generator (dropout masks) matters too. With `curriculum`, image
// conditioning on RDTF's four tasks drawn by its adaptive curriculum, the image task half the time without text.
std::unique_ptr<asg::DiffusionTrainer> make_trainer(uint64_t init_seed, bool curriculum = false) {
  torch::manual_seed(init_seed);
  auto text = catalog().create<asg::TextEncoder>("word_embedding", params_of("text_encoder", "word_embedding",
                                                                              {{"dim", int64_t{16}}, {"buckets", int64_t{64}}}));
  asg::BackboneContext ctx;
  ctx.channels = 4;
  ctx.frames = 4;
  ctx.height = 8;
  ctx.width = 8;
  ctx.text_dim = text->dim();
  ctx.condition_channels = curriculum ? 5 : 0;
  auto temporal_params = params_of("temporal", "temporal_conv", {});
  ctx.make_temporal = [&](const asg::TemporalContext& tc) {
    return catalog().create<asg::TemporalModule>("temporal_conv", temporal_params, tc);
  };
  auto backbone = catalog().create<asg::Backbone>(
      "unet3d", params_of("backbone", "unet3d", {{"channels", std::vector<int64_t>{8, 16}}, {"dropout", 0.2}}), ctx);
  asg::TrainOptions o;
  o.lr = 3e-3;
  o.weight_decay = 0.01;
  o.warmup_steps = 4;
  o.ema_decay = 0.9;
  o.caption_dropout = 0.3;
  o.grad_clip = 0.5;
  if (curriculum) {
    o.condition_tasks = {asg::ConditionTask::Generation, asg::ConditionTask::Image, asg::ConditionTask::Interpolation,
                         asg::ConditionTask::Prediction};
    o.curriculum = asg::CurriculumKind::Adaptive;
    o.task_text_dropout = {0.0, 0.5, 0.0, 0.0};
    o.total_steps = 10;
  }
  return std::make_unique<asg::DiffusionTrainer>(text, backbone, asg::NoiseSchedule("cosine", 100, asg::Prediction::V, 2.0), o,
                                                 torch::Device(torch::kCPU), /*seed=*/5);
}

torch::Tensor batch() {
  auto g = at::detail::createCPUGenerator(17);
  return torch::rand({3, 4, 4, 8, 8}, g) * 2 - 1;
}
const std::vector<std::string> kCaptions = {"a red star moving left", "a blue circle jumping up", "a green square"};

std::vector<torch::Tensor> snapshot(asg::DiffusionTrainer& t) {
  std::vector<torch::Tensor> out;
  for (const auto& p : t.trainable_parameters()) out.push_back(p.detach().clone());
  return out;
}

void expect_identical(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b, const std::string& what) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_TRUE(torch::equal(a[i], b[i])) << what << ": parameter " << i << " differs by up to "
                                          << (a[i] - b[i]).abs().max().item<double>();
}

// A trainer after three steps, and the checkpoint it wrote then.
std::unique_ptr<asg::DiffusionTrainer> trained_three_steps(const torch::Tensor& x0, const std::string& file, bool curriculum = false) {
  auto trainer = make_trainer(1, curriculum);
  for (int i = 0; i < 3; ++i) trainer->step(x0, kCaptions);
  trainer->save_checkpoint(file, 3);
  return trainer;
}

TEST(TrainerState, ResumedTrainerContinuesBitForBit) {
  TempDir dir;
  const auto x0 = batch();
  const std::string file = (dir.path() / "step3.pt").string();

  auto original = trained_three_steps(x0, file);
  EXPECT_FALSE(fs::exists(file + ".tmp"));
  std::vector<double> losses;
  for (int i = 0; i < 4; ++i) losses.push_back(original->step(x0, kCaptions).loss);

  auto resumed = make_trainer(2);  // other initial weights, and the global generator has moved on
  EXPECT_EQ(resumed->load_train_state(file), 3);
  EXPECT_EQ(resumed->step_count(), 3);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(resumed->step(x0, kCaptions).loss, losses[i]) << "step " << 4 + i;

  expect_identical(snapshot(*original), snapshot(*resumed), "weights after 7 steps");
  original->use_ema_weights();
  resumed->use_ema_weights();
  expect_identical(snapshot(*original), snapshot(*resumed), "EMA weights after 7 steps");
}

TEST(TrainerState, ResumedTrainerWithRdtfsCurriculumContinuesBitForBit) {
  // The curriculum's loss history is part of the state: without it the resumed run would draw other tasks.
  TempDir dir;
  const auto x0 = batch();
  const std::string file = (dir.path() / "step3.pt").string();
  auto original = trained_three_steps(x0, file, /*curriculum=*/true);
  std::vector<double> losses;
  for (int i = 0; i < 4; ++i) losses.push_back(original->step(x0, kCaptions).loss);
  auto resumed = make_trainer(2, /*curriculum=*/true);
  EXPECT_EQ(resumed->load_train_state(file), 3);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(resumed->step(x0, kCaptions).loss, losses[i]) << "step " << 4 + i;
  expect_identical(snapshot(*original), snapshot(*resumed), "weights after 7 steps");
}

TEST(TrainerState, WithoutRestoringTheRngStreamsTheRunDiverges) {
  // The control for the test above: weights alone are not a training state.
  TempDir dir;
  const auto x0 = batch();
  const std::string file = (dir.path() / "step3.pt").string();
  auto original = trained_three_steps(x0, file);
  const double next = original->step(x0, kCaptions).loss;

  auto weights_only = make_trainer(1);
  weights_only->load_weights(file);  // EMA weights into the model; optimizer and RNG start fresh
  EXPECT_NE(weights_only->step(x0, kCaptions).loss, next);
}

TEST(TrainerState, AWeightsOnlyFileIsRefusedWithItsNameAndTheMissingKey) {
  TempDir dir;
  auto trainer = make_trainer(1);
  const std::string file = (dir.path() / "weights.pt").string();
  // A file with the model's tensors but none of the training state.
  torch::serialize::OutputArchive archive;
  auto full = (dir.path() / "full.pt").string();
  trainer->save_checkpoint(full, 0);
  torch::serialize::InputArchive in;
  in.load_from(full);
  for (const auto& key : in.keys()) {
    if (key.rfind("backbone.", 0) != 0 && key.rfind("text_encoder.", 0) != 0) continue;
    torch::Tensor t;
    in.read(key, t);
    archive.write(key, t, true);
  }
  archive.save_to(file);
  try {
    trainer->load_train_state(file);
    FAIL() << "a weights-only file was accepted as a training state";
  } catch (const asg::Error& e) {
    const std::string message = e.what();
    EXPECT_EQ(e.kind(), asg::ErrorKind::Config);
    EXPECT_NE(message.find(file), std::string::npos) << message;
    EXPECT_NE(message.find("'ema.backbone."), std::string::npos) << message;
    EXPECT_NE(message.find("weights only"), std::string::npos) << message;
  }
}

TEST(TrainerState, AnUnwritablePlaceIsADataErrorAndLeavesNothingBehind) {
  TempDir dir;
  auto trainer = make_trainer(1);
  const auto file = dir.path() / "no such dir" / "ckpt.pt";
  try {
    trainer->save_checkpoint(file.string(), 0);
    FAIL() << "saving into a missing directory succeeded";
  } catch (const asg::Error& e) {
    EXPECT_EQ(e.kind(), asg::ErrorKind::Data);
    EXPECT_NE(std::string(e.what()).find("ckpt.pt.tmp"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(file));
}

}  // namespace
