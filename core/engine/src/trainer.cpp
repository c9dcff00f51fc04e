#include "asg/trainer.h"

#include "guidance.h"

#include <ATen/autocast_mode.h>

#include <ATen/CPUGeneratorImpl.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <set>

#include "asg/error.h"
#include "asg/flat_parameters.h"
#include "asg/hash.h"
#include "asg/media/alpha.h"

namespace asg {

TrainOptions TrainOptions::from(const Params& train) {
  TrainOptions o;
  o.lr = train.real("lr");
  o.weight_decay = train.real("weight_decay");
  o.warmup_steps = train.integer("warmup_steps");
  o.ema_decay = train.real("ema_decay");
  o.caption_dropout = train.real("caption_dropout");
  o.grad_clip = train.real("grad_clip");
  o.high_noise_fraction = train.real("high_noise_fraction");
  o.high_noise_shift = train.real("high_noise_shift");
  o.cosine_lr = train.str("lr_schedule") == "cosine";
  o.min_lr_fraction = train.real("min_lr_fraction");
  o.total_steps = train.integer("steps");
  o.micro_batches = train.integer("micro_batches");
  return o;
}

double TrainOptions::lr_at(int64_t step) const {
  if (warmup_steps > 0 && step < warmup_steps) return lr * static_cast<double>(step + 1) / warmup_steps;
  if (!cosine_lr) return lr;
  const int64_t decay_steps = std::max<int64_t>(1, total_steps - warmup_steps - 1);
  const double progress = std::clamp(static_cast<double>(step - warmup_steps) / decay_steps, 0.0, 1.0);
  const double floor = lr * min_lr_fraction;
  return floor + (lr - floor) * 0.5 * (1 + std::cos(M_PI * progress));
}

DiffusionTrainer::DiffusionTrainer(std::shared_ptr<TextEncoder> text_encoder, std::shared_ptr<Backbone> backbone,
                                   NoiseSchedule schedule, TrainOptions options, torch::Device device, uint64_t seed)
    : text_encoder_(std::move(text_encoder)),
      backbone_(std::move(backbone)),
      schedule_(std::move(schedule)),
      options_(options),
      device_(device),
      generator_(at::detail::createCPUGenerator(seed)) {
  backbone_->to(device_);
  text_encoder_->to(device_);
  for (auto& item : backbone_->named_parameters()) {
    params_.push_back(item.value());
    param_names_.push_back("backbone." + item.key());
  }
  for (auto& item : text_encoder_->named_parameters()) {
    if (text_encoder_->frozen()) {
      item.value().requires_grad_(false);
    } else if (item.value().requires_grad()) {  // a trainable encoder may keep parts fixed (rdtf_text's towers)
      params_.push_back(item.value());
      param_names_.push_back("text_encoder." + item.key());
    }
  }
  if (params_.empty())
    throw config_error("the model has no trainable parameters (is the text encoder frozen and the backbone empty?)");
  flat_ = std::make_unique<FlatParameters>(params_);
  optimizer_ = std::make_unique<FlatAdamW>(*flat_, FlatAdamWOptions{0.9, 0.999, 1e-8, options_.weight_decay});
  if (options_.ema_decay > 0) ema_ = flat_->data().clone();
  if (options_.high_noise_fraction > 0 && options_.high_noise_shift != 1)
    shifted_timesteps_ = schedule_.shifted_timesteps(options_.high_noise_shift);
  if (options_.precision == Precision::Float16) loss_scale_ = options_.initial_loss_scale;
  if (!options_.condition_tasks.empty()) {
    std::vector<TaskGroup> groups;
    for (auto task : options_.condition_tasks)
      groups.push_back(task == ConditionTask::Interpolation ? TaskGroup::Interpolation
                       : task == ConditionTask::Prediction  ? TaskGroup::Prediction
                                                            : TaskGroup::Generation);
    curriculum_ = std::make_unique<TaskCurriculum>(options_.curriculum, std::move(groups), options_.total_steps);
  }
  if (!options_.task_text_dropout.empty() && options_.task_text_dropout.size() != options_.condition_tasks.size())
    throw internal_error("task_text_dropout needs one probability per condition task");
}

int64_t DiffusionTrainer::parameter_count() const {
  int64_t n = 0;
  for (const auto& p : params_) n += p.numel();
  return n;
}


StepResult DiffusionTrainer::step(const torch::Tensor& x0_in, const std::vector<std::string>& captions,
                                  const torch::Tensor& frame_valid) {
  const int64_t batch = x0_in.size(0);
  if (static_cast<int64_t>(captions.size()) != batch) throw internal_error("captions and clips differ in number");
  // All randomness from the trainer's own CPU generator: reproducible on every device.
  auto drop = torch::rand({batch}, generator_);
  auto dropped = drop.accessor<float, 1>();
  std::vector<std::string> used(captions);
  for (int64_t i = 0; i < batch; ++i)
    if (dropped[i] < options_.caption_dropout) used[i].clear();
  auto t = torch::randint(0, schedule_.num_timesteps(), {batch}, generator_, torch::kLong);
  if (shifted_timesteps_.defined()) {
    auto high = torch::rand({batch}, generator_) < options_.high_noise_fraction;
    t = torch::where(high, shifted_timesteps_.index_select(0, t), t);
  }
  auto x0 = to_diffusion_space(x0_in.to(device_));
  auto eps = torch::randn(x0.sizes(), generator_, torch::kFloat).to(device_);

  auto x_t = schedule_.add_noise(x0, eps, t);
  // 1 for a clip that keeps its text, 0 for one its task trains without (task_text_dropout); undefined = all keep.
  torch::Tensor text_kept;
  torch::Tensor given_mask;  // [B, T]: the frames each clip's task gives (image conditioning)
  if (!options_.condition_tasks.empty()) {
    // Each clip its task and its given frames, from the trainer's generator (drawn after the noise, so a run
    // without conditioning draws exactly what it drew before conditioning existed; a uniform curriculum
    // draws as before curricula existed).
    std::vector<torch::Tensor> masks;
    std::vector<float> kept;
    const auto tasks = static_cast<int64_t>(options_.condition_tasks.size());
    const auto weights = curriculum_->weights(steps_);
    for (int64_t i = 0; i < batch; ++i) {
      const auto pick = options_.curriculum == CurriculumKind::Uniform
                            ? static_cast<size_t>(torch::randint(0, tasks, {1}, generator_, torch::kLong).item<int64_t>())
                            : TaskCurriculum::pick(weights, torch::rand({1}, generator_, torch::kFloat64).item<double>());
      masks.push_back(training_condition_mask(options_.condition_tasks[pick], x0.size(2), generator_, options_.image_frame_first));
      if (!options_.task_text_dropout.empty())
        kept.push_back(torch::rand({1}, generator_, torch::kFloat64).item<double>() < options_.task_text_dropout[pick] ? 0.f : 1.f);
    }
    given_mask = torch::stack(masks);
    x_t = with_condition(x_t, x0, given_mask);
    if (!kept.empty()) text_kept = torch::tensor(kept).to(device_);
  }
  // RDTF's input gate: a clip trained without its text has its text encoding zeroed.
  auto encode = [&](int64_t from, int64_t to) {
    TextEmbedding text = text_encoder_->encode(std::vector<std::string>(used.begin() + from, used.begin() + to));
    if (text_kept.defined()) {
      auto keep = text_kept.slice(0, from, to).to(text.tokens.scalar_type());
      text.tokens = text.tokens * keep.view({-1, 1, 1});
      if (text.pooled.defined()) text.pooled = text.pooled * keep.view({-1, 1});
    }
    return text;
  };
  // The backbone's image embedding of each clip's given frame; zeros where the caption was dropped, so
  // that the model learns guidance's unconditional input (the empty caption and no image embedding).
  torch::Tensor image_embedding;
  if (image_encoder_) {
    auto caption_kept = drop >= options_.caption_dropout;
    image_embedding = given_mask.defined()
                          ? first_given_frame_embedding(*image_encoder_, x0_in.to(device_), given_mask, caption_kept)
                          : torch::zeros({batch, image_encoder_->dim()}, torch::TensorOptions().device(device_));
  }
  auto target = schedule_.target(x0, eps, t);
  // Padding frames cost nothing: the mean squared error over the real frames' elements only.
  torch::Tensor valid;
  if (frame_valid.defined()) valid = frame_valid.to(device_, torch::kFloat).reshape({batch, 1, -1, 1, 1});
  const double per_frame = static_cast<double>(x0.numel()) / (batch * x0.size(2));
  auto batch_loss = [&](const torch::Tensor& out) {
    if (!valid.defined()) return torch::mse_loss(out, target);
    return ((out - target).pow(2) * valid).sum() / (valid.sum().clamp_min(1) * per_frame);
  };

  flat_->zero_grad();
  const int64_t slices = std::min(options_.micro_batches, batch);
  double total_loss = 0;
  // The backbone under autocast when asked; its output back in float32 for the loss.
  auto forward = [&](const torch::Tensor& x, const torch::Tensor& times, const TextEmbedding& text, int64_t from) {
    const auto image = image_embedding.defined() ? image_embedding.slice(0, from, from + x.size(0)) : torch::Tensor();
    return backbone_forward(*backbone_, options_.precision, device_, x, times, text, image);
  };
  // float16: the scaled loss goes backward, so the gradient arrives multiplied by loss_scale_.
  const bool scaled = options_.precision == Precision::Float16;
  auto backward = [&](const torch::Tensor& loss) { (scaled ? loss * loss_scale_ : loss).backward(); };
  if (slices == 1) {
    auto loss = batch_loss(forward(x_t, t.to(torch::kFloat).to(device_), encode(0, batch), 0));
    backward(loss);
    total_loss = loss.item<double>();
  } else {
    // Gradient accumulation: one slice at a time, each loss its squared error over the whole batch's
    // normaliser, so that losses and gradients add up to the whole batch's.
    const double normaliser = valid.defined() ? std::max(1.0, valid.sum().item<double>()) * per_frame
                                              : static_cast<double>(x0.numel());
    for (int64_t k = 0; k < slices; ++k) {
      const int64_t from = batch * k / slices, to = batch * (k + 1) / slices;
      auto text = encode(from, to);
      auto out = forward(x_t.slice(0, from, to), t.slice(0, from, to).to(torch::kFloat).to(device_), text, from);
      auto squared = (out - target.slice(0, from, to)).pow(2);
      if (valid.defined()) squared = squared * valid.slice(0, from, to);
      auto loss = squared.sum() / normaliser;
      backward(loss);
      total_loss += loss.item<double>();
    }
  }
  if (curriculum_) curriculum_->observe(total_loss);  // this rank's loss: the curriculum follows what it trains on
  if (gradient_hook_) gradient_hook_(flat_->grad());
  const double lr = options_.lr_at(steps_);
  const double used_scale = loss_scale_;
  if (scaled) {
    // Checked after the hook, on the gradient every rank then holds, so all ranks skip or step together.
    if (!torch::isfinite(flat_->grad()).all().item<bool>()) {
      loss_scale_ *= 0.5;
      steps_since_overflow_ = 0;
      ++steps_;  // the step is spent (the lr schedule and the EMA warm-up move on), its update is not made
      return StepResult{total_loss, 0, lr, used_scale, true};
    }
    flat_->grad().mul_(1.0 / loss_scale_);
    if (++steps_since_overflow_ == options_.loss_scale_growth_interval) {
      loss_scale_ *= 2;
      steps_since_overflow_ = 0;
    }
  }
  double grad_norm = 0;
  if (options_.grad_clip > 0) grad_norm = flat_->clip_grad_norm(options_.grad_clip);
  optimizer_->step(lr);
  ++steps_;

  if (ema_.defined()) {
    // Warm-up of the decay keeps short runs from sampling with mostly-initial weights.
    double decay = std::min(options_.ema_decay, (1.0 + steps_) / (10.0 + steps_));
    torch::NoGradGuard no_grad;
    ema_.mul_(decay).add_(flat_->data(), 1 - decay);
  }
  return StepResult{total_loss, grad_norm, lr, used_scale, false};
}

void DiffusionTrainer::check_precision(const std::vector<int64_t>& clip_shape) {
  if (options_.precision == Precision::Float32) return;
  const bool half = options_.precision == Precision::Float16;
  std::vector<int64_t> shape{1};
  shape.insert(shape.end(), clip_shape.begin(), clip_shape.end());
  torch::NoGradGuard no_grad;
  try {
    AutocastScope autocast(options_.precision, device_);
    backbone_->forward(torch::zeros(shape, torch::TensorOptions().device(device_)), torch::zeros({1}, torch::TensorOptions().device(device_)),
                       text_encoder_->encode({""}));
  } catch (const c10::Error& e) {
    const std::string what = e.what_without_backtrace();
    throw config_error(fmt::format("[runtime] precision = \"{}\": the backbone cannot run under this LibTorch's {} autocast "
                                   "on {} ({}) (valid: \"fp32\", or a device whose autocast covers the backbone's operations, e.g. "
                                   "CUDA)",
                                   half ? "fp16" : "bf16", half ? "float16" : "bfloat16", device_.str(),
                                   what.substr(0, what.find('\n'))));
  }
}

void DiffusionTrainer::use_ema_weights() {
  torch::NoGradGuard no_grad;
  if (ema_.defined()) flat_->data().copy_(ema_);
}

torch::Tensor DiffusionTrainer::sample(Sampler& sampler, const std::vector<std::string>& captions,
                                       const std::vector<int64_t>& clip_shape, at::Generator generator,
                                       const std::function<void(int64_t, int64_t)>& on_step, const std::string& negative_prompt,
                                       const SampleCondition* condition) {
  torch::NoGradGuard no_grad;
  backbone_->eval();
  text_encoder_->eval();
  const int64_t batch = static_cast<int64_t>(captions.size());
  TextEmbedding cond = text_encoder_->encode(captions);
  TextEmbedding uncond = text_encoder_->encode(std::vector<std::string>(captions.size(), negative_prompt));
  std::vector<int64_t> shape = {batch};
  shape.insert(shape.end(), clip_shape.begin(), clip_shape.end());
  torch::Tensor given;  // the condition channels, when the model was trained with image conditioning
  if (!options_.condition_tasks.empty()) {
    if (condition) {
      given = with_condition(torch::zeros(shape, torch::TensorOptions().device(device_)),
                             to_diffusion_space(to_model_space(condition->clips).to(device_)), condition->mask)
                  .narrow(1, clip_shape[0], clip_shape[0] + 1);
    } else {  // no frame given: the generation task
      given = torch::zeros({batch, clip_shape[0] + 1, clip_shape[1], clip_shape[2], clip_shape[3]},
                           torch::TensorOptions().device(device_));
    }
  } else if (condition) {
    throw internal_error("sample(): a condition for a model trained without image conditioning");
  }
  torch::Tensor image_embedding;  // the backbone's, when it takes one; without a frame given, zeros
  if (image_encoder_)
    image_embedding = condition ? first_given_frame_embedding(*image_encoder_, to_model_space(condition->clips).to(device_), condition->mask)
                                : torch::zeros({batch, image_encoder_->dim()}, torch::TensorOptions().device(device_));
  GuidedDenoiser denoiser(*backbone_, schedule_, cond, uncond, options_.precision, device_, given,
                          condition ? condition->image_guidance_scale : 0.0, image_embedding);
  auto noise = torch::randn(shape, generator, torch::kFloat).to(device_);
  auto x0 = sampler.sample(denoiser, noise, generator, on_step);
  if (autoencoder_) x0 = autoencoder_->decode(x0 / latent_scale_);
  backbone_->train();
  text_encoder_->train();
  return from_model_space(x0).to(torch::kCPU);
}

void DiffusionTrainer::set_autoencoder(std::shared_ptr<Autoencoder> autoencoder, double scaling_factor) {
  autoencoder_ = std::move(autoencoder);
  latent_scale_ = scaling_factor;
  if (!autoencoder_) return;
  autoencoder_->to(device_);
  autoencoder_->eval();
  for (auto& p : autoencoder_->parameters()) p.set_requires_grad(false);
}

void DiffusionTrainer::set_image_encoder(std::shared_ptr<ImageEncoder> image_encoder) {
  if (image_encoder && image_encoder->dim() != backbone_->image_embedding_dim())
    throw internal_error("set_image_encoder: the encoder's width is not the backbone's image embedding width");
  image_encoder_ = std::move(image_encoder);
  if (!image_encoder_) return;
  image_encoder_->to(device_);
  image_encoder_->eval();
  for (auto& p : image_encoder_->parameters()) p.set_requires_grad(false);
}

torch::Tensor DiffusionTrainer::to_diffusion_space(const torch::Tensor& x) const {
  if (!autoencoder_) return x;
  torch::NoGradGuard no_grad;
  return autoencoder_->encode(x) * latent_scale_;
}

void DiffusionTrainer::save_checkpoint(const std::string& path, int64_t step, const std::map<std::string, torch::Tensor>& extra) {
  // Parameters are slices of one shared buffer: clone each, so the file holds every tensor by itself
  // under its name rather than pointing into a storage it also carries whole.
  torch::NoGradGuard no_grad;
  torch::serialize::OutputArchive archive;
  for (const auto& item : backbone_->named_parameters()) archive.write("backbone." + item.key(), item.value().clone());
  for (const auto& item : backbone_->named_buffers()) archive.write("backbone." + item.key(), item.value(), true);
  for (const auto& item : text_encoder_->named_parameters()) archive.write("text_encoder." + item.key(), item.value().clone());
  for (const auto& item : text_encoder_->named_buffers()) archive.write("text_encoder." + item.key(), item.value(), true);
  for (size_t i = 0; ema_.defined() && i < params_.size(); ++i)
    archive.write("ema." + param_names_[i], flat_->slice(ema_, i).clone(), true);
  // AdamW's moments by parameter name, so a resumed run can match them to its own parameters.
  for (size_t i = 0; i < params_.size(); ++i) {
    archive.write("optimizer.exp_avg." + param_names_[i], flat_->slice(optimizer_->exp_avg(), i).clone(), true);
    archive.write("optimizer.exp_avg_sq." + param_names_[i], flat_->slice(optimizer_->exp_avg_sq(), i).clone(), true);
  }
  archive.write("optimizer.steps", torch::tensor(optimizer_->steps()), true);
  archive.write("trainer.steps", torch::tensor(steps_), true);
  if (curriculum_ && options_.curriculum == CurriculumKind::Adaptive)
    archive.write("trainer.curriculum", torch::tensor(curriculum_->state(), torch::kFloat64), true);
  if (options_.precision == Precision::Float16) {
    archive.write("trainer.loss_scale", torch::tensor(loss_scale_, torch::kFloat64), true);
    archive.write("trainer.steps_since_overflow", torch::tensor(steps_since_overflow_), true);
  }
  {
    std::lock_guard<std::mutex> lock(generator_.mutex());
    archive.write("rng.trainer", generator_.get_state(), true);
  }
  {
    auto global = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(global.mutex());
    archive.write("rng.global", global.get_state(), true);
  }
  if (device_.is_cuda()) {
    // Dropout and every other random op on the GPU draw from the device's own generator.
    auto cuda = at::globalContext().defaultGenerator(device_);
    std::lock_guard<std::mutex> lock(cuda.mutex());
    archive.write("rng.cuda", cuda.get_state(), true);
  }
  for (const auto& [key, value] : extra) archive.write("run." + key, value, true);
  archive.write("step", torch::tensor(step), true);

  save_archive_atomically(archive, path, step);
}

namespace {

// A checkpoint file opened for reading by key, with errors that name the file.
class CheckpointReader {
 public:
  explicit CheckpointReader(const std::string& path) : path_(path) {
    try {
      archive_.load_from(path);
    } catch (const c10::Error& e) {
      throw config_error(fmt::format("{}: not a checkpoint LibTorch can read ({})", path, e.what_without_backtrace()));
    }
    for (const auto& k : archive_.keys()) keys_.insert(k);
  }
  bool has(const std::string& key) const { return keys_.count(key) > 0; }
  const std::set<std::string>& keys() const { return keys_; }
  torch::Tensor read(const std::string& key, const std::string& why) {
    if (!has(key))
      throw config_error(fmt::format("{}: the checkpoint has no tensor '{}' ({})", path_, key, why));
    torch::Tensor t;
    archive_.read(key, t);
    return t;
  }
  // Copies tensor `key` into `into`, which must have the same shape.
  void copy_into(const std::string& key, const torch::Tensor& into, const std::string& why) {
    torch::Tensor t = read(key, why);
    if (t.sizes() != into.sizes())
      throw config_error(fmt::format("{}: tensor '{}' has shape {} in the checkpoint but {} in this model", path_, key,
                                     fmt::format("{}", t.sizes()), fmt::format("{}", into.sizes())));
    torch::NoGradGuard no_grad;
    into.copy_(t);
  }

 private:
  std::string path_;
  torch::serialize::InputArchive archive_;
  std::set<std::string> keys_;
};

const char* const kOtherModel = "it was saved from a different model; compare the experiment it came from";

// A module's parameters and buffers from "<prefix><name>"; with `prefer_ema`, each parameter from its
// "ema.<prefix><name>" where the file has one.
void load_module(CheckpointReader& file, torch::nn::Module& module, const std::string& prefix, bool prefer_ema) {
  for (auto& item : module.named_parameters()) {
    const std::string ema = "ema." + prefix + item.key();
    file.copy_into(prefer_ema && file.has(ema) ? ema : prefix + item.key(), item.value(), kOtherModel);
  }
  for (auto& item : module.named_buffers()) file.copy_into(prefix + item.key(), item.value(), kOtherModel);
}

}  // namespace

void DiffusionTrainer::load_weights(const std::string& path) {
  CheckpointReader file(path);
  load_module(file, *backbone_, "backbone.", /*prefer_ema=*/true);
  load_module(file, *text_encoder_, "text_encoder.", /*prefer_ema=*/true);
  torch::NoGradGuard no_grad;
  if (ema_.defined()) ema_.copy_(flat_->data());
}

int64_t DiffusionTrainer::load_train_state(const std::string& path, std::map<std::string, torch::Tensor>* extra) {
  CheckpointReader file(path);
  const std::string no_state = "it holds weights only, not a training state to continue from";
  load_module(file, *backbone_, "backbone.", /*prefer_ema=*/false);
  load_module(file, *text_encoder_, "text_encoder.", /*prefer_ema=*/false);
  for (size_t i = 0; i < params_.size(); ++i) {
    if (ema_.defined()) file.copy_into("ema." + param_names_[i], flat_->slice(ema_, i), no_state);
    file.copy_into("optimizer.exp_avg." + param_names_[i], flat_->slice(optimizer_->exp_avg(), i), no_state);
    file.copy_into("optimizer.exp_avg_sq." + param_names_[i], flat_->slice(optimizer_->exp_avg_sq(), i), no_state);
  }
  optimizer_->set_steps(file.read("optimizer.steps", no_state).item<int64_t>());
  steps_ = file.read("trainer.steps", no_state).item<int64_t>();
  if (curriculum_ && options_.curriculum == CurriculumKind::Adaptive) {
    auto state = file.read("trainer.curriculum", no_state).contiguous();
    curriculum_->restore(std::vector<double>(state.data_ptr<double>(), state.data_ptr<double>() + state.numel()));
  }
  // A float16 run continues with the scale it had reached; one resumed from a checkpoint of another precision
  // starts from the initial scale.
  if (options_.precision == Precision::Float16 && file.has("trainer.loss_scale")) {
    loss_scale_ = file.read("trainer.loss_scale", no_state).item<double>();
    steps_since_overflow_ = file.read("trainer.steps_since_overflow", no_state).item<int64_t>();
  }
  {
    auto state = file.read("rng.trainer", no_state);
    std::lock_guard<std::mutex> lock(generator_.mutex());
    generator_.set_state(state);
  }
  {
    auto state = file.read("rng.global", no_state);
    auto global = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(global.mutex());
    global.set_state(state);
  }
  // Checkpoints of CPU runs (and those written before the CUDA state was kept) have none; a CPU run resumed
  // from a CUDA checkpoint has no use for it.
  if (device_.is_cuda() && file.has("rng.cuda")) {
    auto state = file.read("rng.cuda", no_state);
    auto cuda = at::globalContext().defaultGenerator(device_);
    std::lock_guard<std::mutex> lock(cuda.mutex());
    cuda.set_state(state);
  }
  if (extra)
    for (const auto& key : file.keys())
      if (key.rfind("run.", 0) == 0) (*extra)[key.substr(4)] = file.read(key, no_state);
  return file.read("step", no_state).item<int64_t>();
}

}  // namespace asg
