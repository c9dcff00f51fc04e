// The trainer's step seen from outside: the gradient-hook seam, masked loss, device checks, the learning-rate
// schedule, micro-batches, bf16/fp16 autocast and fp16 loss scaling, negative prompts, image conditioning.
#include <gtest/gtest.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/autocast_mode.h>
#include <torch/torch.h>

#include <filesystem>
#include <limits>
#include <set>

#include <fmt/format.h>

#include "asg/plugin_catalog.h"
#include "asg/stages/runtime_settings.h"
#include "asg/trainer.h"
#include "conformance.h"
#include "test_paths.h"
#include <unistd.h>

namespace fs = std::filesystem;
using asg::testing::build_catalog;

namespace {

// A tiny text-conditioned backbone (unet3d by default, or dit; no temporal module) and its trainer; the
// same initial weights every call.
std::unique_ptr<asg::DiffusionTrainer> small_trainer(uint64_t seed, int64_t micro_batches = 1,
                                                     asg::Precision precision = asg::Precision::Float32,
                                                     const std::string& backbone_name = "unet3d",
                                                     std::vector<asg::ConditionTask> condition_tasks = {},
                                                     int64_t loss_scale_growth_interval = 2000) {
  auto text = build_catalog().create<asg::TextEncoder>(
      "word_embedding", asg::default_params("t", build_catalog().find("text_encoder", "word_embedding")->factory.params));
  asg::BackboneContext ctx;
  ctx.frames = 4;
  ctx.height = ctx.width = 8;
  ctx.text_dim = text->dim();
  ctx.condition_channels = condition_tasks.empty() ? 0 : 5;
  auto none = build_catalog().find("temporal", "none");
  ctx.make_temporal = [&](const asg::TemporalContext& tc) {
    return build_catalog().create<asg::TemporalModule>("none", asg::default_params("none", none->factory.params), tc);
  };
  auto values = asg::default_params("b", build_catalog().find("backbone", backbone_name)->factory.params).values();
  if (backbone_name == "unet3d") {
    values["channels"] = std::vector<int64_t>{8};
    values["groups"] = int64_t{4};
  } else {
    values["width"] = int64_t{32};
    values["depth"] = int64_t{2};
  }
  torch::manual_seed(1);  // the same initial weights for every trainer made here
  auto backbone = build_catalog().create<asg::Backbone>(backbone_name, asg::Params("b", values), ctx);
  asg::TrainOptions options;
  options.ema_decay = 0;
  options.caption_dropout = 0;
  options.micro_batches = micro_batches;
  options.precision = precision;
  options.loss_scale_growth_interval = loss_scale_growth_interval;
  options.condition_tasks = std::move(condition_tasks);
  return std::make_unique<asg::DiffusionTrainer>(text, backbone, asg::NoiseSchedule("cosine", 100, asg::Prediction::V, 1.0),
                                                 options, torch::kCPU, seed);
}
}  // namespace

TEST(GradientHook, RunsAfterBackwardAndBeforeTheOptimizer) {
  auto owned = small_trainer(3);
  asg::DiffusionTrainer& trainer = *owned;
  const auto x0 = torch::rand({2, 4, 4, 8, 8}) * 2 - 1;
  int calls = 0;
  double norm_seen = 0;
  trainer.set_gradient_hook([&](const torch::Tensor& grad) {
    ++calls;
    norm_seen = grad.norm().item<double>();
    grad.zero_();  // what an all-reduce would replace; here: nothing to apply
  });
  auto flat_parameters = [&] {
    std::vector<torch::Tensor> flat;
    for (const auto& p : trainer.trainable_parameters()) flat.push_back(p.detach().flatten().clone());
    return torch::cat(flat);
  };
  const auto before = flat_parameters();
  trainer.step(x0, {"a red star", "a blue moon"});
  EXPECT_EQ(calls, 1);
  EXPECT_GT(norm_seen, 0) << "the hook must see the gradients of this step's backward";
  // AdamW with zero gradients, no weight decay and fresh moments does not move: the optimizer ran after
  // the hook, on what the hook left.
  EXPECT_TRUE(torch::equal(before, flat_parameters()));
}


TEST(MaskedLoss, PaddedFramesCostNothing) {
  // Frames are independent in this model (no temporal module), so with frames 2 and 3 marked padding,
  // whatever they hold changes neither the loss nor the update; without the mask it would.
  torch::manual_seed(5);
  const auto x0 = torch::rand({2, 4, 4, 8, 8}) * 2 - 1;
  auto other = x0.clone();
  other.slice(2, 2, 4).uniform_(-1, 1);
  const auto mask = torch::tensor({1.0f, 1.0f, 0.0f, 0.0f}).repeat({2, 1});
  auto a = small_trainer(3), b = small_trainer(3);
  const double la = a->step(x0, {"a red star", "a blue moon"}, mask).loss;
  const double lb = b->step(other, {"a red star", "a blue moon"}, mask).loss;
  EXPECT_DOUBLE_EQ(la, lb);
  auto c = small_trainer(3), d = small_trainer(3);
  EXPECT_NE(c->step(x0, {"a red star", "a blue moon"}).loss, d->step(other, {"a red star", "a blue moon"}).loss);
  // An all-ones mask is the plain mean.
  auto e = small_trainer(3), f = small_trainer(3);
  EXPECT_NEAR(e->step(x0, {"a red star", "a blue moon"}, torch::ones({2, 4})).loss,
              f->step(x0, {"a red star", "a blue moon"}).loss, 1e-6);
}

TEST(RuntimeSettings, ACudaDeviceThatIsNotThereIsRefusedNamingWhatIs) {
  const auto quickstart = asg::testing::source_dir() / "experiments" / "quickstart.toml";
  const bool cuda = torch::cuda::is_available();
  asg::PluginCatalog plugins;
  // Without CUDA (CI): any cuda device; with it: an index past the last GPU.
  const std::string device = cuda ? "cuda:99" : "cuda:0";
  auto exp = asg::load_experiment(quickstart, {"runtime.device=\"" + device + "\""}, plugins);
  try {
    asg::apply_runtime_settings(exp);
    FAIL() << "no error for " << device;
  } catch (const asg::Error& e) {
    EXPECT_EQ(e.kind(), asg::ErrorKind::Config);
    const std::string expected =
        cuda ? fmt::format("[runtime] device = \"cuda:99\": this machine has {} CUDA device(s)", torch::cuda::device_count())
             : "[runtime] device = \"cuda:0\": no CUDA device is available to this build of LibTorch (valid here: \"cpu\", or "
               "\"auto\" to use CUDA only when present)";
    EXPECT_EQ(std::string(e.what()).substr(0, expected.size()), expected);
  }
  // "auto" falls back to the CPU when there is no GPU.
  if (!cuda) {
    EXPECT_EQ(asg::apply_runtime_settings(asg::load_experiment(quickstart, {"runtime.device=\"auto\""}, plugins)).device,
              torch::Device(torch::kCPU));
  }
}

TEST(TrainOptions, WarmupThenConstantOrCosineLearningRate) {
  asg::TrainOptions o;
  o.lr = 1e-3;
  o.warmup_steps = 4;
  o.total_steps = 14;
  EXPECT_DOUBLE_EQ(o.lr_at(0), 0.25e-3);  // linear warm-up: (step + 1) / warmup
  EXPECT_DOUBLE_EQ(o.lr_at(3), 1e-3);
  EXPECT_DOUBLE_EQ(o.lr_at(13), 1e-3);  // constant after it
  o.cosine_lr = true;
  o.min_lr_fraction = 0.1;
  EXPECT_DOUBLE_EQ(o.lr_at(3), 1e-3);
  EXPECT_DOUBLE_EQ(o.lr_at(4), 1e-3);                        // the decay starts at the peak ...
  EXPECT_NEAR(o.lr_at(8), 0.1e-3 + 0.9e-3 * 0.5 * (1 + std::cos(M_PI * 4 / 9)), 1e-15);
  EXPECT_DOUBLE_EQ(o.lr_at(13), 0.1e-3);                     // ... and reaches the floor at the last step
  for (int64_t s = 5; s < 14; ++s) EXPECT_LT(o.lr_at(s), o.lr_at(s - 1));
}

TEST(TrainOptions, MicroBatchesGiveTheWholeBatchsGradient) {
  // Five clips as one batch or as three micro-batches (1, 2, 2 clips): the same loss and, up to float
  // summation order, the same gradient (seen where a distributed run would all-reduce it); with a frame
  // mask too.
  torch::manual_seed(9);
  const auto x0 = torch::rand({5, 4, 4, 8, 8}) * 2 - 1;
  const std::vector<std::string> captions{"a red star", "a blue moon", "a green heart", "", "a red moon"};
  const auto mask = torch::tensor({1.0f, 1.0f, 1.0f, 0.0f}).repeat({5, 1});
  for (bool masked : {false, true}) {
    auto whole = small_trainer(3), sliced = small_trainer(3, 3);
    torch::Tensor whole_grad, sliced_grad;
    whole->set_gradient_hook([&](const torch::Tensor& g) { whole_grad = g.clone(); });
    sliced->set_gradient_hook([&](const torch::Tensor& g) { sliced_grad = g.clone(); });
    const double a = whole->step(x0, captions, masked ? mask : torch::Tensor()).loss;
    const double b = sliced->step(x0, captions, masked ? mask : torch::Tensor()).loss;
    EXPECT_NEAR(a, b, 1e-6 * a) << masked;
    ASSERT_GT(whole_grad.norm().item<double>(), 0);
    EXPECT_TRUE(torch::allclose(whole_grad, sliced_grad, 1e-4, 1e-7))
        << masked << ": max difference " << (whole_grad - sliced_grad).abs().max().item<double>();
  }
}

TEST(TrainOptions, Bf16AutocastTrainsAndSamplesCloseToFloat32) {
  // CPU autocast here (CUDA autocast on a GPU): the backbone's matmuls in bfloat16, the loss, the update
  // and the sampler in float32. Close to the float32 steps, not equal to them; nothing leaks out.
  torch::manual_seed(9);
  const auto x0 = torch::rand({2, 4, 4, 8, 8}) * 2 - 1;
  const std::vector<std::string> captions{"a red star", "a blue moon"};
  for (const std::string backbone : {"dit", "unet3d"}) {
  SCOPED_TRACE(backbone);
  auto fp32 = small_trainer(3, 1, asg::Precision::Float32, backbone),
       bf16 = small_trainer(3, 1, asg::Precision::BFloat16, backbone);
  for (int i = 0; i < 3; ++i) {
    const double a = fp32->step(x0, captions).loss, b = bf16->step(x0, captions).loss;
    EXPECT_TRUE(std::isfinite(b));
    EXPECT_NEAR(b, a, 0.05 * a) << "step " << i;
    if (i == 2) {
      EXPECT_NE(a, b) << "autocast changed nothing";
    }
  }
  EXPECT_FALSE(at::autocast::is_autocast_enabled(at::kCPU)) << "autocast must not leak past the step";
  auto ddim_values = asg::default_params("s", build_catalog().find("sampler", "ddim")->factory.params).values();
  ddim_values["steps"] = int64_t{3};
  auto ddim = build_catalog().create<asg::Sampler>("ddim", asg::Params("s", ddim_values));
  auto clip = bf16->sample(*ddim, {"a red star"}, {4, 4, 8, 8}, at::detail::createCPUGenerator(7), nullptr);
  EXPECT_EQ(clip.scalar_type(), torch::kFloat);
  EXPECT_TRUE(torch::isfinite(clip).all().item<bool>());
  EXPECT_FALSE(at::autocast::is_autocast_enabled(at::kCPU));
  }
}

TEST(TrainOptions, Fp16AutocastScalesTheLossAndTrainsCloseToFloat32) {
  // The gradient comes back from the scaled loss divided by the scale: the same update as float32, up to
  // float16's rounding in the backbone.
  torch::manual_seed(9);
  const auto x0 = torch::rand({2, 4, 4, 8, 8}) * 2 - 1;
  const std::vector<std::string> captions{"a red star", "a blue moon"};
  auto fp32 = small_trainer(3), fp16 = small_trainer(3, 1, asg::Precision::Float16);
  for (int i = 0; i < 3; ++i) {
    const auto a = fp32->step(x0, captions), b = fp16->step(x0, captions);
    EXPECT_EQ(a.loss_scale, 0);
    EXPECT_EQ(b.loss_scale, 65536);
    EXPECT_FALSE(b.skipped);
    EXPECT_NEAR(b.loss, a.loss, 0.05 * a.loss) << "step " << i;
    EXPECT_NEAR(b.grad_norm, a.grad_norm, 0.05 * a.grad_norm) << "step " << i << ": the gradient was not unscaled";
    if (i == 2) {
      EXPECT_NE(a.loss, b.loss) << "autocast changed nothing";
    }
  }
  EXPECT_FALSE(at::autocast::is_autocast_enabled(at::kCPU)) << "autocast must not leak past the step";
}

TEST(TrainOptions, AnOverflowingFp16GradientChangesNothingHalvesTheScaleAndTheScaleGrowsBackAndResumes) {
  torch::manual_seed(9);
  const auto x0 = torch::rand({2, 4, 4, 8, 8}) * 2 - 1;
  const std::vector<std::string> captions{"a red star", "a blue moon"};
  auto trainer = small_trainer(3, 1, asg::Precision::Float16, "unet3d", {}, /*loss_scale_growth_interval=*/2);
  auto weights = [&] {
    std::vector<torch::Tensor> w;
    for (const auto& p : trainer->trainable_parameters()) w.push_back(p.detach().clone());
    return w;
  };
  trainer->step(x0, captions);
  const auto before = weights();
  bool overflow = true;
  trainer->set_gradient_hook([&](const torch::Tensor& grad) {
    if (overflow) grad[0] = std::numeric_limits<float>::infinity();
  });
  const auto skipped = trainer->step(x0, captions);
  EXPECT_TRUE(skipped.skipped);
  EXPECT_EQ(skipped.loss_scale, 65536);
  const auto after = weights();
  for (size_t i = 0; i < before.size(); ++i) ASSERT_TRUE(torch::equal(before[i], after[i])) << "parameter " << i;
  EXPECT_EQ(trainer->step_count(), 2) << "the skipped step still counts";
  overflow = false;
  EXPECT_EQ(trainer->step(x0, captions).loss_scale, 32768) << "halved after the overflow";
  const fs::path dir = fs::temp_directory_path() / fmt::format("asg_fp16_scale_{}", ::getpid());
  fs::create_directories(dir);
  trainer->save_checkpoint((dir / "ckpt.pt").string(), 3);
  // Two finite steps in a row since the overflow: the scale doubles for the step after them.
  EXPECT_EQ(trainer->step(x0, captions).loss_scale, 32768);
  const auto grown = trainer->step(x0, captions);
  EXPECT_EQ(grown.loss_scale, 65536);
  // A trainer resumed from the checkpoint continues with the scale and the count it had.
  auto resumed = small_trainer(3, 1, asg::Precision::Float16, "unet3d", {}, 2);
  resumed->load_train_state((dir / "ckpt.pt").string());
  EXPECT_EQ(resumed->step(x0, captions).loss_scale, 32768);
  const auto again = resumed->step(x0, captions);
  EXPECT_EQ(again.loss_scale, 65536);
  EXPECT_EQ(again.loss, grown.loss);
  fs::remove_all(dir);
}

TEST(TrainOptions, PrecisionNamesAreParsedAndAnythingElseIsRefusedNamingTheKey) {
  EXPECT_EQ(asg::parse_precision("fp16", "k"), asg::Precision::Float16);
  EXPECT_EQ(asg::parse_precision("bf16", "k"), asg::Precision::BFloat16);
  EXPECT_EQ(asg::parse_precision("fp32", "k"), asg::Precision::Float32);
  try {
    asg::parse_precision("half", "[runtime] precision");
    FAIL();
  } catch (const asg::Error& e) {
    EXPECT_EQ(std::string(e.what()), "[runtime] precision = \"half\": unknown precision (valid: \"fp32\", \"bf16\", \"fp16\")");
  }
}

TEST(NegativePrompt, IsWhatTheUnconditionalBranchOfGuidanceSees) {
  auto trainer = small_trainer(3);
  // A few steps first: the attention's output projections start at zero, so the untrained model ignores text.
  torch::manual_seed(2);
  for (int i = 0; i < 3; ++i) trainer->step(torch::rand({2, 4, 4, 8, 8}) * 2 - 1, {"a red star", "blurry static"});
  auto ddim_values = asg::default_params("s", build_catalog().find("sampler", "ddim")->factory.params).values();
  ddim_values["steps"] = int64_t{3};
  auto sample = [&](const std::string& caption, const std::string& negative, double scale) {
    ddim_values["guidance_scale"] = scale;
    auto ddim = build_catalog().create<asg::Sampler>("ddim", asg::Params("s", ddim_values));
    return trainer->sample(*ddim, {caption}, {4, 4, 8, 8}, at::detail::createCPUGenerator(7), nullptr, negative);
  };
  // Scale 0 is the unconditional branch alone: conditioned on the negative prompt, exactly as if it
  // were the caption without guidance.
  EXPECT_TRUE(torch::equal(sample("a red star", "blurry static", 0.0), sample("blurry static", "", 1.0)));
  // Scale 1 never looks at it; above 1 it steers away from it.
  EXPECT_TRUE(torch::equal(sample("a red star", "blurry static", 1.0), sample("a red star", "", 1.0)));
  EXPECT_FALSE(torch::equal(sample("a red star", "blurry static", 4.0), sample("a red star", "", 4.0)));
}

TEST(ImageConditioning, ImageGuidanceAtScaleOneIsTextGuidanceAloneAndAboveOneStrengthensTheFrames) {
  auto trainer = small_trainer(3, 1, asg::Precision::Float32, "unet3d", {asg::ConditionTask::Image});
  torch::manual_seed(2);
  for (int i = 0; i < 3; ++i) trainer->step(torch::rand({2, 4, 4, 8, 8}) * 2 - 1, {"a red star", "a blue moon"});
  auto ddim_values = asg::default_params("s", build_catalog().find("sampler", "ddim")->factory.params).values();
  ddim_values["steps"] = int64_t{3};
  ddim_values["guidance_scale"] = 3.0;
  auto ddim = build_catalog().create<asg::Sampler>("ddim", asg::Params("s", ddim_values));
  torch::manual_seed(4);
  const auto clips = torch::rand({1, 4, 4, 8, 8});
  auto sample = [&](double image_scale) {
    asg::SampleCondition condition{clips, asg::evaluation_condition_mask(asg::ConditionTask::Image, 4).unsqueeze(0), image_scale};
    return trainer->sample(*ddim, {"a red star"}, {4, 4, 8, 8}, at::detail::createCPUGenerator(7), nullptr, "", &condition);
  };
  // eps(-,-) + 1 (eps(-,img) - eps(-,-)) + s (eps(txt,img) - eps(-,img)) is text guidance with the frames in both
  // branches: the same up to the rounding of a three-way batch.
  const auto text_only = sample(0), image_one = sample(1), image_three = sample(3);
  EXPECT_TRUE(torch::allclose(image_one, text_only, 1e-4, 1e-5)) << (image_one - text_only).abs().max().item<double>();
  EXPECT_GT((image_three - text_only).abs().max().item<double>(), 1e-3);
}

TEST(ImageConditioning, MasksFollowTheirTasks) {
  auto eval = [](asg::ConditionTask task) {
    std::vector<float> m;
    auto t = asg::evaluation_condition_mask(task, 8);
    for (int64_t i = 0; i < 8; ++i) m.push_back(t[i].item<float>());
    return m;
  };
  using V = std::vector<float>;
  EXPECT_EQ(eval(asg::ConditionTask::Generation), (V{0, 0, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(eval(asg::ConditionTask::Image), (V{1, 0, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(eval(asg::ConditionTask::Interpolation), (V{1, 0, 1, 0, 1, 0, 1, 0}));
  EXPECT_EQ(eval(asg::ConditionTask::Prediction), (V{1, 1, 1, 1, 0, 0, 0, 0}));

  auto text_of = [](const torch::Tensor& m) {
    std::string s;
    for (int64_t f = 0; f < m.size(0); ++f) s += m[f].item<float>() > 0 ? '1' : '0';
    return s;
  };
  at::Generator gen = at::detail::createCPUGenerator(5);
  std::set<std::string> interpolation, prediction;
  std::set<int64_t> image_frames;
  for (int i = 0; i < 300; ++i) {
    auto image = asg::training_condition_mask(asg::ConditionTask::Image, 8, gen);
    ASSERT_EQ(image.sum().item<float>(), 1.f);
    image_frames.insert(image.argmax().item<int64_t>());
    interpolation.insert(text_of(asg::training_condition_mask(asg::ConditionTask::Interpolation, 8, gen)));
    const std::string p = text_of(asg::training_condition_mask(asg::ConditionTask::Prediction, 8, gen));
    // A prefix or a suffix of 1..7 frames.
    const auto ones = std::count(p.begin(), p.end(), '1');
    ASSERT_GE(ones, 1);
    ASSERT_LE(ones, 7);
    ASSERT_TRUE(p == std::string(ones, '1') + std::string(8 - ones, '0') || p == std::string(8 - ones, '0') + std::string(ones, '1')) << p;
    prediction.insert(p);
    ASSERT_EQ(asg::training_condition_mask(asg::ConditionTask::Generation, 8, gen).sum().item<float>(), 0.f);
  }
  EXPECT_EQ(image_frames.size(), 8u);
  // [conditioning] image_frame = "first" (I2VGen-XL): always frame 0.
  for (int i = 0; i < 20; ++i)
    EXPECT_EQ(text_of(asg::training_condition_mask(asg::ConditionTask::Image, 8, gen, true)), "10000000");
  EXPECT_EQ(interpolation, (std::set<std::string>{"10101010", "01010101", "10010010"}));  // RDTF's patterns
  EXPECT_EQ(prediction.size(), 14u);  // 7 lengths, forwards and backwards

  // The backbone's input: x_t, the clean clip where given, the mask.
  auto x_t = torch::full({1, 2, 3, 1, 1}, 7.f), x0 = torch::arange(6, torch::kFloat).view({1, 2, 3, 1, 1});
  auto in = asg::with_condition(x_t, x0, torch::tensor({{1.f, 0.f, 1.f}}));
  ASSERT_EQ(in.sizes(), torch::IntArrayRef({1, 5, 3, 1, 1}));
  EXPECT_TRUE(torch::equal(in.flatten(), torch::tensor({7.f, 7.f, 7.f, 7.f, 7.f, 7.f, 0.f, 0.f, 2.f, 3.f, 0.f, 5.f, 1.f, 0.f, 1.f})));
}

TEST(ImageConditioning, TheTrainerFeedsGivenFramesToTheBackboneInTrainingAndSampling) {
  auto trainer = small_trainer(3, 1, asg::Precision::Float32, "unet3d", {asg::ConditionTask::Image, asg::ConditionTask::Interpolation});
  torch::manual_seed(2);
  const auto x0 = torch::rand({2, 4, 4, 8, 8}) * 2 - 1;
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(std::isfinite(trainer->step(x0, {"a red star", "a blue moon"}).loss));
  // Weights away from their zero-initialised outputs, so the sample depends on every input channel.
  {
    torch::NoGradGuard no_grad;
    for (auto& p : trainer->trainable_parameters()) p.add_(torch::randn_like(p) * 0.05);
  }
  auto ddim_values = asg::default_params("s", build_catalog().find("sampler", "ddim")->factory.params).values();
  ddim_values["steps"] = int64_t{3};
  auto ddim = build_catalog().create<asg::Sampler>("ddim", asg::Params("s", ddim_values));
  auto sample = [&](const asg::SampleCondition* condition) {
    return trainer->sample(*ddim, {"a red star"}, {4, 4, 8, 8}, at::detail::createCPUGenerator(7), nullptr, "", condition);
  };
  const auto reference = torch::rand({1, 4, 4, 8, 8});  // straight RGBA [B, T, 4, H, W]
  asg::SampleCondition first{reference, asg::evaluation_condition_mask(asg::ConditionTask::Image, 4).unsqueeze(0)};
  asg::SampleCondition other{torch::rand({1, 4, 4, 8, 8}), first.mask};
  asg::SampleCondition none{reference, torch::zeros({1, 4})};
  // No condition is the generation task: no frame given.
  EXPECT_TRUE(torch::equal(sample(nullptr), sample(&none)));
  EXPECT_FALSE(torch::equal(sample(&first), sample(&none)));
  EXPECT_FALSE(torch::equal(sample(&first), sample(&other)));
  // Only the given frames matter: changing a frame that is not given changes nothing.
  asg::SampleCondition first_changed_later{reference.clone(), first.mask};
  first_changed_later.clips.select(1, 2).fill_(0.5);
  EXPECT_TRUE(torch::equal(sample(&first), sample(&first_changed_later)));
}

namespace {

// A backbone that takes a 3-wide image embedding and records every one it is given.
struct RecordingBackbone final : asg::Backbone {
  RecordingBackbone() { scale = register_parameter("scale", torch::ones({1})); }
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t, const asg::TextEmbedding& text) override {
    return forward_with_image_embedding(x, t, text, torch::zeros({x.size(0), 3}));
  }
  int64_t image_embedding_dim() const override { return 3; }
  torch::Tensor forward_with_image_embedding(const torch::Tensor& x, const torch::Tensor&, const asg::TextEmbedding&,
                                             const torch::Tensor& image_embedding) override {
    seen.push_back(image_embedding.detach().clone());
    return x.narrow(1, 0, 4) * scale;
  }
  torch::Tensor scale;
  std::vector<torch::Tensor> seen;
};

// Each frame's mean colour: an embedding that says which frame it came from.
struct MeanColour final : asg::ImageEncoder {
  int64_t dim() const override { return 3; }
  torch::Tensor encode(const torch::Tensor& frames) override { return frames.narrow(1, 0, 3).mean({2, 3}); }
};

}  // namespace

TEST(ImageConditioning, TheImageEmbeddingIsTheFirstGivenFramesAndZerosWithoutAFrameOrACaption) {
  auto text = build_catalog().create<asg::TextEncoder>(
      "word_embedding", asg::default_params("t", build_catalog().find("text_encoder", "word_embedding")->factory.params));
  auto make = [&](std::vector<asg::ConditionTask> tasks, double caption_dropout) {
    auto backbone = std::make_shared<RecordingBackbone>();
    asg::TrainOptions options;
    options.ema_decay = 0;
    options.caption_dropout = caption_dropout;
    options.condition_tasks = std::move(tasks);
    options.image_frame_first = true;
    auto trainer = std::make_unique<asg::DiffusionTrainer>(text, backbone, asg::NoiseSchedule("cosine", 100, asg::Prediction::V, 1.0),
                                                           options, torch::kCPU, 5);
    trainer->set_image_encoder(std::make_shared<MeanColour>());
    return std::make_pair(std::move(trainer), backbone);
  };
  torch::manual_seed(4);
  const auto x0 = torch::rand({8, 4, 4, 8, 8}) * 2 - 1;  // model space [B, 4, T, H, W]
  const auto first_frames = MeanColour().encode(x0.select(2, 0));
  const std::vector<std::string> captions(8, "a red star");
  {
    SCOPED_TRACE("image task, no caption dropout: every clip its first frame's embedding");
    auto [trainer, backbone] = make({asg::ConditionTask::Image}, 0.0);
    trainer->step(x0, captions);
    ASSERT_EQ(backbone->seen.size(), 1u);
    EXPECT_TRUE(torch::allclose(backbone->seen[0], first_frames));
  }
  {
    SCOPED_TRACE("generation and image, half the captions dropped: each clip its first frame's embedding or zeros, both seen");
    auto [trainer, backbone] = make({asg::ConditionTask::Generation, asg::ConditionTask::Image}, 0.5);
    int encoded = 0, zeroed = 0;
    for (int step = 0; step < 4; ++step) {
      trainer->step(x0, captions);
      const auto seen = backbone->seen.back();
      for (int64_t b = 0; b < 8; ++b) {
        if (torch::equal(seen[b], torch::zeros({3}))) ++zeroed;
        else if (torch::allclose(seen[b], first_frames[b])) ++encoded;
        else ADD_FAILURE() << "clip " << b << " got an embedding of neither its first frame nor zeros: " << seen[b];
      }
    }
    EXPECT_GT(encoded, 0);
    EXPECT_GT(zeroed, 0);
  }
  {
    SCOPED_TRACE("every caption dropped: zeros, guidance's unconditional input");
    auto [trainer, backbone] = make({asg::ConditionTask::Image}, 1.0);
    trainer->step(x0, captions);
    EXPECT_TRUE(torch::equal(backbone->seen.back(), torch::zeros({8, 3})));
  }
  {
    SCOPED_TRACE("sampling: the given frame's embedding in the conditional branch, zeros in the unconditional one");
    auto [trainer, backbone] = make({asg::ConditionTask::Image}, 0.0);
    auto ddim_values = asg::default_params("s", build_catalog().find("sampler", "ddim")->factory.params).values();
    ddim_values["steps"] = int64_t{2};
    ddim_values["guidance_scale"] = 3.0;
    auto ddim = build_catalog().create<asg::Sampler>("ddim", asg::Params("s", ddim_values));
    const auto reference = torch::rand({1, 4, 4, 8, 8});  // straight RGBA [B, T, 4, H, W]
    auto mask = torch::zeros({1, 4});
    mask[0][2] = 1;  // frame 2 given: the first given frame need not be frame 0
    asg::SampleCondition condition{reference, mask};
    trainer->sample(*ddim, {"a red star"}, {4, 4, 8, 8}, at::detail::createCPUGenerator(7), nullptr, "", &condition);
    ASSERT_EQ(backbone->seen.size(), 2u);  // one batched (conditional, unconditional) call per step
    const auto given = MeanColour().encode(asg::to_model_space(reference).select(2, 2));
    for (const auto& seen : backbone->seen) {
      ASSERT_EQ(seen.sizes(), torch::IntArrayRef({2, 3}));
      EXPECT_TRUE(torch::allclose(seen[0], given[0]));
      EXPECT_TRUE(torch::equal(seen[1], torch::zeros({3})));
    }
  }
}
