// The run's stages on their own: the batch source (order, prefetching, positions, failures, its worker
// threads), the recorder with the sample writer, and the trainer's step seen from outside: the gradient-hook
// seam, micro-batches, bf16/fp16 autocast and fp16 loss scaling, negative prompts, image conditioning.
#include <gtest/gtest.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <torch/torch.h>

#include <algorithm>
#include <limits>
#include <filesystem>
#include <fstream>
#include <set>

#include <fmt/format.h>

#include "asg/plugin_catalog.h"
#include "conformance.h"
#include "asg/stages.h"
#include "test_paths.h"
#include <unistd.h>

namespace fs = std::filesystem;

namespace {

const asg::PluginCatalog& catalog() {
  static const asg::PluginCatalog c = asg::PluginCatalog::discover();
  return c;
}

std::shared_ptr<asg::Dataset> stickers(int64_t train_size) {
  auto values = asg::default_params("ds", catalog().find("dataset", "synthetic_stickers")->factory.params).values();
  values["train_size"] = train_size;
  values["size"] = int64_t{16};
  values["frames"] = int64_t{4};
  return catalog().create<asg::Dataset>("synthetic_stickers", asg::Params("ds", values));
}

std::vector<asg::TrainBatch> take(asg::BatchSource& source, int n) {
  std::vector<asg::TrainBatch> out;
  for (int i = 0; i < n; ++i) out.push_back(source.next());
  return out;
}

asg::LoaderOptions loader(int64_t batch, uint64_t seed, int64_t prefetch, int64_t workers = 1,
                         asg::DataHealth* health = nullptr) {
  asg::LoaderOptions o;
  o.batch_size = batch;
  o.order_seed = seed;
  o.prefetch_batches = prefetch;
  o.workers = workers;
  o.health = health;
  return o;
}

void expect_same(const asg::TrainBatch& a, const asg::TrainBatch& b, const std::string& what) {
  EXPECT_TRUE(torch::equal(a.x0, b.x0)) << what;
  EXPECT_EQ(a.captions, b.captions) << what;
  EXPECT_EQ(a.after.cursor, b.after.cursor) << what;
  EXPECT_TRUE(torch::equal(a.after.epoch_rng, b.after.epoch_rng)) << what;
}

// A dataset whose train sample `bad` is a broken file.
class BrokenAt final : public asg::Dataset {
 public:
  BrokenAt(std::shared_ptr<asg::Dataset> inner, int64_t bad) : inner_(std::move(inner)), bad_(bad) {}
  asg::DatasetInfo info() const override { return inner_->info(); }
  int64_t size(asg::Split s) const override { return inner_->size(s); }
  asg::Sticker get(asg::Split s, int64_t i) const override {
    if (i == bad_) throw asg::data_error("/data/broken.gif: truncated LZW stream");
    return inner_->get(s, i);
  }

 private:
  std::shared_ptr<asg::Dataset> inner_;
  int64_t bad_;
};

// A dataset whose decoding runs a tensor op large enough for LibTorch to split it across its threads, as
// decoding and resizing big frames with LibTorch ops do. (at::parallel_for itself would run serially here:
// its OpenMP pragma is compiled into the caller, and ASG Lab does not build with -fopenmp.)
class ParallelDecode final : public asg::Dataset {
 public:
  explicit ParallelDecode(std::shared_ptr<asg::Dataset> inner) : inner_(std::move(inner)) {}
  asg::DatasetInfo info() const override { return inner_->info(); }
  int64_t size(asg::Split s) const override { return inner_->size(s); }
  asg::Sticker get(asg::Split s, int64_t i) const override {
    torch::empty({1 << 20}).fill_(1.0f);
    return inner_->get(s, i);
  }

 private:
  std::shared_ptr<asg::Dataset> inner_;
};

int64_t threads_of_this_process() {
  return std::distance(fs::directory_iterator("/proc/self/task"), fs::directory_iterator{});
}

}  // namespace

TEST(BatchSource, PrefetchingChangesNeitherBatchesNorOrderNorPositions) {
  auto data = stickers(12);  // batches of 5 over 12 samples: epochs turn inside batches
  asg::BatchSource inline_source(data, loader(5, 42, 0));
  asg::BatchSource prefetching(data, loader(5, 42, 3));
  auto a = take(inline_source, 7), b = take(prefetching, 7);
  for (int i = 0; i < 7; ++i) expect_same(a[i], b[i], "batch " + std::to_string(i));
  EXPECT_EQ(a[0].x0.sizes(), (std::vector<int64_t>{5, 4, 4, 16, 16}));  // model space [B, C, T, H, W]
  // Every sample once per epoch: the first 12 indices drawn are a permutation.
  EXPECT_EQ(a[1].after.cursor, 10);
  EXPECT_EQ(a[2].after.cursor, 3);  // the third batch took 2 from epoch 1 and 3 from epoch 2
  EXPECT_FALSE(torch::equal(a[1].after.epoch_rng, a[2].after.epoch_rng));
  asg::BatchSource other_seed(data, loader(5, 43, 0));
  EXPECT_NE(take(other_seed, 1)[0].captions, a[0].captions);
}

TEST(BatchSource, ContinuesExactlyFromASavedPosition) {
  auto data = stickers(12);
  asg::BatchSource first(data, loader(5, 7, 2, 3));
  auto all = take(first, 8);
  // Through a checkpoint's tensors, as a resumed run gets them.
  auto saved = all[3].after.to_checkpoint();
  asg::BatchSource resumed(data, loader(5, 7, 2, 1), asg::DataPosition::from_checkpoint(saved, "ckpt.pt"));
  auto rest = take(resumed, 4);
  for (int i = 0; i < 4; ++i) expect_same(rest[i], all[4 + i], "batch " + std::to_string(4 + i));
}

TEST(BatchSource, ACheckpointWithoutADataPositionIsRefusedNamingTheFile) {
  try {
    asg::DataPosition::from_checkpoint({}, "/runs/x/checkpoints/step_0000010.pt");
    FAIL();
  } catch (const asg::Error& e) {
    EXPECT_EQ(e.kind(), asg::ErrorKind::Data);
    EXPECT_EQ(std::string(e.what()).rfind("/runs/x/checkpoints/step_0000010.pt: the checkpoint has no data position", 0), 0u);
  }
}

TEST(BatchSource, BatchesDoNotDependOnTheNumberOfDecodeThreads) {
  auto data = stickers(23);
  asg::BatchSource reference(data, loader(6, 9, 0));
  auto expected = take(reference, 9);  // several epochs, turning inside batches
  for (int64_t workers : {1, 2, 5}) {
    for (int64_t prefetch : {1, 4}) {
      asg::BatchSource threaded(data, loader(6, 9, prefetch, workers));
      auto got = take(threaded, 9);
      for (int i = 0; i < 9; ++i)
        expect_same(got[i], expected[i], fmt::format("batch {}, {} workers, prefetch {}", i, workers, prefetch));
    }
  }
}

// A decode worker that started an OpenMP team of its own would leave the process with more OpenMP threads than
// the training thread's team: on a machine with as many cores as that team, libgomp then stops spinning between
// parallel regions and the training threads sleep and wake around every op (a 1.5x slower quickstart step).
TEST(BatchSource, DecodeWorkersStartNoThreadsOfTheirOwn) {
  const int saved = at::get_num_threads();
  at::set_num_threads(2);
  torch::empty({1 << 20}).fill_(1.0f);  // the training thread's team exists before counting
  const int64_t before = threads_of_this_process();
  {
    asg::BatchSource source(std::make_shared<ParallelDecode>(stickers(12)), loader(4, 5, 2, 3));
    take(source, 4);
    EXPECT_EQ(threads_of_this_process(), before + 3) << "3 decode workers and no other thread";
  }
  at::set_num_threads(saved);
}

TEST(BatchSource, ADatasetErrorOnAWorkerReachesTheTrainingThreadAfterTheGoodBatches) {
  auto data = stickers(12);
  // The first epoch's order under seed 5 is this permutation (the source draws it the same way); break
  // its fifth sample, the first of the second batch of 4.
  at::Generator g = at::detail::createCPUGenerator(5);
  const int64_t fifth = torch::randperm(12, g, torch::kLong)[4].item<int64_t>();
  for (int prefetch : {0, 3}) {
    asg::BatchSource source(std::make_shared<BrokenAt>(data, fifth), loader(4, 5, prefetch, 2));
    EXPECT_NO_THROW(source.next()) << "prefetch " << prefetch;
    try {
      source.next();
      ADD_FAILURE() << "expected the dataset's error, prefetch " << prefetch;
    } catch (const asg::Error& e) {
      EXPECT_EQ(e.kind(), asg::ErrorKind::Data);
      EXPECT_STREQ(e.what(), "/data/broken.gif: truncated LZW stream");
    }
  }
}

TEST(BatchSource, ABadSampleIsSkippedReportedOnceAndReplacedByTheNextInOrder) {
  auto data = stickers(12);
  at::Generator g = at::detail::createCPUGenerator(5);
  auto perm = torch::randperm(12, g, torch::kLong);
  const int64_t fifth = perm[4].item<int64_t>();
  auto broken = std::make_shared<BrokenAt>(data, fifth);
  for (int prefetch : {0, 3}) {
    std::vector<asg::RejectedSample> reported;
    asg::DataHealth health(*broken, 0.5, [&](const asg::RejectedSample& r) { reported.push_back(r); });
    asg::BatchSource source(broken, loader(4, 5, prefetch, 2, &health));
    auto batches = take(source, 7);  // past the second epoch: the bad sample comes up twice
    // The second batch is samples 6..9 of the order: the bad fifth one was replaced by the next.
    std::vector<std::string> expected;
    for (int i = 5; i < 9; ++i) expected.push_back(data->get(asg::Split::Train, perm[i].item<int64_t>()).caption);
    EXPECT_EQ(batches[1].captions, expected) << "prefetch " << prefetch;
    EXPECT_EQ(batches[1].after.cursor, 9);
    ASSERT_EQ(reported.size(), 1u) << "reported once, though read in two epochs";
    EXPECT_EQ(reported[0].id, fmt::format("train/{}", fifth));
    EXPECT_EQ(reported[0].reason, "/data/broken.gif: truncated LZW stream");
    EXPECT_EQ(health.bad(), 1);
    EXPECT_EQ(health.rows(), 12 + 256 + 256);
  }
}

namespace {
// A streamed dataset whose stream breaks (throws from next()) after `good` samples.
class BreakingStream final : public asg::Dataset {
 public:
  BreakingStream(std::shared_ptr<asg::Dataset> inner, int good) : inner_(std::move(inner)), good_(good) {}
  asg::DatasetInfo info() const override {
    auto info = inner_->info();
    info.sequential = true;
    return info;
  }
  int64_t size(asg::Split s) const override { return inner_->size(s); }
  asg::Sticker get(asg::Split s, int64_t i) const override { return inner_->get(s, i); }
  std::unique_ptr<asg::SampleStream> open_stream(asg::Split, asg::StreamSlice, int64_t, uint64_t) const override {
    struct Stream final : asg::SampleStream {
      const BreakingStream* owner;
      int at = 0;
      std::optional<asg::StreamItem> next() override {
        if (at == owner->good_) throw asg::data_error("shard-000003.tar: malformed tar shard near byte 512");
        const int index = at++;
        return asg::StreamItem{std::to_string(index), [this, index] { return owner->get(asg::Split::Train, index); }};
      }
    };
    auto s = std::make_unique<Stream>();
    s->owner = this;
    return s;
  }

 private:
  std::shared_ptr<asg::Dataset> inner_;
  int good_;
};
}  // namespace

TEST(BatchSource, AStreamThatBreaksEndsTheDataWithItsErrorEvenWhenBadSamplesAreTolerated) {
  auto broken = std::make_shared<BreakingStream>(stickers(12), 6);
  for (int prefetch : {0, 2}) {
    asg::DataHealth health(*broken, 1.0, nullptr);
    asg::BatchSource source(broken, loader(4, 1, prefetch, 3, &health));
    EXPECT_NO_THROW(source.next()) << prefetch;  // samples 0..3
    try {
      source.next();
      ADD_FAILURE() << "expected the stream's error, prefetch " << prefetch;
    } catch (const asg::Error& e) {
      EXPECT_STREQ(e.what(), "shard-000003.tar: malformed tar shard near byte 512");
    }
  }
}

TEST(BatchSource, TooManyBadSamplesFailTheRunWithTheCounts) {
  auto data = stickers(12);
  asg::DataHealth health(*std::make_shared<BrokenAt>(data, 3), 0.0, nullptr);
  asg::BatchSource source(std::make_shared<BrokenAt>(data, 3), loader(12, 1, 2, 2, &health));
  try {
    source.next();
    FAIL() << "expected the bad-fraction error";
  } catch (const asg::Error& e) {
    EXPECT_EQ(e.kind(), asg::ErrorKind::Data);
    EXPECT_EQ(std::string(e.what()), "1 of 524 samples (0.19%) are bad, over [data] max_bad_fraction = 0 (0.00%); the "
                                     "latest: /data/broken.gif: truncated LZW stream (every skipped sample and its reason "
                                     "is in the run's data_skipped.tsv)");
  }
}

TEST(DeriveSeed, KeepsTheStreamsEveryRecordedRunWasSeededWith) {
  // Values of the formula as first shipped (FNV-1a from kAsgSeedFnvBasis, then splitmix64's mix of
  // seed + golden * (h | 1)), computed independently: the data order, initial weights and noise of every
  // recorded run depend on them.
  EXPECT_EQ(asg::derive_seed(0, "train.order"), 6530070917925396702ull);
  EXPECT_EQ(asg::derive_seed(12345, "init.temporal.down0_0"), 8125910775043960206ull);
  EXPECT_EQ(asg::derive_seed(9223372036854775807ull, ""), 1353603092574144253ull);
}

namespace {

// A tiny text-conditioned backbone (unet3d by default, or dit; no temporal module) and its trainer; the
// same initial weights every call.
std::unique_ptr<asg::DiffusionTrainer> small_trainer(uint64_t seed, int64_t micro_batches = 1,
                                                     asg::Precision precision = asg::Precision::Float32,
                                                     const std::string& backbone_name = "unet3d",
                                                     std::vector<asg::ConditionTask> condition_tasks = {},
                                                     int64_t loss_scale_growth_interval = 2000) {
  auto text = catalog().create<asg::TextEncoder>(
      "word_embedding", asg::default_params("t", catalog().find("text_encoder", "word_embedding")->factory.params));
  asg::BackboneContext ctx;
  ctx.frames = 4;
  ctx.height = ctx.width = 8;
  ctx.text_dim = text->dim();
  ctx.condition_channels = condition_tasks.empty() ? 0 : 5;
  auto none = catalog().find("temporal", "none");
  ctx.make_temporal = [&](const asg::TemporalContext& tc) {
    return catalog().create<asg::TemporalModule>("none", asg::default_params("none", none->factory.params), tc);
  };
  auto values = asg::default_params("b", catalog().find("backbone", backbone_name)->factory.params).values();
  if (backbone_name == "unet3d") {
    values["channels"] = std::vector<int64_t>{8};
    values["groups"] = int64_t{4};
  } else {
    values["width"] = int64_t{32};
    values["depth"] = int64_t{2};
  }
  torch::manual_seed(1);  // the same initial weights for every trainer made here
  auto backbone = catalog().create<asg::Backbone>(backbone_name, asg::Params("b", values), ctx);
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
  auto ddim_values = asg::default_params("s", catalog().find("sampler", "ddim")->factory.params).values();
  ddim_values["steps"] = int64_t{3};
  auto ddim = catalog().create<asg::Sampler>("ddim", asg::Params("s", ddim_values));
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
  auto ddim_values = asg::default_params("s", catalog().find("sampler", "ddim")->factory.params).values();
  ddim_values["steps"] = int64_t{3};
  auto sample = [&](const std::string& caption, const std::string& negative, double scale) {
    ddim_values["guidance_scale"] = scale;
    auto ddim = catalog().create<asg::Sampler>("ddim", asg::Params("s", ddim_values));
    return trainer->sample(*ddim, {caption}, {4, 4, 8, 8}, at::detail::createCPUGenerator(7), nullptr, negative);
  };
  // Scale 0 is the unconditional branch alone: conditioned on the negative prompt, exactly as if it
  // were the caption without guidance.
  EXPECT_TRUE(torch::equal(sample("a red star", "blurry static", 0.0), sample("blurry static", "", 1.0)));
  // Scale 1 never looks at it; above 1 it steers away from it.
  EXPECT_TRUE(torch::equal(sample("a red star", "blurry static", 1.0), sample("a red star", "", 1.0)));
  EXPECT_FALSE(torch::equal(sample("a red star", "blurry static", 4.0), sample("a red star", "", 4.0)));
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

  at::Generator gen = at::detail::createCPUGenerator(5);
  std::set<std::string> interpolation, prediction;
  std::set<int64_t> image_frames;
  for (int i = 0; i < 300; ++i) {
    auto image = asg::training_condition_mask(asg::ConditionTask::Image, 8, gen);
    ASSERT_EQ(image.sum().item<float>(), 1.f);
    image_frames.insert(image.argmax().item<int64_t>());
    auto text = [](const torch::Tensor& m) {
      std::string s;
      for (int64_t f = 0; f < m.size(0); ++f) s += m[f].item<float>() > 0 ? '1' : '0';
      return s;
    };
    interpolation.insert(text(asg::training_condition_mask(asg::ConditionTask::Interpolation, 8, gen)));
    const std::string p = text(asg::training_condition_mask(asg::ConditionTask::Prediction, 8, gen));
    // A prefix or a suffix of 1..7 frames.
    const auto ones = std::count(p.begin(), p.end(), '1');
    ASSERT_GE(ones, 1);
    ASSERT_LE(ones, 7);
    ASSERT_TRUE(p == std::string(ones, '1') + std::string(8 - ones, '0') || p == std::string(8 - ones, '0') + std::string(ones, '1')) << p;
    prediction.insert(p);
    ASSERT_EQ(asg::training_condition_mask(asg::ConditionTask::Generation, 8, gen).sum().item<float>(), 0.f);
  }
  EXPECT_EQ(image_frames.size(), 8u);
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
  auto ddim_values = asg::default_params("s", catalog().find("sampler", "ddim")->factory.params).values();
  ddim_values["steps"] = int64_t{3};
  auto ddim = catalog().create<asg::Sampler>("ddim", asg::Params("s", ddim_values));
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

TEST(BatchSource, StreamsTarShardsAndResumesMidEpoch) {
  auto values = asg::default_params("wds", catalog().find("dataset", "webdataset")->factory.params).values();
  values["shards"] = std::vector<std::string>{(asg::testing::conformance_corpus() / "shard-*.tar").string()};
  values["height"] = values["width"] = int64_t{8};
  values["frames"] = int64_t{4};
  values["split_fractions"] = std::vector<double>{1.0, 0.0};
  values["shuffle_buffer"] = int64_t{3};
  auto shards = catalog().create<asg::Dataset>("webdataset", asg::Params("wds", values), asg::DatasetContext{});
  ASSERT_TRUE(shards->info().sequential);
  const int64_t train = shards->size(asg::Split::Train);
  ASSERT_EQ(train, 8);
  asg::BatchSource inline_source(shards, loader(3, 21, 0));
  auto all = take(inline_source, 9);  // 27 samples: more than three epochs of 8
  EXPECT_EQ(all[0].after.epoch, 0);
  EXPECT_EQ(all[0].after.cursor, 3);
  EXPECT_EQ(all[2].after.epoch, 1);  // 2 from epoch 0, then 1 from epoch 1
  EXPECT_EQ(all[2].after.cursor, 1);
  // Each epoch holds every train sample once.
  std::multiset<std::string> first_epoch(all[0].captions.begin(), all[0].captions.end());
  first_epoch.insert(all[1].captions.begin(), all[1].captions.end());
  first_epoch.insert(all[2].captions.begin(), all[2].captions.begin() + 2);
  EXPECT_EQ(std::set<std::string>(first_epoch.begin(), first_epoch.end()).size(), 8u);
  // Threads change nothing; a saved position continues exactly.
  asg::BatchSource threaded(shards, loader(3, 21, 2, 3));
  auto same = take(threaded, 9);
  for (int i = 0; i < 9; ++i) {
    EXPECT_TRUE(torch::equal(same[i].x0, all[i].x0)) << i;
    EXPECT_EQ(same[i].captions, all[i].captions) << i;
  }
  auto saved = all[2].after.to_checkpoint();
  EXPECT_TRUE(saved.count("data.epoch"));
  asg::BatchSource resumed(shards, loader(3, 21, 2, 2), asg::DataPosition::from_checkpoint(saved, "ckpt.pt"));
  for (int i = 3; i < 9; ++i) {
    auto batch = resumed.next();
    EXPECT_TRUE(torch::equal(batch.x0, all[i].x0)) << i;
    EXPECT_EQ(batch.after.epoch, all[i].after.epoch);
    EXPECT_EQ(batch.after.cursor, all[i].after.cursor);
  }
  // A random-access position cannot resume a stream.
  auto random_access = inline_source.next().after;
  random_access.epoch = -1;
  random_access.epoch_rng = torch::zeros({5008}, torch::kUInt8);
  EXPECT_THROW(asg::BatchSource(shards, loader(3, 21, 0), random_access), asg::Error);
}

namespace {

// A registry and runs folder of its own, and the quickstart experiment to record.
class RunRecorderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = asg::testing::make_temp_dir("recorder");
    options.registry_path = dir / "registry.sqlite";
    options.runs_dir = dir / "runs";
    asg::PluginCatalog catalog;
    exp = asg::load_experiment(asg::testing::source_dir() / "experiments" / "quickstart.toml", {}, catalog);
  }
  void TearDown() override { fs::remove_all(dir); }
  fs::path dir;
  asg::RunOptions options;
  asg::Experiment exp;
};

}  // namespace

TEST_F(RunRecorderTest, RecordsTheRunItsSamplesAndItsEnd) {
  asg::RuntimeSettings settings;
  std::string id;
  {
    asg::RunRecorder recorder(exp, options, settings);
    id = recorder.run_id();
    EXPECT_TRUE(fs::exists(recorder.run_dir() / "config.toml"));
    asg::SampleWriter samples(recorder, /*save_gifs=*/2, /*gif_scale=*/2, /*fps=*/8);
    for (int64_t i = 0; i < 3; ++i) samples.add(i, torch::rand({4, 4, 8, 8}), i == 0 ? "a red star" : "");
    samples.finish();
    recorder.metric("train/loss", 1, 0.5);
    recorder.finish({{"caption_accuracy", 0.75, true}});
  }
  asg::Registry registry(options.registry_path);
  auto run = registry.find_run(id);
  ASSERT_TRUE(run);
  EXPECT_EQ(run->status, asg::RunStatus::Finished);
  EXPECT_EQ(run->method_hash, exp.method_hash);
  EXPECT_EQ(run->protocol_hash, exp.protocol_hash);
  EXPECT_EQ(run->protocol_json, exp.protocol_json);
  EXPECT_NE(run->host_json.find("\"asg_version\""), std::string::npos) << run->host_json;
  std::vector<std::string> artifacts;
  for (const auto& a : registry.artifacts(id)) artifacts.push_back(a.path);
  std::sort(artifacts.begin(), artifacts.end());
  EXPECT_EQ(artifacts, (std::vector<std::string>{"config.toml", "metrics.json", "samples/0000_a-red-star.gif",
                                                 "samples/0001_unconditional.gif", "samples/captions.txt", "samples/grid.gif"}));
  EXPECT_EQ(registry.metric_history(id, "train/loss").size(), 1u);
  EXPECT_EQ(registry.plugins(id).size(), exp.slots.size());
}

TEST_F(RunRecorderTest, AnInterruptEndsTheRunKilledAndAnyOtherErrorFailed) {
  std::string killed, failed;
  {
    asg::RunRecorder a(exp, options, {});
    killed = a.run_id();
    a.metric("train/loss", 25, 0.4);  // pending when the interrupt comes: kept
    a.fail(asg::Error(asg::ErrorKind::Interrupted, "interrupted by SIGINT"));
    asg::RunRecorder b(exp, options, {});
    failed = b.run_id();
    b.fail(asg::data_error("/data/x.gif: broken"));
  }
  asg::Registry registry(options.registry_path);
  EXPECT_EQ(registry.find_run(killed)->status, asg::RunStatus::Killed);
  EXPECT_EQ(registry.metric_history(killed, "train/loss").size(), 1u);
  EXPECT_EQ(registry.find_run(failed)->status, asg::RunStatus::Failed);
  EXPECT_EQ(registry.find_run(failed)->error, "/data/x.gif: broken");
}

// The statistics cache key: whatever changes the real side's numbers changes the key (the dataset's files
// by content, the metric's parameters, the split, the number of real clips); what does not (the seed, the
// model) leaves it.
TEST(StatisticsCache, TheKeyFollowsEverythingTheRealSideDependsOn) {
  const auto dir = asg::testing::make_temp_dir("cache-key");
  fs::copy(asg::testing::conformance_corpus(), dir / "corpus", fs::copy_options::recursive);
  std::ofstream(dir / "e.toml") << fmt::format(R"(
base = ["{}"]
[dataset]
__replace__ = true
plugin = "sticker_files"
manifest = "corpus/manifest.jsonl"
[[metrics]]
plugin = "frechet_pixel"
[benchmark]
name = ""
rank_by = ""
)",
                                               (asg::testing::source_dir() / "experiments" / "quickstart.toml").string());
  asg::PluginCatalog catalog = asg::PluginCatalog::discover();
  auto key = [&](std::vector<std::string> overrides = {}, int64_t num_real = 8) {
    const asg::Experiment exp = asg::load_experiment(dir / "e.toml", overrides, catalog);
    return asg::StatisticsCache::key_for(exp, *exp.metric_slots()[0], num_real);
  };
  const std::string base = key();
  EXPECT_EQ(key({"runtime.seed=5", "train.steps=3"}), base);  // the model is not the real side
  EXPECT_NE(key({}, 9), base);
  EXPECT_NE(key({"eval.split=\"validation\""}), base);
  EXPECT_NE(key({"metrics.0.pool=2"}), base);
  EXPECT_NE(key({"metrics.0.covariance=\"biased\""}), base);
  // The same manifest path with other content: another key.
  std::ofstream(dir / "corpus" / "manifest.jsonl", std::ios::app) << "\n";
  EXPECT_NE(key(), base);
  fs::remove_all(dir);
}

// Metrics are built again after training from the libraries opened before it: a plugin file rebuilt or
// replaced while a run trains cannot change its evaluation or fail it at the end.
TEST(BuildMetrics, AfterTrainingUseTheLibrariesCheckedBeforeIt) {
  asg::PluginCatalog catalog = asg::PluginCatalog::discover();
  asg::Experiment exp =
      asg::load_experiment(asg::testing::source_dir() / "experiments" / "quickstart.toml", {"train.steps=0"}, catalog);
  // The second metric (frechet_pixel) from a copy of its library, which the test can replace.
  const auto dir = asg::testing::make_temp_dir("metric-libraries");
  asg::PluginSlot* slot = nullptr;
  for (auto& s : exp.slots)
    if (s.section == "metrics[1]") slot = &s;
  ASSERT_NE(slot, nullptr);
  asg::PluginRecord copy = *slot->record;
  copy.library_path = dir / copy.library_path.filename();
  fs::copy_file(slot->record->library_path, copy.library_path);
  slot->record = std::make_shared<const asg::PluginRecord>(copy);
  asg::BuiltExperiment built = asg::build_experiment(exp, asg::noise_schedule(exp), 0);
  // Replaced by another library while the run "trains" (a new file, as a linker writes it: the mapped one
  // stays intact).
  fs::remove(copy.library_path);
  fs::copy_file(asg::testing::plugin_dir() / "asg_metric_motion.so", copy.library_path);
  EXPECT_THROW(asg::build_metrics(exp, built.info, torch::kCPU, 0), asg::Error);  // opened now: refused
  const auto metrics = asg::build_metrics(exp, built.info, torch::kCPU, 0, built.metric_libraries);
  ASSERT_EQ(metrics.size(), 2u);
  EXPECT_TRUE(metrics[1].second->uses_real_set());  // frechet_pixel, from the library checked before
  fs::remove_all(dir);
}
