// The conformance suites of the dataset, text encoder, backbone, autoencoder, image encoder, sampler and metric kinds (the temporal
// kind's is temporal_conformance_test.cpp): every plugin of the kind in the build, held to the contract
// written at the top of its kind header.
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <set>
#include <sstream>
#include <thread>

#include "asg/kinds/autoencoder.h"
#include "asg/kinds/backbone.h"
#include "asg/kinds/dataset.h"
#include "asg/kinds/image_encoder.h"
#include "asg/kinds/metric.h"
#include "asg/kinds/sampler.h"
#include "asg/kinds/text_encoder.h"
#include "asg/vocabulary.h"
#include "asg/stages/evaluator.h"
#include "asg/trainer.h"
#include "conformance.h"
#include "test_paths.h"

using asg::testing::build_catalog;
using asg::testing::defaults_of;

namespace {

// ---- dataset ---------------------------------------------------------------------------------------

class DatasetConformance : public ::testing::TestWithParam<std::string> {
 protected:
  std::shared_ptr<asg::Dataset> make() {
    std::string missing;
    auto params = asg::testing::conformance_params("dataset", GetParam(), &missing);
    if (!params) throw std::runtime_error("no conformance parameters for required '" + missing + "'");
    return build_catalog().create<asg::Dataset>(GetParam(), *params);
  }
};

TEST_P(DatasetConformance, StickersHaveTheAnnouncedShapeRangeAndLabels) {
  auto data = make();
  const asg::DatasetInfo info = data->info();
  ASSERT_GT(info.frames, 0);
  for (asg::Split split : {asg::Split::Train, asg::Split::Validation, asg::Split::Test}) {
    const int64_t n = std::min<int64_t>(data->size(split), 3);
    for (int64_t i = 0; i < n; ++i) {
      SCOPED_TRACE(std::string(asg::split_name(split)) + " " + std::to_string(i));
      asg::Sticker s = data->get(split, i);
      EXPECT_EQ(s.frames.sizes(), (std::vector<int64_t>{info.frames, 4, info.height, info.width}));
      EXPECT_EQ(s.frames.scalar_type(), torch::kFloat32);
      EXPECT_TRUE(s.frames.device().is_cpu());
      EXPECT_GE(s.frames.min().item<float>(), 0.0f);
      EXPECT_LE(s.frames.max().item<float>(), 1.0f);
      EXPECT_EQ(static_cast<int64_t>(s.frame_durations_ms.size()), info.frames);
      if (s.frame_valid.defined()) {
        EXPECT_EQ(s.frame_valid.sizes(), (std::vector<int64_t>{info.frames}));
        EXPECT_GE(s.frame_valid.sum().item<float>(), 1.0f) << "at least one real frame";
      }
      for (int64_t t = 0; t < info.frames; ++t) {  // every real frame is shown for some time
        if (!s.frame_valid.defined() || s.frame_valid[t].item<float>() > 0) {
          EXPECT_GT(s.frame_durations_ms[t], 0) << t;
        }
      }
      EXPECT_FALSE(s.id.empty());
      for (const auto& key : info.label_keys) EXPECT_TRUE(s.labels.count(key)) << "label '" << key << "' missing";
    }
  }
}

TEST_P(DatasetConformance, StreamsEverySampleOncePerEpochSplitAcrossReaders) {
  auto data = make();
  const int64_t n = data->size(asg::Split::Train);
  if (n > 1000000) GTEST_SKIP() << "train split of " << n << " samples: too many to stream here";
  auto ids = [&](asg::StreamSlice slice, int64_t epoch, uint64_t seed) {
    std::vector<std::string> out;
    auto stream = data->open_stream(asg::Split::Train, slice, epoch, seed);
    while (auto item = stream->next()) out.push_back(item->id);
    return out;
  };
  const auto whole = ids({}, 0, 7);
  EXPECT_EQ(static_cast<int64_t>(whole.size()), n);
  EXPECT_EQ(static_cast<int64_t>(std::set<std::string>(whole.begin(), whole.end()).size()), n) << "an id twice";
  EXPECT_EQ(ids({}, 0, 7), whole) << "the order depends only on (seed, epoch)";
  std::set<std::string> together;
  size_t total = 0;
  for (int64_t r = 0; r < 3; ++r) {
    const auto part = ids(asg::StreamSlice{r, 3, 0, 1}, 0, 7);
    together.insert(part.begin(), part.end());
    total += part.size();
  }
  EXPECT_EQ(total, whole.size()) << "three readers read each sample once between them";
  EXPECT_EQ(together, std::set<std::string>(whole.begin(), whole.end()));
  // An item decodes to a sticker of the announced shape.
  auto stream = data->open_stream(asg::Split::Train, {}, 1, 3);
  if (auto item = stream->next()) {
    const auto info = data->info();
    EXPECT_EQ(item->decode().frames.sizes(), (std::vector<int64_t>{info.frames, 4, info.height, info.width}));
  }
}

TEST_P(DatasetConformance, GetIsDeterministicAndSafeFromSeveralThreads) {
  auto data = make();
  const int64_t n = std::min<int64_t>(data->size(asg::Split::Train), 8);
  std::vector<asg::Sticker> first;
  for (int64_t i = 0; i < n; ++i) first.push_back(data->get(asg::Split::Train, i));
  std::vector<std::vector<asg::Sticker>> seen(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int64_t i = n - 1; i >= 0; --i) seen[t].push_back(data->get(asg::Split::Train, i));
    });
  for (auto& th : threads) th.join();
  for (int t = 0; t < 4; ++t)
    for (int64_t i = 0; i < n; ++i) {
      const asg::Sticker& a = first[i];
      const asg::Sticker& b = seen[t][n - 1 - i];
      EXPECT_EQ(a.id, b.id);
      EXPECT_EQ(a.caption, b.caption);
      EXPECT_TRUE(torch::equal(a.frames, b.frames)) << a.id;
    }
}

// Every parameter and buffer of `from` into `to`, through a serialised archive as a checkpoint would.
void copy_weights(torch::nn::Module& from, torch::nn::Module& to) {
  std::stringstream archive;
  {
    torch::serialize::OutputArchive out;
    from.save(out);
    out.save_to(archive);
  }
  torch::serialize::InputArchive in;
  in.load_from(archive);
  to.load(in);
}

// ---- text encoder ----------------------------------------------------------------------------------

class TextEncoderConformance : public ::testing::TestWithParam<std::string> {};

// The encoder as the suite builds it (see conformance_params); nullptr after skipping when it needs a
// parameter the suite cannot supply.
std::shared_ptr<asg::TextEncoder> conformance_text_encoder(const std::string& name, std::string* missing) {
  auto params = asg::testing::conformance_params("text_encoder", name, missing);
  return params ? build_catalog().create<asg::TextEncoder>(name, *params) : nullptr;
}

TEST_P(TextEncoderConformance, EncodesAnyCaptionsIntoTheAnnouncedShapes) {
  std::string missing;
  auto enc = conformance_text_encoder(GetParam(), &missing);
  if (!enc) GTEST_SKIP() << "needs '" << missing << "', which the suite cannot supply";
  const std::vector<std::string> captions = {"a red star moving left", "", "ünïcode and    spaces, punctuation!"};
  asg::TextEmbedding e = enc->encode(captions);
  const int64_t d = enc->dim();
  ASSERT_EQ(e.tokens.dim(), 3);
  EXPECT_EQ(e.tokens.size(0), 3);
  EXPECT_EQ(e.tokens.size(2), d);
  EXPECT_EQ(e.mask.sizes(), (std::vector<int64_t>{3, e.tokens.size(1)}));
  EXPECT_EQ(e.mask.scalar_type(), torch::kBool);
  EXPECT_EQ(e.pooled.sizes(), (std::vector<int64_t>{3, d}));
  EXPECT_TRUE(torch::isfinite(e.tokens).all().item<bool>());
  EXPECT_TRUE(torch::isfinite(e.pooled).all().item<bool>());
  // Deterministic, and a caption's encoding does not depend on the others in its batch.
  asg::TextEmbedding alone = enc->encode({captions[0]});
  // (to float rounding: batched kernels may sum in another order)
  EXPECT_TRUE(torch::allclose(alone.pooled[0], e.pooled[0], 1e-5, 1e-5));
}

TEST_P(TextEncoderConformance, TrainableEncodersPassGradients) {
  std::string missing;
  auto enc = conformance_text_encoder(GetParam(), &missing);
  if (!enc) GTEST_SKIP() << "needs '" << missing << "', which the suite cannot supply";
  if (enc->frozen() || enc->parameters().empty()) GTEST_SKIP() << "frozen: nothing to train";
  asg::TextEmbedding e = enc->encode({"a blue circle moving up", "a green square"});
  (e.tokens.sum() + e.pooled.sum()).backward();
  bool any = false;
  for (const auto& p : enc->parameters()) any = any || (p.grad().defined() && p.grad().abs().sum().item<double>() > 0);
  EXPECT_TRUE(any);
}

// ---- backbone --------------------------------------------------------------------------------------

class BackboneConformance : public ::testing::TestWithParam<std::string> {
 protected:
  // With `temporal` at every insertion point (temporal_conv unless said otherwise).
  std::shared_ptr<asg::Backbone> make(int64_t* insertion_points = nullptr, const std::string& temporal = "temporal_conv",
                                      int64_t condition_channels = 0) {
    text_ = build_catalog().create<asg::TextEncoder>("word_embedding", defaults_of("text_encoder", "word_embedding"));
    asg::BackboneContext ctx;
    ctx.condition_channels = condition_channels;
    ctx.frames = 4;
    ctx.height = ctx.width = 16;
    ctx.text_dim = text_->dim();
    ctx.make_temporal = [insertion_points, temporal](const asg::TemporalContext& tc) {
      // Points are numbered 0, 1, 2, ... in the order the backbone asks for them.
      if (insertion_points) {
        EXPECT_EQ(tc.index, (*insertion_points)++) << tc.name;
      }
      return build_catalog().create<asg::TemporalModule>(temporal, defaults_of("temporal", temporal), tc);
    };
    return build_catalog().create<asg::Backbone>(GetParam(), defaults_of("backbone", GetParam()), ctx);
  }
  std::shared_ptr<asg::TextEncoder> text_;
};

TEST_P(BackboneConformance, PredictsTheInputShapeFromNoisyClipsTimestepsAndText) {
  torch::manual_seed(0);
  int64_t points = 0;
  auto net = make(&points);
  EXPECT_GT(points, 0) << "the backbone never asked for the experiment's temporal module";
  auto x = torch::randn({2, 4, 4, 16, 16});
  auto t = torch::tensor({10.0f, 900.0f});
  auto y = net->forward(x, t, text_->encode({"a red star", ""}));
  EXPECT_EQ(y.sizes(), x.sizes());
  EXPECT_TRUE(torch::isfinite(y).all().item<bool>());
  y.square().mean().backward();
  int64_t reached = 0, total = 0;
  for (const auto& p : net->parameters()) {
    ++total;
    reached += p.grad().defined() ? 1 : 0;
  }
  EXPECT_EQ(reached, total) << "parameters outside the graph";
}

TEST_P(BackboneConformance, IsDeterministicForAGivenSeed) {
  torch::manual_seed(5);
  auto a = make();
  torch::manual_seed(5);
  auto b = make();
  a->eval();
  b->eval();
  auto x = torch::randn({1, 4, 4, 16, 16});
  auto t = torch::tensor({500.0f});
  auto text = text_->encode({"a blue moon"});
  EXPECT_TRUE(torch::equal(a->forward(x, t, text), b->forward(x, t, text)));
}

TEST_P(BackboneConformance, EveryTemporalModulePlugsIn) {
  // Every temporal plugin in the build at every insertion point, with its defaults: the backbone builds
  // and keeps the clip's shape, with finite values.
  auto x = torch::randn({1, 4, 4, 16, 16});
  auto t = torch::tensor({300.0f});
  for (const std::string& temporal : build_catalog().names("temporal")) {
    torch::manual_seed(7);
    std::shared_ptr<asg::Backbone> net;
    ASSERT_NO_THROW(net = make(nullptr, temporal)) << temporal;
    net->eval();
    torch::NoGradGuard no_grad;
    auto y = net->forward(x, t, text_->encode({"a red star"}));
    EXPECT_EQ(y.sizes(), x.sizes()) << temporal;
    EXPECT_TRUE(torch::isfinite(y).all().item<bool>()) << temporal;
  }
}

TEST_P(BackboneConformance, TakesImageConditioningChannelsAndPredictsOnlyTheClip) {
  // [conditioning]: the clip's 4 channels, then 4 condition channels and the mask; the output is the clip's.
  torch::manual_seed(3);
  auto net = make(nullptr, "temporal_conv", 5);
  auto x = torch::randn({2, 9, 4, 16, 16});
  auto y = net->forward(x, torch::tensor({10.0f, 900.0f}), text_->encode({"a red star", ""}));
  EXPECT_EQ(y.sizes(), torch::IntArrayRef({2, 4, 4, 16, 16}));
  EXPECT_TRUE(torch::isfinite(y).all().item<bool>());
}

TEST_P(BackboneConformance, SavesAndLoadsItsWeights) {
  // Weights (and buffers) saved from one instance and loaded into another made with another seed give the
  // same output.
  torch::manual_seed(11);
  auto a = make();
  torch::manual_seed(12);
  auto b = make();
  a->eval();
  b->eval();
  auto x = torch::randn({1, 4, 4, 16, 16});
  auto t = torch::tensor({250.0f});
  auto text = text_->encode({"a green heart"});
  torch::NoGradGuard no_grad;
  for (auto& p : a->parameters()) p.add_(torch::randn_like(p) * 0.05);  // off zero-initialised output layers
  ASSERT_FALSE(torch::equal(a->forward(x, t, text), b->forward(x, t, text)));
  copy_weights(*a, *b);
  EXPECT_TRUE(torch::equal(a->forward(x, t, text), b->forward(x, t, text)));
}

// ---- autoencoder -----------------------------------------------------------------------------------

class AutoencoderConformance : public ::testing::TestWithParam<std::string> {
 protected:
  std::shared_ptr<asg::Autoencoder> make() {
    std::string missing;
    auto params = asg::testing::conformance_params("autoencoder", GetParam(), &missing);
    if (!params) throw std::runtime_error("needs " + missing);
    return build_catalog().create<asg::Autoencoder>(GetParam(), *params, asg::AutoencoderContext{4, 4, 16, 16});
  }
};

TEST_P(AutoencoderConformance, CodesClipsToTheAnnouncedLatentAndBackDeterministically) {
  torch::manual_seed(0);
  auto ae = make();
  ae->eval();
  const asg::LatentShape latent = ae->latent();
  EXPECT_EQ(latent.frames, 4);
  EXPECT_GE(latent.scaling_factor, 0.0);
  auto x = torch::rand({2, 4, 4, 16, 16}) * 2 - 1;
  torch::NoGradGuard no_grad;
  auto z = ae->encode(x);
  EXPECT_EQ(z.sizes(), torch::IntArrayRef({2, latent.channels, latent.frames, latent.height, latent.width}));
  EXPECT_TRUE(torch::isfinite(z).all().item<bool>());
  EXPECT_TRUE(torch::equal(ae->encode(x), z));
  EXPECT_TRUE(torch::allclose(ae->encode(x.narrow(0, 1, 1)), z.narrow(0, 1, 1), 1e-5, 1e-5));  // batch-independent
  auto back = ae->decode(z);
  EXPECT_EQ(back.sizes(), x.sizes());
  EXPECT_TRUE(torch::isfinite(back).all().item<bool>());
}

TEST_P(AutoencoderConformance, TrainableAutoencodersPassGradientsToEveryParameter) {
  torch::manual_seed(1);
  auto ae = make();
  if (ae->training().steps == 0) GTEST_SKIP() << "frozen: nothing to train";
  auto loss = ae->training_loss(torch::rand({2, 4, 4, 16, 16}) * 2 - 1);
  ASSERT_EQ(loss.dim(), 0);
  EXPECT_TRUE(std::isfinite(loss.item<double>()));
  loss.backward();
  for (const auto& p : ae->named_parameters()) EXPECT_TRUE(p.value().grad().defined()) << p.key() << " outside the graph";
}

TEST_P(AutoencoderConformance, SavesAndLoadsItsWeights) {
  torch::manual_seed(2);
  auto a = make();
  torch::manual_seed(3);
  auto b = make();
  if (a->parameters().empty()) GTEST_SKIP() << "no parameters of its own (the weights live in its file)";
  a->eval();
  b->eval();
  auto x = torch::rand({1, 4, 4, 16, 16}) * 2 - 1;
  torch::NoGradGuard no_grad;
  ASSERT_FALSE(torch::equal(a->encode(x), b->encode(x)));
  copy_weights(*a, *b);
  EXPECT_TRUE(torch::equal(a->encode(x), b->encode(x)));
  EXPECT_TRUE(torch::equal(a->decode(a->encode(x)), b->decode(b->encode(x))));
}

// ---- sampler ---------------------------------------------------------------------------------------

// The exact denoiser of data that is one point x* (every clip the same): its x0 prediction is x* at
// every noise level, whatever the parameterisation. A sampler following the reverse process must land
// on x*.
class PointMassDenoiser final : public asg::Denoiser {
 public:
  PointMassDenoiser(asg::NoiseSchedule schedule, torch::Tensor point) : schedule_(std::move(schedule)), point_(std::move(point)) {}
  torch::Tensor predict(const torch::Tensor& x_t, int64_t t, double) override {
    ++calls;
    const double abar = schedule_.alphas_cumprod()[t].item<double>();
    auto x0 = point_.expand_as(x_t);
    auto eps = (x_t - std::sqrt(abar) * x0) / std::sqrt(1 - abar);
    return schedule_.target(x0, eps, torch::full({x_t.size(0)}, t, torch::kLong));
  }
  const asg::NoiseSchedule& schedule() const override { return schedule_; }
  int64_t calls = 0;

 private:
  asg::NoiseSchedule schedule_;
  torch::Tensor point_;
};

class SamplerConformance : public ::testing::TestWithParam<std::string> {};

TEST_P(SamplerConformance, LandsOnThePointOfAPointMassUnderEveryParameterisation) {
  auto sampler = build_catalog().create<asg::Sampler>(GetParam(), defaults_of("sampler", GetParam()));
  const auto point = torch::full({1, 4, 2, 4, 4}, 0.3);
  for (auto prediction : {asg::Prediction::Epsilon, asg::Prediction::V, asg::Prediction::X0}) {
    SCOPED_TRACE(asg::prediction_names().name(prediction));
    PointMassDenoiser model(asg::NoiseSchedule("cosine", 1000, prediction), point);
    at::Generator gen = at::detail::createCPUGenerator(1);
    auto x_T = torch::randn({3, 4, 2, 4, 4}, gen);
    int64_t reported = 0;
    auto x0 = sampler->sample(model, x_T, gen, [&](int64_t, int64_t) { ++reported; });
    EXPECT_EQ(x0.sizes(), x_T.sizes());
    EXPECT_LT((x0 - point).abs().max().item<double>(), 1e-3);
    EXPECT_EQ(model.calls, sampler->num_steps()) << "num_steps() must count the denoiser evaluations";
    EXPECT_EQ(reported, sampler->num_steps());
  }
}

TEST_P(SamplerConformance, IsDeterministicForAGivenGenerator) {
  auto sampler = build_catalog().create<asg::Sampler>(GetParam(), defaults_of("sampler", GetParam()));
  PointMassDenoiser model(asg::NoiseSchedule("linear", 100, asg::Prediction::Epsilon), torch::zeros({1, 4, 2, 4, 4}));
  auto run = [&] {
    at::Generator gen = at::detail::createCPUGenerator(9);
    return sampler->sample(model, torch::randn({2, 4, 2, 4, 4}, gen), gen, [](int64_t, int64_t) {});
  };
  EXPECT_TRUE(torch::equal(run(), run()));
}

// ---- metric ----------------------------------------------------------------------------------------

// The build's datasets that satisfy a metric's declared requirements: the metric is tested on their data.
std::shared_ptr<asg::Dataset> dataset_for(const asg::Requirements& needs, asg::DatasetInfo* info) {
  for (const auto& name : asg::testing::plugins_of_kind("dataset")) {
    auto params = asg::testing::conformance_params("dataset", name);
    if (!params) continue;
    auto data = build_catalog().create<asg::Dataset>(name, *params);
    *info = data->info();
    bool ok = info->frames >= needs.min_frames;
    for (const auto& key : needs.label_keys)
      ok = ok && std::find(info->label_keys.begin(), info->label_keys.end(), key) != info->label_keys.end();
    if (!needs.vocabulary.name.empty()) ok = ok && asg::vocabulary_satisfies(info->vocabulary, needs.vocabulary);
    if (ok) return data;
  }
  return nullptr;
}

class MetricConformance : public ::testing::TestWithParam<std::string> {};

// The evaluation set of the metric conformance tests: 8 stickers of a dataset that satisfies the metric's
// requirements, and generated clips near them. False when no dataset in the build does.
bool metric_inputs(const std::string& name, asg::DatasetInfo* info, std::vector<asg::Sticker>* refs, torch::Tensor* generated) {
  if (!asg::testing::conformance_params("metric", name)) return false;  // a required parameter without a fixture
  auto data = dataset_for(build_catalog().find("metric", name)->factory.requirements, info);
  if (!data) return false;
  for (int64_t i = 0; i < 8; ++i) refs->push_back(data->get(asg::Split::Test, i));
  torch::manual_seed(2);
  *generated = (asg::stack_frames(*refs) + 0.05 * torch::randn({8, info->frames, 4, info->height, info->width})).clamp(0, 1);
  return true;
}

std::shared_ptr<asg::Metric> make_metric(const std::string& name, const asg::DatasetInfo& info) {
  return build_catalog().create<asg::Metric>(name, *asg::testing::conformance_params("metric", name),
                                             asg::MetricContext{info, "conformance"});
}

std::vector<asg::Sticker> part(const std::vector<asg::Sticker>& v, size_t from, size_t to) {
  return std::vector<asg::Sticker>(v.begin() + static_cast<std::ptrdiff_t>(from), v.begin() + static_cast<std::ptrdiff_t>(to));
}

// One instance fed every batch, as a single-process evaluation does.
std::vector<asg::MetricValue> one_instance(const std::string& name, const asg::DatasetInfo& info,
                                           const std::vector<asg::Sticker>& refs, const torch::Tensor& generated) {
  auto metric = make_metric(name, info);
  if (metric->uses_real_set()) {
    metric->update_real(part(refs, 0, 3), 0);
    metric->update_real(part(refs, 3, 8), 3);
  }
  metric->update(generated.slice(0, 0, 5), part(refs, 0, 5), 0);
  metric->update(generated.slice(0, 5), part(refs, 5, 8), 5);
  return metric->result();
}

void expect_same_values(const std::vector<asg::MetricValue>& a, const std::vector<asg::MetricValue>& b, double tolerance) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    SCOPED_TRACE(a[i].key);
    EXPECT_EQ(a[i].key, b[i].key);
    EXPECT_NEAR(a[i].value, b[i].value, tolerance * std::max(1.0, std::abs(a[i].value)));
    EXPECT_EQ(a[i].higher_is_better, b[i].higher_is_better);
  }
}

TEST_P(MetricConformance, ReportsItsOwnKeysDeterministicallyAndFinitely) {
  const std::string name = GetParam();
  asg::DatasetInfo info;
  std::vector<asg::Sticker> refs;
  torch::Tensor generated;
  if (!metric_inputs(name, &info, &refs, &generated)) GTEST_SKIP() << "no dataset in the build satisfies its requirements, or a required parameter has no fixture";
  auto first = one_instance(name, info, refs, generated), second = one_instance(name, info, refs, generated);
  ASSERT_FALSE(first.empty());
  for (const auto& v : first) {
    SCOPED_TRACE(v.key);
    EXPECT_TRUE(v.key == name || v.key.rfind(name + ".", 0) == 0) << "keys must be '<metric>[.<part>]'";
    EXPECT_TRUE(std::isfinite(v.value));
  }
  expect_same_values(first, second, 0);
}

// Distributed evaluation: ranks evaluate parts of the generated set, one merges the others' state(); the
// result equals one instance fed everything (up to float rounding).
TEST_P(MetricConformance, MergedStatesGiveTheResultOfOneInstance) {
  const std::string name = GetParam();
  asg::DatasetInfo info;
  std::vector<asg::Sticker> refs;
  torch::Tensor generated;
  if (!metric_inputs(name, &info, &refs, &generated)) GTEST_SKIP() << "no dataset in the build satisfies its requirements, or a required parameter has no fixture";
  const auto expected = one_instance(name, info, refs, generated);
  std::vector<std::shared_ptr<asg::Metric>> ranks;
  for (int r = 0; r < 3; ++r) {
    ranks.push_back(make_metric(name, info));
    if (ranks.back()->uses_real_set()) ranks.back()->update_real(refs, 0);
  }
  ranks[0]->update(generated.slice(0, 0, 2), part(refs, 0, 2), 0);
  ranks[1]->update(generated.slice(0, 2, 7), part(refs, 2, 7), 2);
  ranks[2]->update(generated.slice(0, 7), part(refs, 7, 8), 7);
  ranks[0]->merge(ranks[1]->state());
  ranks[0]->merge(ranks[2]->state());
  // 1e-6: with fewer clips than feature dimensions a Fréchet distance takes square roots of eigenvalues that
  // are zero up to rounding, which turns 1e-16 differences in summation order into ~1e-8 (the bar the
  // scipy cross-check uses too).
  constexpr double kRounding = 1e-6;
  expect_same_values(ranks[0]->result(), expected, kRounding);
  // A rank that saw nothing adds nothing.
  auto empty = make_metric(name, info);
  auto whole = make_metric(name, info);
  if (whole->uses_real_set()) whole->update_real(refs, 0);
  whole->update(generated, refs, 0);
  whole->merge(empty->state());
  expect_same_values(whole->result(), expected, kRounding);
}

// The statistics cache: the real side restored from real_state() (through the archive format the cache
// writes) gives the same result as computing it.
TEST_P(MetricConformance, ARealSideRestoredFromItsStateGivesTheSameResult) {
  const std::string name = GetParam();
  asg::DatasetInfo info;
  std::vector<asg::Sticker> refs;
  torch::Tensor generated;
  if (!metric_inputs(name, &info, &refs, &generated)) GTEST_SKIP() << "no dataset in the build satisfies its requirements, or a required parameter has no fixture";
  auto computed = make_metric(name, info);
  if (!computed->uses_real_set()) GTEST_SKIP() << name << " uses no real set";
  computed->update_real(refs, 0);
  const auto dir = asg::testing::make_temp_dir("metric-cache");
  asg::StatisticsCache cache(dir);
  cache.store("k", computed->real_state(), "{}");
  auto restored = make_metric(name, info);
  const auto state = cache.load("k");
  ASSERT_TRUE(state.has_value());
  restored->load_real_state(*state);
  computed->update(generated, refs, 0);
  restored->update(generated, refs, 0);
  expect_same_values(restored->result(), computed->result(), 0);
  std::filesystem::remove_all(dir);
}

// ---- image encoder ---------------------------------------------------------------------------------

class ImageEncoderConformance : public ::testing::TestWithParam<std::string> {
 protected:
  std::shared_ptr<asg::ImageEncoder> make() {
    std::string missing;
    auto params = asg::testing::conformance_params("image_encoder", GetParam(), &missing);
    if (!params) throw std::runtime_error("needs " + missing);
    return build_catalog().create<asg::ImageEncoder>(GetParam(), *params, asg::NoContext{});
  }
};

TEST_P(ImageEncoderConformance, EncodesFramesOfAnySizeDeterministicallyFrozenAndBatchIndependent) {
  torch::manual_seed(0);
  auto encoder = make();
  for (const auto& p : encoder->parameters()) EXPECT_FALSE(p.requires_grad()) << "an image encoder is frozen";
  for (const auto& [h, w] : std::vector<std::pair<int64_t, int64_t>>{{16, 16}, {24, 18}, {18, 30}}) {
    SCOPED_TRACE(std::to_string(h) + "x" + std::to_string(w));
    auto frames = torch::rand({3, 4, h, w}) * 2 - 1;
    auto e = encoder->encode(frames);
    EXPECT_EQ(e.sizes(), torch::IntArrayRef({3, encoder->dim()}));
    EXPECT_TRUE(torch::isfinite(e).all().item<bool>());
    EXPECT_TRUE(torch::equal(encoder->encode(frames), e));
    EXPECT_TRUE(torch::allclose(encoder->encode(frames.narrow(0, 2, 1)), e.narrow(0, 2, 1), 1e-5, 1e-5));
    EXPECT_FALSE(torch::allclose(e[0], e[1])) << "different frames, the same embedding";
  }
}

}  // namespace

INSTANTIATE_TEST_SUITE_P(Build, ImageEncoderConformance, ::testing::ValuesIn(asg::testing::plugins_of_kind("image_encoder")),
                         asg::testing::plugin_test_name);
INSTANTIATE_TEST_SUITE_P(Build, DatasetConformance, ::testing::ValuesIn(asg::testing::plugins_of_kind("dataset")),
                         asg::testing::plugin_test_name);
INSTANTIATE_TEST_SUITE_P(Build, TextEncoderConformance, ::testing::ValuesIn(asg::testing::plugins_of_kind("text_encoder")),
                         asg::testing::plugin_test_name);
INSTANTIATE_TEST_SUITE_P(Build, BackboneConformance, ::testing::ValuesIn(asg::testing::plugins_of_kind("backbone")),
                         asg::testing::plugin_test_name);
INSTANTIATE_TEST_SUITE_P(Build, AutoencoderConformance, ::testing::ValuesIn(asg::testing::plugins_of_kind("autoencoder")),
                         asg::testing::plugin_test_name);
INSTANTIATE_TEST_SUITE_P(Build, SamplerConformance, ::testing::ValuesIn(asg::testing::plugins_of_kind("sampler")),
                         asg::testing::plugin_test_name);
INSTANTIATE_TEST_SUITE_P(Build, MetricConformance, ::testing::ValuesIn(asg::testing::plugins_of_kind("metric")),
                         asg::testing::plugin_test_name);
