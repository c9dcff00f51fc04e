#include "asg/runner.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <map>
#include <regex>

#include "asg/build.h"
#include "asg/device_info.h"
#include "asg/git_state.h"
#include "asg/stages/autoencoder_stage.h"
#include "asg/stages/batch_source.h"
#include "asg/stages/evaluator.h"
#include "asg/stages/recorder.h"
#include "asg/stages/runtime_settings.h"
#include "asg/stages/sample_writer.h"
#include "asg/stages/train_loop.h"
#include "asg/trainer.h"
#include "asg/names.h"
#include "asg/hash.h"

namespace asg {

namespace fs = std::filesystem;

namespace {

void check_rank_by(const Experiment& exp) {
  const std::string& rank_by = exp.benchmark.str("rank_by");
  if (rank_by.empty()) return;
  std::vector<std::string> names;
  for (const PluginSlot* m : exp.metric_slots()) {
    if (rank_by == m->plugin || rank_by.rfind(m->plugin + ".", 0) == 0) return;
    names.push_back(m->plugin);
  }
  throw config_error(fmt::format("{}: [benchmark] rank_by = \"{}\": not a key of any configured metric (metric keys are "
                                 "'<metric>' or '<metric>.<part>' for metrics: {}).{}",
                                 exp.file.string(), rank_by, join(names, ", "), did_you_mean(rank_by, names)));
}

TrainOptions train_options_of(const Experiment& exp) {
  TrainOptions options = TrainOptions::from(exp.train);
  options.precision = parse_precision(exp.runtime.str("precision"), "[runtime] precision");
  for (const auto& task : exp.conditioning.strs("tasks"))
    options.condition_tasks.push_back(condition_task_names().parse(task, "[conditioning] tasks"));
  options.image_frame_first = exp.conditioning.str("image_frame") == "first";
  const std::string& curriculum = exp.conditioning.str("curriculum");
  options.curriculum = curriculum == "dcl" ? CurriculumKind::Adaptive : curriculum == "linear" ? CurriculumKind::Linear : CurriculumKind::Uniform;
  options.task_text_dropout = exp.conditioning.reals("text_dropout");
  return options;
}

LoaderOptions loader_options_of(const Experiment& exp, const RuntimeSettings& settings, uint64_t seed, DataHealth* health) {
  LoaderOptions loader;
  loader.batch_size = exp.train.integer("batch_size");
  loader.order_seed = derive_seed(seed, "train.order");
  loader.prefetch_batches = exp.runtime.integer("prefetch_batches");
  loader.workers = exp.data.integer("workers") > 0 ? exp.data.integer("workers") : settings.threads;
  loader.health = health;
  return loader;
}

// The record of a run and the folder that belongs to it (config.toml whose hash the registry recorded).
struct RecordedRun {
  RunRecord record;
  fs::path dir;
};

RecordedRun find_recorded_run(const std::string& run_id, const RunOptions& options) {
  if (!fs::exists(options.registry_path))
    throw config_error(fmt::format("{}: no registry here (pass --registry PATH)", options.registry_path.string()));
  Registry registry(options.registry_path);
  // An id or an unambiguous start of one; an unknown or ambiguous one is refused listing the candidates.
  RunRecord record = registry.resolve_run(run_id);
  fs::path dir = options.runs_dir / record.id;
  return {std::move(record), std::move(dir)};
}

void check_run_folder(const RecordedRun& run, const Experiment& exp) {
  if (exp.config_hash != run.record.config_hash)
    throw config_error(fmt::format("run {}: {} has config hash {} but the registry recorded {}; the run folder does not "
                                   "belong to this run",
                                   run.record.id, (run.dir / "config.toml").string(), exp.config_hash.substr(0, 12),
                                   run.record.config_hash.substr(0, 12)));
}

}  // namespace

std::string check_build(const Experiment& exp) {
  const NoiseSchedule schedule = noise_schedule(exp);
  BuiltExperiment built = build_experiment(exp, schedule, static_cast<uint64_t>(exp.runtime.integer("seed")));
  int64_t parameters = 0;
  for (const auto& p : built.backbone->parameters()) parameters += p.numel();
  torch::NoGradGuard no_grad;
  built.backbone->eval();
  built.text_encoder->eval();
  // [1, ...shape]: one clip.
  auto batch_of_one = [](const std::vector<int64_t>& shape) {
    std::vector<int64_t> out{1};
    out.insert(out.end(), shape.begin(), shape.end());
    return out;
  };
  const std::vector<int64_t> expected = batch_of_one(built.diffusion_shape);
  std::string latent;
  if (built.autoencoder) {
    // The autoencoder both ways on one clip: its latent must be what the backbone was built for.
    built.autoencoder->eval();
    const std::vector<int64_t> clip{1, 4, built.info.frames, built.info.height, built.info.width};
    auto z = built.autoencoder->encode(torch::rand(clip) * 2 - 1);
    if (z.sizes() != torch::IntArrayRef(expected))
      throw config_error(fmt::format("{}: {}: encode gave {} for a clip of {}, but latent() announced {}", exp.file.string(),
                                     exp.slot("autoencoder").label(), c10::str(z.sizes()), c10::str(torch::IntArrayRef(clip)),
                                     c10::str(torch::IntArrayRef(expected))));
    auto decoded = built.autoencoder->decode(z);
    if (decoded.sizes() != torch::IntArrayRef(clip))
      throw config_error(fmt::format("{}: {}: decode gave {} for a latent of {}; expected the clip's {}", exp.file.string(),
                                     exp.slot("autoencoder").label(), c10::str(decoded.sizes()), c10::str(z.sizes()),
                                     c10::str(torch::IntArrayRef(clip))));
    latent = fmt::format("; autoencoder '{}' codes {} clips as {} latents", exp.slot("autoencoder").plugin,
                         c10::str(torch::IntArrayRef(clip).slice(1)), c10::str(z.sizes().slice(1)));
  }
  torch::Tensor image_embedding;
  if (built.image_encoder) {
    // The image encoder on one frame: its embedding must be what the backbone takes.
    built.image_encoder->eval();
    image_embedding = built.image_encoder->encode(torch::rand({1, 4, built.info.height, built.info.width}) * 2 - 1);
    const std::vector<int64_t> wanted{1, built.backbone->image_embedding_dim()};
    if (image_embedding.sizes() != torch::IntArrayRef(wanted) || !torch::isfinite(image_embedding).all().item<bool>())
      throw config_error(fmt::format("{}: {}: encode gave {} (finite: {}) for one frame; expected {}", exp.file.string(),
                                     exp.slot("image_encoder").label(), c10::str(image_embedding.sizes()),
                                     torch::isfinite(image_embedding).all().item<bool>(), c10::str(torch::IntArrayRef(wanted))));
    latent += fmt::format("; image encoder '{}' gives {} embeddings", exp.slot("image_encoder").plugin, c10::str(image_embedding.sizes()));
  }
  const std::vector<int64_t> shape = batch_of_one(built.backbone_input_shape());
  const auto start = std::chrono::steady_clock::now();
  const auto timestep = torch::full({1}, static_cast<float>(schedule.num_timesteps() / 2));
  auto out = image_embedding.defined()
                 ? built.backbone->forward_with_image_embedding(torch::randn(shape), timestep, built.text_encoder->encode({""}), image_embedding)
                 : built.backbone->forward(torch::randn(shape), timestep, built.text_encoder->encode({""}));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (out.sizes() != torch::IntArrayRef(expected) || !torch::isfinite(out).all().item<bool>())
    throw config_error(fmt::format("{}: {}: one forward pass at batch 1 returned {} (finite: {}) for an input of {}; expected {}",
                                   exp.file.string(), exp.slot("backbone").label(), c10::str(out.sizes()),
                                   torch::isfinite(out).all().item<bool>(), c10::str(torch::IntArrayRef(shape)),
                                   c10::str(torch::IntArrayRef(expected))));
  return fmt::format("built: backbone '{}' with {} parameters (temporal module '{}'){}; one forward pass at batch 1 on the CPU "
                     "gave {} in {:.2f} s",
                     exp.slot("backbone").plugin, parameters, exp.slot("temporal").plugin, latent, c10::str(out.sizes()), seconds);
}

namespace {

// Where training starts: step 0 of a fresh run, or a resumed attempt's checkpoint with its data position.
struct TrainingStart {
  int64_t step = 0;
  DataPosition position;
};

// The trainer's inputs beyond its constructor: the image encoder, the precision check against the backbone's
// input, the initial weights, and for a resumed attempt the whole training state of its checkpoint.
TrainingStart prepare_trainer(DiffusionTrainer& trainer, const Experiment& exp, const BuiltExperiment& built,
                              const RunOptions& options) {
  if (built.image_encoder) trainer.set_image_encoder(built.image_encoder);
  try {
    trainer.check_precision(built.backbone_input_shape());
  } catch (const Error& e) {
    throw config_error(fmt::format("{}: {}", exp.file.string(), e.what()));
  }
  const std::string& init_checkpoint = exp.train.str("init_checkpoint");
  if (!init_checkpoint.empty()) trainer.load_weights(init_checkpoint);
  TrainingStart start;
  if (options.resume) {
    std::map<std::string, torch::Tensor> run_state;
    start.step = trainer.load_train_state(options.resume->checkpoint.string(), &run_state);
    start.position = DataPosition::from_checkpoint(run_state, options.resume->checkpoint.string());
  }
  return start;
}

// The run's first log lines: what runs, where, on what; the initial weights; the model and data; the resume.
void log_run_start(RunRecorder& recorder, const Experiment& exp, const RunOptions& options, const RuntimeSettings& settings,
                   uint64_t seed, const DiffusionTrainer& trainer, const BuiltExperiment& built, int64_t start_step) {
  recorder.info(fmt::format("run {} ({}): {} | method {} | protocol {} | seed {} | {} thread{} on {}{}", recorder.run_id(),
                            exp.name, exp.file.string(), exp.method_hash.substr(0, 12), exp.protocol_hash.substr(0, 12), seed,
                            settings.threads, settings.threads == 1 ? "" : "s", settings.device.str(),
                            settings.deterministic ? " | deterministic" : ""));
  recorder.file_only(settings.allocator);
  const std::string& init_checkpoint = exp.train.str("init_checkpoint");
  if (!init_checkpoint.empty())
    recorder.info(fmt::format("weights from {} (sha256 {})", init_checkpoint, sha256_file(init_checkpoint)));
  recorder.metric("model/parameters", 0, static_cast<double>(trainer.parameter_count()));
  recorder.info(fmt::format("model: {} trainable parameters; data: {} frames of {}x{} RGBA{}", trainer.parameter_count(),
                            built.info.frames, built.info.height, built.info.width,
                            built.autoencoder ? fmt::format(", diffused as {} latents of {}x{} ([autoencoder] '{}')",
                                                            built.diffusion_shape[0], built.diffusion_shape[2],
                                                            built.diffusion_shape[3], exp.slot("autoencoder").plugin)
                                              : std::string()));
  if (options.resume) {
    recorder.info(fmt::format("resuming run {} (attempt {}) from {} at step {}", options.resume->run_id, recorder.attempt(),
                              options.resume->checkpoint.string(), start_step));
    recorder.continue_history(options.resume->run_id, start_step);
  }
}

// Latent diffusion's first stage, then the generator the diffusion stage would have had without it.
void run_autoencoder_stage(DiffusionTrainer& trainer, BuiltExperiment& built, const LoaderOptions& loader, RunRecorder& recorder,
                           const RuntimeSettings& settings, uint64_t seed, int64_t log_every, const RunOptions& options) {
  // A resumed attempt's checkpoint lies in <earlier run>/checkpoints/: its autoencoder.pt is next to that.
  const fs::path earlier_run_dir = options.resume ? options.resume->checkpoint.parent_path().parent_path() : fs::path();
  const double scale = prepare_autoencoder(*built.autoencoder, built.dataset, loader, recorder, settings.device, seed, log_every,
                                           earlier_run_dir);
  trainer.set_autoencoder(built.autoencoder, scale);
  // (A resumed attempt has the checkpoint's generator state back already.)
  if (!options.resume) torch::manual_seed(derive_seed(seed, "train.global"));
}

// Peak memory of training, sampling and metrics together: the process's (CPU) and, on a GPU, the device's.
void record_memory_peaks(RunRecorder& recorder, const torch::Device& device, int64_t step) {
  const MemoryPeaks peaks = memory_peaks(device);
  recorder.metric("run/peak_rss_mib", step, peaks.resident_mib);
  std::string memory = fmt::format("memory: peak resident {:.0f} MiB", peaks.resident_mib);
  if (peaks.device_allocated_mib) {
    recorder.metric("run/peak_device_allocated_mib", step, *peaks.device_allocated_mib);
    recorder.metric("run/peak_device_reserved_mib", step, *peaks.device_reserved_mib);
    memory += fmt::format(", {}: peak allocated {:.0f} MiB, reserved {:.0f} MiB", device.str(), *peaks.device_allocated_mib,
                          *peaks.device_reserved_mib);
  }
  recorder.info(memory);
}

void report_bad_data(RunRecorder& recorder, const DataHealth& health, const char* what) {
  if (health.bad() > 0)
    recorder.info(fmt::format("data: {} of {} {} (listed in {})", health.bad(), health.rows(), what, RunRecorder::kSkippedFile));
}

}  // namespace

// A composition of stages (asg/stages/*.h), kept at most 60 lines by scripts/lint/function_length.py (ctest
// lint.function_length): what does not compose stages belongs in a helper above or in a stage.
RunOutcome run_experiment(const Experiment& exp, const RunOptions& options) {
  // ---- set-up and plugin construction: nothing is recorded until this succeeds ----------------------
  check_rank_by(exp);
  const RuntimeSettings settings = apply_runtime_settings(exp, options.threads);
  const uint64_t seed = static_cast<uint64_t>(exp.runtime.integer("seed"));
  const NoiseSchedule schedule = noise_schedule(exp);
  BuiltExperiment built = build_experiment(exp, schedule, seed);
  // The metrics were built to refuse what cannot work before anything is recorded; they are built again on
  // the run's device after training, so that no extractor holds memory while the model trains.
  built.metrics.clear();
  // What plugins draw from the global generator while training (dropout masks) follows the run seed too.
  torch::manual_seed(derive_seed(seed, "train.global"));
  DiffusionTrainer trainer(built.text_encoder, built.backbone, schedule, train_options_of(exp), settings.device,
                           derive_seed(seed, "train.noise"));
  const TrainingStart start = prepare_trainer(trainer, exp, built, options);

  // ---- the run ---------------------------------------------------------------------------------------
  RunRecorder recorder(exp, options, settings);
  RunOutcome outcome{recorder.run_id(), recorder.run_dir(), {}};
  try {
    log_run_start(recorder, exp, options, settings, seed, trainer, built, start.step);
    DataHealth health(*built.dataset, exp.data.real("max_bad_fraction"),
                      [&recorder](const RejectedSample& s) { recorder.skipped_sample(s); });
    report_bad_data(recorder, health, "rows refused while opening");
    const TrainLoopOptions train = TrainLoopOptions::from(exp.train);
    const LoaderOptions loader = loader_options_of(exp, settings, seed, &health);
    if (built.autoencoder) run_autoencoder_stage(trainer, built, loader, recorder, settings, seed, train.log_every, options);
    if (train.steps > 0) {
      BatchSource batches(built.dataset, loader, options.resume ? std::optional<DataPosition>(start.position) : std::nullopt);
      TrainLoop(trainer, batches, recorder, train).run(start.step, start.position);
      trainer.use_ema_weights();
    } else {
      recorder.info(exp.train.str("init_checkpoint").empty() ? "train: steps = 0, evaluating the untrained model"
                                                             : "train: steps = 0, evaluating the checkpoint's weights");
    }
    SampleWriter samples(recorder, exp.eval.integer("save_gifs"), exp.eval.integer("gif_scale"), built.info.fps);
    built.metrics = build_metrics(exp, built.info, settings.device, seed, built.metric_libraries);
    outcome.results = Evaluator(exp, built, trainer, recorder, seed, &health,
                                StatisticsCache(options.runs_dir / "cache" / "real_statistics"))
                          .run(samples, train.steps);
    report_bad_data(recorder, health, "samples skipped as bad");
    record_memory_peaks(recorder, settings.device, train.steps);
    recorder.finish(outcome.results);
  } catch (const std::exception& e) {
    recorder.fail(e);
    throw;
  }
  return outcome;
}

PluginLoadPolicy stored_config_policy(const Registry& registry, const std::string& run_id) {
  PluginLoadPolicy policy = PluginLoadPolicy::process_default();
  policy.recorded_sha256.emplace();
  for (const auto& use : registry.plugins(run_id)) policy.recorded_sha256->insert(use.library_sha256);
  policy.recorded_by = "run " + run_id;
  return policy;
}

RecordedExecution recorded_execution(const std::string& host_json) {
  const auto j = nlohmann::json::parse(host_json, nullptr, false);
  RecordedExecution e;
  if (!j.is_object()) return e;
  if (j.contains("device") && j["device"].is_string()) e.device = j["device"].get<std::string>();
  if (j.contains("deterministic") && j["deterministic"].is_boolean()) e.deterministic = j["deterministic"].get<bool>();
  if (j.contains("threads") && j["threads"].is_number_integer() && j["threads"].get<int64_t>() > 0) e.threads = j["threads"].get<int64_t>();
  return e;
}

RunOutcome resume_run(const std::string& id_or_prefix, const RunOptions& options) {
  std::optional<RunRecord> record = find_recorded_run(id_or_prefix, options).record;
  const std::string run_id = record->id;
  if (record->status == RunStatus::Running || record->status == RunStatus::Queued) {
    Registry registry(options.registry_path);
    registry.collect_dead_runs(30 * 60 * 1000);  // a run whose process is gone cannot say so itself
    record = registry.find_run(run_id);
  }
  switch (record->status) {
    case RunStatus::Finished:
      throw config_error(fmt::format("run {} FINISHED; there is nothing to resume", run_id));
    case RunStatus::Running:
    case RunStatus::Queued:
      throw config_error(fmt::format("run {} is {} and its process is alive (or, on another host, its heartbeat is recent); "
                                     "stop it first, or run `asg runs gc` once it is gone",
                                     run_id, status_name(record->status)));
    default: break;
  }
  const fs::path run_dir = options.runs_dir / run_id;
  // final.pt if training finished, else the latest step_NNNNNNN.pt (every checkpoint_every steps, and on SIGINT/SIGTERM).
  // Checkpoints are written atomically: whatever is there is whole.
  fs::path checkpoint;
  int64_t latest = -1;
  const std::regex step_file(R"(step_(\d+)\.pt)");
  if (fs::exists(run_dir / "checkpoints" / "final.pt")) {
    checkpoint = run_dir / "checkpoints" / "final.pt";  // training finished; the run stopped while evaluating
  } else if (fs::is_directory(run_dir / "checkpoints")) {
    for (const auto& entry : fs::directory_iterator(run_dir / "checkpoints")) {
      std::smatch m;
      const std::string name = entry.path().filename().string();
      if (std::regex_match(name, m, step_file) && std::stoll(m[1]) > latest) {
        latest = std::stoll(m[1]);
        checkpoint = entry.path();
      }
    }
  }
  if (!fs::exists(run_dir / "config.toml"))
    throw config_error(fmt::format("run {}: no run folder with its config.toml at {} (pass the --runs-dir it was written to)",
                                   run_id, run_dir.string()));
  if (checkpoint.empty())
    throw config_error(fmt::format("run {}: {} holds no step checkpoint to resume from (the run had [train] checkpoint_every "
                                   "= 0, or was stopped before the first one); run its experiment again with asg run",
                                   run_id, (run_dir / "checkpoints").string()));
  PluginCatalog catalog;
  catalog.set_policy(stored_config_policy(Registry(options.registry_path), record->id));
  Experiment exp = load_experiment(run_dir / "config.toml", {}, catalog);
  check_run_folder({*record, run_dir}, exp);
  exp.file = record->experiment_path;  // the new attempt records the experiment the run came from
  RunOptions resumed = options;
  resumed.resume = ResumeFrom{run_id, record->attempt, checkpoint};
  resumed.threads = recorded_execution(record->host_json).threads;
  return run_experiment(exp, resumed);
}

EvalOutcome evaluate_run(const std::string& id_or_prefix, const std::string& benchmark, const std::vector<std::string>& overrides,
                         const RunOptions& options) {
  // ---- checks: nothing is recorded until the model is loaded and every plugin built ----------------
  const RecordedRun run = find_recorded_run(id_or_prefix, options);
  const std::string& run_id = run.record.id;
  if (run.record.status != RunStatus::Finished)
    throw config_error(fmt::format("run {} is {}; asg eval evaluates FINISHED runs (asg resume continues the others)", run_id,
                                   status_name(run.record.status)));
  const fs::path config = run.dir / "config.toml";
  if (!fs::exists(config))
    throw config_error(fmt::format("run {}: no run folder with its config.toml at {} (pass the --runs-dir it was written to)",
                                   run_id, run.dir.string()));
  PluginCatalog catalog;
  catalog.set_policy(stored_config_policy(Registry(options.registry_path), run_id));
  check_run_folder(run, load_experiment(config, {}, catalog));
  Experiment exp = load_experiment_under_benchmark(config, benchmark, overrides, catalog);
  if (exp.method_hash != run.record.method_hash && !run.record.method_hash.empty())
    throw config_error(fmt::format("run {}: under benchmark '{}' its model would not be the one it trained (method hash {} "
                                   "against the recorded {}); only the sampler, the metrics and [eval] may change",
                                   run_id, benchmark, exp.method_hash.substr(0, 12), run.record.method_hash.substr(0, 12)));
  check_rank_by(exp);
  const int64_t steps = exp.train.integer("steps");
  const fs::path final_checkpoint = run.dir / "checkpoints" / "final.pt";
  if (steps > 0 && !fs::exists(final_checkpoint))
    throw config_error(fmt::format("run {}: {} is missing; asg eval needs the trained weights the run saved at its end",
                                   run_id, final_checkpoint.string()));

  // The sampling arithmetic of the run's own evaluation: its thread count.
  const RuntimeSettings settings = apply_runtime_settings(exp, recorded_execution(run.record.host_json).threads);
  const uint64_t seed = static_cast<uint64_t>(exp.runtime.integer("seed"));
  const NoiseSchedule schedule = noise_schedule(exp);
  BuiltExperiment built = build_experiment(exp, schedule, seed);
  built.metrics.clear();  // built again below, after the model, as a run builds them after training
  DiffusionTrainer trainer(built.text_encoder, built.backbone, schedule, train_options_of(exp), settings.device,
                           derive_seed(seed, "train.noise"));
  if (built.image_encoder) trainer.set_image_encoder(built.image_encoder);
  if (steps > 0) {
    trainer.load_weights(final_checkpoint.string());  // the EMA weights where there are any: what the run sampled with
  } else if (!exp.train.str("init_checkpoint").empty()) {
    trainer.load_weights(exp.train.str("init_checkpoint"));
  }

  // ---- the result set ----------------------------------------------------------------------------------
  EvalRecorder recorder(exp, run.record, options.registry_path, run.dir, settings);
  EvalOutcome outcome{run_id, recorder.set_id(), recorder.output_dir(), exp.protocol_hash, {}};
  try {
    recorder.info(fmt::format("eval of run {} ({}) under benchmark {} | method {} | protocol {} | seed {} | {} thread{} on {} | "
                              "result set {}",
                              run_id, run.record.name, benchmark, exp.method_hash.substr(0, 12), exp.protocol_hash.substr(0, 12),
                              seed, settings.threads, settings.threads == 1 ? "" : "s", settings.device.str(), recorder.set_id()));
    recorder.info(steps > 0 ? fmt::format("weights: EMA of {} (sha256 {})", final_checkpoint.string(), sha256_file(final_checkpoint))
                            : "weights: the run trained 0 steps; the weights it evaluated");
    DataHealth health(*built.dataset, exp.data.real("max_bad_fraction"),
                      [&recorder](const RejectedSample& s) { recorder.file_only(fmt::format("data: skipped {}: {}", s.id, s.reason)); });
    if (built.autoencoder) {
      const double scale = restore_autoencoder(*built.autoencoder, built.dataset, loader_options_of(exp, settings, seed, &health),
                                               recorder, settings.device, seed, run.dir);
      trainer.set_autoencoder(built.autoencoder, scale);
    }
    SampleWriter samples(recorder, exp.eval.integer("save_gifs"), exp.eval.integer("gif_scale"), built.info.fps);
    built.metrics = build_metrics(exp, built.info, settings.device, seed, built.metric_libraries);
    outcome.results = Evaluator(exp, built, trainer, recorder, seed, &health,
                                StatisticsCache(options.runs_dir / "cache" / "real_statistics"))
                          .run(samples, steps);
    recorder.finish(outcome.results);
  } catch (const std::exception& e) {
    recorder.fail(e);
    throw;
  }
  return outcome;
}

}  // namespace asg
