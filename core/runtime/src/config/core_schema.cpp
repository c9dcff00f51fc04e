// The schema of the core's own sections, one function per section.
#include "core_schema.h"

#include "asg/diffusion_kinds.h"
#include "asg/error.h"

namespace asg {

namespace {

CoreSection train_section() {
  return {"train", "optimisation of the backbone (and a trainable text encoder) with the DDPM objective",
   {int_param("steps", 1000, "optimizer steps; 0 evaluates the untrained model").range(0, 1e9),
    int_param("batch_size", 16, "clips per step").range(1, 65536),
    float_param("lr", 1e-3, "AdamW peak learning rate").range(0, 10),
    float_param("weight_decay", 0.0, "AdamW decoupled weight decay").range(0, 10),
    int_param("warmup_steps", 50, "linear learning-rate warm-up steps").range(0, 1e9),
    float_param("ema_decay", 0.995, "EMA of weights used for sampling; 0 disables EMA").range(0, 1),
    float_param("caption_dropout", 0.1, "probability of training on the empty caption (enables guidance)").range(0, 1),
    float_param("grad_clip", 1.0, "max global gradient norm; 0 disables clipping").range(0, 1e6),
    float_param("high_noise_fraction", 0.0, "share of each batch trained at high-noise timesteps (see high_noise_shift)")
        .range(0, 1),
    float_param("high_noise_shift", 1.0, "those timesteps are drawn as if the schedule's SNR were divided by shift^2; "
                                         "sampling keeps the schedule")
        .range(1, 1000),
    int_param("log_every", 25, "steps between loss records in the registry").range(1, 1e9),
    int_param("checkpoint_every", 200, "steps between training-state checkpoints (what asg resume continues from); "
                                       "0 = only the final one")
        .range(0, 1e9),
    path_param("init_checkpoint", "", "start from the weights this checkpoint samples with (its EMA); with steps = 0, "
                                      "evaluate it"),
    string_param("lr_schedule", "constant", "after warm-up: constant, or cosine decay to min_lr_fraction * lr at the last step")
        .one_of({"constant", "cosine"})
        .added_later(),
    float_param("min_lr_fraction", 0.0, "where the cosine schedule ends, as a fraction of lr").range(0, 1).added_later(),
    int_param("micro_batches", 1, "gradient accumulation: each batch runs as this many sequential micro-batches whose "
                                  "gradients add up to one optimizer step (the same update; activation memory / N)")
        .range(1, 65536)
        .added_later()}};
}

CoreSection eval_section() {
  return {"eval", "sampling and metric evaluation after training",
   {int_param("num_samples", 32, "clips generated for evaluation (one per test-split caption)").range(1, 1e7),
    int_param("batch_size", 32, "clips per sampling batch").range(1, 65536),
    string_param("split", "test", "dataset split whose captions prompt the samples").one_of({"train", "validation", "test"}),
    int_param("save_gifs", 16, "sample GIFs written to the run directory").range(0, 1e6),
    int_param("gif_scale", 8, "nearest-neighbour upscaling of saved GIFs (display only)").range(1, 64),
    string_param("negative_prompt", "", "text the unconditional branch of classifier-free guidance is conditioned on "
                                        "(the sampler's guidance_scale weighs it); empty = the empty caption")
        .added_later(),
    string_param("task", "generation", "which frames of each reference clip the samples are given (image conditioning, "
                                       "see [conditioning]): generation = none, image = the first, interpolation = "
                                       "the even frames, prediction = the first half")
        .one_of({"generation", "image", "interpolation", "prediction"})
        .added_later(),
    float_param("image_guidance_scale", 0.0, "with an image task: > 0 guides on the given frames too, with this scale, the "
                                             "sampler's guidance_scale on the text (RDTF: 7.5 and 7.5; three passes per "
                                             "step); 0 = guidance on the text alone, both branches see the frames")
        .range(0, 100)
        .added_later(),
    int_param("num_real", 0, "real clips distribution metrics (Fréchet distances) compare with: the eval split in "
                             "order, wrapping; 0 = as many as num_samples")
        .range(0, 1e7)
        .added_later()}};
}

CoreSection conditioning_section() {
  return {"conditioning", "image conditioning: masked condition frames and a per-frame mask concatenated to the backbone's input",
   {string_list_param("tasks", {}, "tasks training draws from for each clip (generation, image, interpolation, "
                                   "prediction); empty = no image conditioning")
        .one_of({"generation", "image", "interpolation", "prediction"})
        .added_later(),
    string_param("image_frame", "random", "the frame the image task gives in training: a random one (RDTF) or the first "
                                          "(I2VGen-XL; evaluation always gives the first)")
        .one_of({"random", "first"})
        .added_later(),
    string_param("curriculum", "uniform", "how each clip's task is drawn: uniform, linear (RDTF's static schedule: "
                                          "interpolation first, generation last) or dcl (RDTF's difficulty-adaptive "
                                          "curriculum: the schedule plus a PID signal of the loss; asg/task_curriculum.h)")
        .one_of({"uniform", "linear", "dcl"})
        .added_later(),
    float_list_param("text_dropout", {}, "per task in `tasks` (same order), the probability a clip drawn for it trains "
                                         "without its text, its text encoding zeroed (RDTF: the image task without text "
                                         "is i2v); empty = none beyond [train] caption_dropout")
        .range(0, 1)
        .added_later()}};
}

CoreSection diffusion_section() {
  return {"diffusion", "forward process and parameterisation (shared by training and sampling)",
   {int_param("timesteps", 1000, "number of diffusion steps T").range(2, 100000),
    enum_param("schedule", ScheduleKind::Cosine, schedule_names(), "noise schedule"),
    enum_param("prediction", Prediction::V, prediction_names(), "what the backbone predicts"),
    float_param("shift", 1.0, "log-SNR shift: every step's SNR is divided by shift^2 (>1 = more noise; simple diffusion)")
        .range(0.01, 100),
    float_param("beta_start", 0.0, "linear and scaled_linear: the first beta; 0 = the schedule's own (1e-4; 0.00085)")
        .range(0, 0.999)
        .added_later(),
    float_param("beta_end", 0.0, "linear and scaled_linear: the last beta; 0 = the schedule's own (0.02; 0.012)")
        .range(0, 0.999)
        .added_later(),
    float_param("max_beta", 0.999, "cosine: the cap on every beta (diffusers' squaredcos_cap_v2: 0.999)")
        .range(0, 0.999999)
        .added_later()}};
}

CoreSection runtime_section() {
  return {"runtime", "where and how the run executes",
   {int_param("seed", 0, "run seed; every generator is derived from it").range(0, 9.2e18),
    int_param("threads", 0, "intra-op CPU threads; 0 = all cores").range(0, 4096),
    string_param("device", "cpu", "compute device: cpu, cuda (the first GPU), cuda:N, or auto (cuda:0 when present, "
                                  "else cpu)"),
    bool_param("deterministic", true, "seed everything and use deterministic algorithms"),
    string_list_param("plugin_path", {}, "extra plugin directories or libraries (relative to the experiment file)"),
    string_param("precision", "fp32", "fp32; bf16 or fp16: autocast (bfloat16 or float16 matmuls and convolutions) around "
                                      "every backbone forward, in training and sampling, CUDA or CPU; fp16 also scales the "
                                      "loss dynamically")
        .one_of({"fp32", "bf16", "fp16"})
        .added_later(),
    int_param("prefetch_batches", 2, "training batches prepared ahead on a worker thread; 0 = on the training thread")
        .range(0, 64)}};
}

CoreSection data_section() {
  return {"data", "reading real sticker files: decode limits and bad-file tolerance (every dataset plugin gets these)",
   {int_param("max_canvas_pixels", 4096 * 4096, "largest canvas (width x height) a decoder accepts").range(1, 1e12).added_later(),
    int_param("max_frames", 2000, "most frames a decoder accepts per file").range(1, 1e9).added_later(),
    int_param("max_decoded_bytes", int64_t{1} << 30, "most RGBA bytes a decoder may produce per file").range(1, 1e15).added_later(),
    float_param("max_bad_fraction", 0.01, "the run fails when more than this share of the samples read so far were "
                                          "skipped as bad (truncated, empty, unsupported, oversized, outside the root)")
        .range(0, 1)
        .added_later(),
    int_param("workers", 0, "threads decoding training samples; 0 = [runtime] threads; results never depend on it")
        .range(0, 256)
        .added_later()}};
}

CoreSection benchmark_section() {
  return {"benchmark", "the leaderboard this run belongs to",
   {string_param("name", "", "benchmark name; empty = on no leaderboard"),
    string_param("version", "1", "benchmark protocol version; bump it when what the benchmark measures changes"),
    string_param("rank_by", "", "metric key that orders the leaderboard; empty = the first metric")}};
}

}  // namespace

const std::vector<CoreSection>& core_sections() {
  static const std::vector<CoreSection> sections = {train_section(), eval_section(), conditioning_section(), diffusion_section(), runtime_section(), data_section(), benchmark_section()};
  return sections;
}

namespace config {

const std::vector<ParamSpec>& core_specs(const std::string& section) {
  for (const auto& s : core_sections())
    if (s.name == section) return s.params;
  throw internal_error("no core section " + section);
}

}  // namespace config

}  // namespace asg
