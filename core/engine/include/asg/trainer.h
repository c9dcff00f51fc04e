// The diffusion model the core trains and samples: text encoder + backbone, the DDPM objective,
// AdamW with warm-up, gradient clipping and an EMA of the weights. Torch code; include only where needed.
//
// The trainable parameters live in one flat buffer (asg/flat_parameters.h): the optimizer, clipping and
// EMA are a dozen ops per step instead of a dozen per parameter tensor, with LibTorch AdamW's arithmetic.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "asg/diffusion.h"
#include "asg/flat_parameters.h"
#include "asg/kinds/autoencoder.h"
#include "asg/kinds/backbone.h"
#include "asg/kinds/dataset.h"
#include "asg/kinds/image_encoder.h"
#include "asg/kinds/sampler.h"
#include "asg/kinds/text_encoder.h"
#include "asg/params.h"
#include "asg/task_curriculum.h"
#include "asg/checkpoint_file.h"
#include "asg/conditioning.h"
#include "asg/model_space.h"
#include "asg/precision.h"
#include "asg/seeding.h"

namespace asg {

struct TrainOptions {
  double lr = 1e-3;
  double weight_decay = 0;
  int64_t warmup_steps = 0;
  double ema_decay = 0;
  double caption_dropout = 0;
  double grad_clip = 0;
  // A share of every batch trains at timesteps drawn as if the schedule's log-SNR were lowered by
  // 2 ln(high_noise_shift) (NoiseSchedule::shifted_timesteps); sampling is unchanged. The caption decides
  // where a sprite goes only at high noise, so this is where motion direction is learned.
  double high_noise_fraction = 0;
  double high_noise_shift = 1;
  // After warm-up: constant lr, or (cosine) a half cosine from lr down to min_lr_fraction * lr at
  // total_steps (Loshchilov & Hutter 2017, without restarts).
  bool cosine_lr = false;
  double min_lr_fraction = 0;
  int64_t total_steps = 0;
  // Gradient accumulation: a batch runs as this many sequential slices (the last ones one clip smaller
  // when it does not divide), each loss weighted by its share, so the gradients add up to the whole
  // batch's; timesteps, noise and caption dropout are drawn for the whole batch first.
  int64_t micro_batches = 1;
  // Autocast around every backbone forward, in training and sampling (LibTorch's op lists: matmuls and
  // convolutions in the lower precision, reductions and norms in float32); the loss, the optimizer, the EMA
  // and the sampler's arithmetic stay in float32. Float16 also scales the loss (below).
  Precision precision = Precision::Float32;
  // Float16 only: dynamic loss scaling, as torch.amp.GradScaler does it. The loss is multiplied by the
  // scale before backward so small gradients survive float16; the flat gradient is divided by it before
  // clipping. A step whose gradient holds an inf or NaN changes no weight, moment or EMA and halves the
  // scale; after this many steps in a row without one, the scale doubles.
  double initial_loss_scale = 65536.0;
  int64_t loss_scale_growth_interval = 2000;
  // Image conditioning: each training clip draws its task uniformly from these; empty = none (the backbone
  // then has no condition channels). Set from [conditioning] tasks.
  std::vector<ConditionTask> condition_tasks;
  // The image task's frame in training: the first (I2VGen-XL) rather than a random one. [conditioning] image_frame.
  bool image_frame_first = false;
  // How each clip's task is drawn: uniformly, or by RDTF's curriculum (asg/task_curriculum.h). [conditioning] curriculum.
  CurriculumKind curriculum = CurriculumKind::Uniform;
  // Per condition task (the same order), the probability that a clip drawn for it trains without its text:
  // its text tokens and pooled embedding zeroed (RDTF's input gate: i2v is the image task without text).
  // Empty: none beyond caption_dropout. [conditioning] text_dropout.
  std::vector<double> task_text_dropout;
  static TrainOptions from(const Params& train);
  // The learning rate of optimizer step `step` (0-based).
  double lr_at(int64_t step) const;
};

struct StepResult {
  double loss = 0;
  double grad_norm = 0;
  double lr = 0;
  double loss_scale = 0;  // float16: the scale this step's backward used; 0 otherwise
  bool skipped = false;   // float16: the gradient overflowed, so nothing was updated
};

// Called with the flat gradient of every trainable parameter after backward and before clipping, the
// optimizer step and the EMA update: the seam where a distributed run all-reduces (averages) gradients
// across ranks. It may modify the tensor in place; it must not replace it.
using GradientHook = std::function<void(const torch::Tensor& flat_gradients)>;

// What evaluation conditions on: the reference clips (straight RGBA [B, T, 4, H, W] in [0,1], as the
// dataset gives them) and which of their frames are given ([B, T] 0/1).
struct SampleCondition {
  torch::Tensor clips;
  torch::Tensor mask;
  // > 0: guidance on the image as well as on the text, with this scale (RDTF's separate image guidance;
  // InstructPix2Pix's form): eps = eps(-, -) + s_image (eps(-, image) - eps(-, -)) + s_text (eps(text, image) -
  // eps(-, image)), "-" the unconditional text or no frame given, three passes per step. 0: both guidance
  // branches see the frames and guidance is on the text alone.
  double image_guidance_scale = 0;
};

class DiffusionTrainer {
 public:
  DiffusionTrainer(std::shared_ptr<TextEncoder> text_encoder, std::shared_ptr<Backbone> backbone,
                   NoiseSchedule schedule, TrainOptions options, torch::Device device, uint64_t seed);

  // One optimisation step on a batch of model-space clips [B, C, T, H, W] with their captions:
  // forward and backward, the gradient hook, clipping, AdamW, EMA.
  // frame_valid: optional [B, T], 1 for real frames and 0 for padding (the loss averages over real
  // frames only); undefined = every frame is real.
  StepResult step(const torch::Tensor& x0, const std::vector<std::string>& captions, const torch::Tensor& frame_valid = {});
  void set_gradient_hook(GradientHook hook) { gradient_hook_ = std::move(hook); }

  // Latent diffusion: from now on step() encodes its clips with the (frozen) autoencoder and multiplies the
  // latents by scaling_factor, and sample() draws latents of sample()'s clip_shape and decodes them. The
  // autoencoder is moved to the trainer's device and put in eval mode; it is not part of the checkpoint.
  void set_autoencoder(std::shared_ptr<Autoencoder> autoencoder, double scaling_factor);

  // A backbone that takes an image embedding (Backbone::image_embedding_dim()): from now on step() and sample()
  // give it the (frozen) encoder's embedding of each clip's first given frame, and zeros for a clip given no
  // frame, for a clip whose caption dropout drew the empty caption (so the model learns the unconditional
  // input guidance uses) and in guidance's unconditional branch, as diffusers' I2VGenXLPipeline does. The
  // encoder is moved to the trainer's device and put in eval mode; it is not part of the checkpoint.
  void set_image_encoder(std::shared_ptr<ImageEncoder> image_encoder);

  // With bf16 or fp16: one no-grad forward at batch 1 on a clip of `clip_shape` ([C, T, H, W]) under
  // autocast, so a backbone this LibTorch cannot run in that precision on this device is refused
  // (asg::Error(Config)) before a run is recorded. No randomness is drawn. Nothing to check in fp32.
  void check_precision(const std::vector<int64_t>& clip_shape);

  // Copies the EMA weights into the model (no-op without EMA); call before sampling.
  void use_ema_weights();

  // Generates clips for captions; returns straight RGBA [B, T, 4, H, W] on the CPU.
  // clip_shape is [C, T, H, W]. Initial noise is drawn on the CPU from `generator`, so the same seed
  // gives the same noise on every device. Guidance's unconditional branch is conditioned on
  // `negative_prompt` (empty: the empty caption training drops captions to). In latent space clip_shape is
  // the latent's and the decoded clips are returned. With image conditioning, `condition` gives the frames
  // (both guidance branches see them: guidance is on the text); none = no frame given.
  torch::Tensor sample(Sampler& sampler, const std::vector<std::string>& captions, const std::vector<int64_t>& clip_shape,
                       at::Generator generator, const std::function<void(int64_t, int64_t)>& on_step,
                       const std::string& negative_prompt = "", const SampleCondition* condition = nullptr);

  // Checkpoint, written atomically (temporary file, fsync, rename: a reader or a crash never sees half a
  // file). Keys: "backbone.<name>", "text_encoder.<name>" (weights and buffers), "ema.<same names>" (the
  // EMA weights, when EMA is on), "optimizer.exp_avg.<name>" / "optimizer.exp_avg_sq.<name>" /
  // "optimizer.steps" (AdamW by parameter name), "trainer.steps", "rng.trainer" (timesteps, noise, caption
  // dropout) and "rng.global" (what layers draw while training, e.g. dropout masks), and "step".
  // `extra` tensors (the run's own state, e.g. its data position) are stored as "run.<key>".
  void save_checkpoint(const std::string& path, int64_t step, const std::map<std::string, torch::Tensor>& extra = {});
  // Puts the whole training state of a checkpoint back: weights, buffers, EMA, optimizer moments and step
  // count, the trainer's step count and both RNG streams. Continuing from it gives, on the same build and
  // device, bit for bit the steps an uninterrupted trainer would have taken. Returns the checkpoint's
  // "step". asg::Error(Config) naming the file and the key when anything is missing or shaped differently.
  // `extra`, if given, receives the file's "run.<key>" tensors under their keys.
  int64_t load_train_state(const std::string& path, std::map<std::string, torch::Tensor>* extra = nullptr);
  // Loads the weights a checkpoint samples with (its EMA weights where it has them, else its raw
  // weights) into the model and resets the EMA to them. Every parameter and buffer must be present with
  // the same shape: asg::Error(Config) naming the file and the first tensor that does not fit.
  void load_weights(const std::string& path);
  int64_t step_count() const { return steps_; }
  const NoiseSchedule& schedule() const { return schedule_; }
  std::vector<torch::Tensor> trainable_parameters() const { return params_; }
  int64_t parameter_count() const;

 private:
  std::shared_ptr<TextEncoder> text_encoder_;
  std::shared_ptr<Backbone> backbone_;
  std::shared_ptr<Autoencoder> autoencoder_;  // latent diffusion when set
  std::shared_ptr<ImageEncoder> image_encoder_;  // the backbone's image embedding when set
  double latent_scale_ = 1;
  // Model-space clips [B, 4, T, H, W] -> the space diffusion runs in (latents times latent_scale_).
  torch::Tensor to_diffusion_space(const torch::Tensor& x) const;
  NoiseSchedule schedule_;
  TrainOptions options_;
  torch::Device device_;
  at::Generator generator_;  // timesteps, noise and caption dropout
  torch::Tensor shifted_timesteps_;  // NoiseSchedule::shifted_timesteps(high_noise_shift), if used
  std::vector<torch::Tensor> params_;
  std::vector<std::string> param_names_;  // "backbone.<name>" / "text_encoder.<name>", aligned with params_
  std::unique_ptr<FlatParameters> flat_;  // params_ are views into flat_->data()
  std::unique_ptr<FlatAdamW> optimizer_;
  torch::Tensor ema_;  // flat, like flat_->data(); undefined without EMA
  int64_t steps_ = 0;
  GradientHook gradient_hook_;
  double loss_scale_ = 0;              // float16 only: the current dynamic loss scale
  int64_t steps_since_overflow_ = 0;  // float16 only: steps in a row whose gradient was finite
  std::unique_ptr<TaskCurriculum> curriculum_;  // with image conditioning
};

}  // namespace asg
