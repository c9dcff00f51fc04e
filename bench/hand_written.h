// What the benchmarks compare the framework with: the model built from the same plugins with the same
// initial weights, and the training step a researcher would write by hand in plain LibTorch (same
// objective, AdamW, clipping, warm-up and EMA).
#pragma once

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "asg/diffusion.h"
#include "asg/kinds/backbone.h"
#include "asg/kinds/dataset.h"
#include "asg/plugin_catalog.h"
#include "asg/trainer.h"

namespace asg::bench {

struct Model {
  std::shared_ptr<asg::TextEncoder> text;
  std::shared_ptr<asg::Backbone> backbone;
};

inline asg::Params defaults(const asg::PluginCatalog& c, const std::string& kind, const std::string& name) {
  return asg::default_params(name, c.find(kind, name)->factory.params);
}

inline Model build(const asg::PluginCatalog& catalog, const asg::DatasetInfo& info) {
  torch::manual_seed(1234);  // identical initial weights for both sides
  Model m;
  m.text = catalog.create<asg::TextEncoder>("word_embedding", defaults(catalog, "text_encoder", "word_embedding"));
  asg::BackboneContext ctx;
  ctx.channels = 4;
  ctx.frames = info.frames;
  ctx.height = info.height;
  ctx.width = info.width;
  ctx.text_dim = m.text->dim();
  auto temporal_params = defaults(catalog, "temporal", "temporal_conv");
  ctx.make_temporal = [&](const asg::TemporalContext& tc) {
    return catalog.create<asg::TemporalModule>("temporal_conv", temporal_params, tc);
  };
  m.backbone = catalog.create<asg::Backbone>("unet3d", defaults(catalog, "backbone", "unet3d"), ctx);
  return m;
}

// The step a researcher would write by hand: same objective, optimizer, clipping, warm-up and EMA.
class HandWritten {
 public:
  HandWritten(Model m, const asg::TrainOptions& o, uint64_t seed)
      : m_(std::move(m)), o_(o), schedule_("cosine", 1000, asg::Prediction::V), gen_(at::detail::createCPUGenerator(seed)) {
    for (auto& p : m_.backbone->parameters()) params_.push_back(p);
    for (auto& p : m_.text->parameters()) params_.push_back(p);
    for (auto& p : params_) ema_.push_back(p.detach().clone());
    opt_ = std::make_unique<torch::optim::AdamW>(params_, torch::optim::AdamWOptions(o.lr).weight_decay(o.weight_decay));
  }
  double step(const torch::Tensor& x0, std::vector<std::string> captions) {
    const int64_t b = x0.size(0);
    auto drop = torch::rand({b}, gen_);
    auto d = drop.accessor<float, 1>();
    for (int64_t i = 0; i < b; ++i)
      if (d[i] < o_.caption_dropout) captions[i].clear();
    auto t = torch::randint(0, 1000, {b}, gen_, torch::kLong);
    auto eps = torch::randn(x0.sizes(), gen_, torch::kFloat);
    auto a = schedule_.alphas_cumprod().index_select(0, t).to(torch::kFloat).view({b, 1, 1, 1, 1});
    auto x_t = a.sqrt() * x0 + (1 - a).sqrt() * eps;
    auto v = a.sqrt() * eps - (1 - a).sqrt() * x0;
    auto out = m_.backbone->forward(x_t, t.to(torch::kFloat), m_.text->encode(captions));
    auto loss = torch::mse_loss(out, v);
    opt_->zero_grad();
    loss.backward();
    torch::nn::utils::clip_grad_norm_(params_, o_.grad_clip);
    double lr = o_.lr * std::min(1.0, static_cast<double>(steps_ + 1) / o_.warmup_steps);
    for (auto& g : opt_->param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
    opt_->step();
    ++steps_;
    double decay = std::min(o_.ema_decay, (1.0 + steps_) / (10.0 + steps_));
    torch::NoGradGuard ng;
    for (size_t i = 0; i < params_.size(); ++i) ema_[i].mul_(decay).add_(params_[i].detach(), 1 - decay);
    return loss.item<double>();
  }
  // What a hand-written loop saves at the end: weights, EMA and optimizer state (torch::save, no fsync).
  void save(const std::string& path) {
    torch::serialize::OutputArchive archive;
    for (size_t i = 0; i < params_.size(); ++i) {
      archive.write("param." + std::to_string(i), params_[i]);
      archive.write("ema." + std::to_string(i), ema_[i], true);
    }
    torch::serialize::OutputArchive optimizer;
    opt_->save(optimizer);
    archive.write("optimizer", optimizer);
    archive.save_to(path);
  }

 private:
  Model m_;
  asg::TrainOptions o_;
  asg::NoiseSchedule schedule_;
  at::Generator gen_;
  std::vector<torch::Tensor> params_, ema_;
  std::unique_ptr<torch::optim::AdamW> opt_;
  int64_t steps_ = 0;
};


}  // namespace asg::bench
