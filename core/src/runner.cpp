#include "asg/runner.h"

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <map>
#include <regex>
#include <thread>

#include "asg/build.h"
#include "asg/interrupt.h"
#include "asg/kinds/metric.h"
#include "asg/media/gif.h"
#include "asg/progress.h"
#include "asg/trainer.h"
#include "asg/util.h"

namespace asg {

namespace fs = std::filesystem;

namespace {

// Console + run.log. Lines before the run directory exists are buffered.
class RunLog {
 public:
  void open(const fs::path& file) {
    out_.open(file, std::ios::app);
    for (const auto& l : pending_) out_ << l << '\n';
    pending_.clear();
    out_.flush();
  }
  void info(const std::string& line) {
    fmt::print("{}\n", line);
    std::fflush(stdout);
    file_only(line);
  }
  void file_only(const std::string& line) {
    if (out_.is_open()) {
      out_ << line << '\n';
      out_.flush();
    } else {
      pending_.push_back(line);
    }
  }

 private:
  std::ofstream out_;
  std::vector<std::string> pending_;
};

std::string run_command(const std::string& cmd) {
  std::array<char, 256> buf{};
  std::string out;
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) return out;
  while (fgets(buf.data(), buf.size(), pipe)) out += buf.data();
  pclose(pipe);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

torch::Device resolve_device(const std::string& requested) {
  if (requested == "cuda" || requested == "auto") {
    if (torch::cuda::is_available()) return torch::Device(torch::kCUDA, 0);
    if (requested == "cuda")
      throw config_error("[runtime] device = \"cuda\": no CUDA device is available to this build of LibTorch (valid here: "
                         "\"cpu\", or \"auto\" to use CUDA only when present)");
  }
  return torch::Device(torch::kCPU);
}

// Frames of clip i of a straight-RGBA batch [B, T, 4, H, W] as 8-bit frames, upscaled `scale` times.
Animation to_animation(const torch::Tensor& clip, int32_t duration_ms, int64_t scale) {
  auto u8 = (clip * 255).round().clamp(0, 255).to(torch::kUInt8);  // [T, 4, H, W]
  if (scale > 1) u8 = u8.repeat_interleave(scale, 2).repeat_interleave(scale, 3);
  u8 = u8.permute({0, 2, 3, 1}).contiguous();  // [T, H, W, 4]
  Animation anim;
  anim.height = static_cast<int32_t>(u8.size(1));
  anim.width = static_cast<int32_t>(u8.size(2));
  for (int64_t t = 0; t < u8.size(0); ++t) {
    auto f = u8[t];
    RgbaFrame frame;
    frame.rgba.assign(f.data_ptr<uint8_t>(), f.data_ptr<uint8_t>() + f.numel());
    frame.duration_ms = duration_ms;
    anim.frames.push_back(std::move(frame));
  }
  return anim;
}

// Tiles clips [N, T, 4, H, W] into a grid clip [T, 4, rows*H, cols*W] with 1-pixel transparent gutters.
torch::Tensor tile(const torch::Tensor& clips, int64_t cols) {
  int64_t n = clips.size(0), t = clips.size(1), h = clips.size(3), w = clips.size(4);
  int64_t rows = (n + cols - 1) / cols;
  auto grid = torch::zeros({t, 4, rows * (h + 1), cols * (w + 1)});
  for (int64_t i = 0; i < n; ++i) {
    int64_t r = i / cols, c = i % cols;
    grid.narrow(2, r * (h + 1), h).narrow(3, c * (w + 1), w).copy_(clips[i]);
  }
  return grid;
}

std::string slug(const std::string& caption) {
  std::string out;
  for (char c : caption) {
    if (std::isalnum(static_cast<unsigned char>(c))) out += static_cast<char>(std::tolower(c));
    else if (!out.empty() && out.back() != '-') out += '-';
    if (out.size() >= 48) break;
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out.empty() ? "unconditional" : out;
}

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

}  // namespace

std::string host_info_json(const std::string& device, int64_t threads) {
  nlohmann::json j;
  std::string cpu;
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.rfind("model name", 0) == 0) {
      cpu = line.substr(line.find(':') + 2);
      break;
    }
  }
  char host[256] = {0};
  gethostname(host, sizeof(host) - 1);
  j["hostname"] = host;
  j["cpu"] = cpu;
  j["cores"] = std::thread::hardware_concurrency();
  j["threads"] = threads;
  j["torch"] = fmt::format("{}.{}.{}", TORCH_VERSION_MAJOR, TORCH_VERSION_MINOR, TORCH_VERSION_PATCH);
  j["device"] = device;
  j["cuda_available"] = torch::cuda::is_available();
  j["asg_plugin_api"] = fmt::format("{}.{}", kPluginApiMajor, kPluginApiMinor);
  return j.dump();
}

GitState git_state(const fs::path& dir) {
  GitState g;
  std::string d = shell_quote(dir.empty() ? "." : dir.string());
  g.commit = run_command("git -C " + d + " rev-parse HEAD 2>/dev/null");
  if (!g.commit.empty()) g.dirty = !run_command("git -C " + d + " status --porcelain --untracked-files=no 2>/dev/null").empty();
  return g;
}

RunOutcome run_experiment(const Experiment& exp, const RunOptions& options) {
  RunLog log;
  check_rank_by(exp);

  // ---- runtime set-up and plugin construction: nothing is recorded until this succeeds ----------
  const uint64_t seed = static_cast<uint64_t>(exp.runtime.integer("seed"));
  const bool deterministic = exp.runtime.boolean("deterministic");
  const torch::Device device = resolve_device(exp.runtime.str("device"));
  int64_t threads = exp.runtime.integer("threads");
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  torch::set_num_threads(static_cast<int>(threads));
  const std::string malloc_policy = keep_freed_memory_for_reuse();
  if (deterministic) {
    setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8", 0);
    at::globalContext().setDeterministicAlgorithms(true, false);
    at::globalContext().setDeterministicCuDNN(true);
    at::globalContext().setBenchmarkCuDNN(false);
  }
  NoiseSchedule schedule = noise_schedule(exp);
  BuiltExperiment built = build_experiment(exp, schedule, seed);
  // What plugins draw from the global generator while training (dropout masks) follows the run seed too.
  torch::manual_seed(derive_seed(seed, "train.global"));
  DiffusionTrainer trainer(built.text_encoder, built.backbone, schedule, TrainOptions::from(exp.train), device,
                           derive_seed(seed, "train.noise"));
  const std::string& init_checkpoint = exp.train.str("init_checkpoint");
  std::string init_checkpoint_sha256;
  if (!init_checkpoint.empty()) {
    trainer.load_weights(init_checkpoint);
    init_checkpoint_sha256 = sha256_file(init_checkpoint);
  }
  // Resuming: the whole training state, and the data position, from the earlier attempt's checkpoint.
  int64_t start_step = 0;
  std::map<std::string, torch::Tensor> resumed_state;
  if (options.resume) start_step = trainer.load_train_state(options.resume->checkpoint.string(), &resumed_state);

  // ---- record the run -------------------------------------------------------------------------
  Registry registry(options.registry_path);
  GitState git = git_state(exp.file.parent_path());
  NewRun record;
  record.name = exp.name;
  record.experiment_path = exp.file.string();
  record.benchmark = exp.benchmark.str("name");
  record.rank_by = exp.benchmark.str("rank_by");
  record.config_hash = exp.config_hash;
  record.config_text = exp.resolved_toml;
  record.seed = static_cast<int64_t>(seed);
  record.git_commit = git.commit;
  record.git_dirty = git.dirty;
  record.host_json = host_info_json(device.str(), threads);
  if (options.resume) {
    record.parent_run_id = options.resume->run_id;
    record.attempt = options.resume->attempt + 1;
  }
  RunOutcome outcome;
  outcome.run_id = registry.create_run(record);
  outcome.run_dir = options.runs_dir / outcome.run_id;
  const std::string& run_id = outcome.run_id;

  std::vector<PluginUse> uses;
  for (const auto& slot : exp.slots) {
    uses.push_back(PluginUse{slot.section, slot.kind, slot.plugin, slot.record->factory.version,
                             slot.record->library_path.string(), slot.record->library_sha256});
  }

  std::vector<MetricPoint> pending;  // flushed in one transaction every log_every steps
  auto flush = [&] {
    registry.log_metrics(run_id, pending);
    pending.clear();
  };
  auto add_artifact = [&](const fs::path& file) {
    registry.add_artifact(run_id, Artifact{fs::relative(file, outcome.run_dir).string(), sha256_file(file),
                                           static_cast<int64_t>(fs::file_size(file))});
  };

  try {
    registry.record_plugins(run_id, uses);
    fs::create_directories(outcome.run_dir / "checkpoints");
    fs::create_directories(outcome.run_dir / "samples");
    log.open(outcome.run_dir / "run.log");
    write_text_file_atomic(outcome.run_dir / "config.toml", exp.resolved_toml);
    registry.mark_running(run_id);

    log.info(fmt::format("run {} ({}): {} | config {} | seed {} | {} threads on {}{}", run_id, exp.name,
                         exp.file.string(), exp.config_hash.substr(0, 12), seed, threads, device.str(),
                         deterministic ? " | deterministic" : ""));
    for (const auto& u : uses) log.file_only(fmt::format("plugin {} = {} {} ({})", u.slot, u.name, u.version, u.library));
    log.file_only(malloc_policy);
    if (!init_checkpoint.empty())
      log.info(fmt::format("weights from {} (sha256 {})", init_checkpoint, init_checkpoint_sha256));
    log.info(fmt::format("model: {} trainable parameters; data: {} frames of {}x{} RGBA", trainer.parameter_count(),
                         built.info.frames, built.info.height, built.info.width));
    if (options.resume) {
      log.info(fmt::format("resuming run {} (attempt {}) from {} at step {}", options.resume->run_id, record.attempt,
                           options.resume->checkpoint.string(), start_step));
      // The earlier attempt's history up to the checkpoint: every step appears once in this run.
      std::vector<MetricPoint> earlier;
      for (const auto& p : registry.metric_history(options.resume->run_id))
        if (p.step <= start_step && p.key.rfind("train/", 0) == 0) earlier.push_back(p);
      registry.log_metrics(run_id, earlier);
    }

    // ---- training ------------------------------------------------------------------------------
    const int64_t steps = exp.train.integer("steps");
    const int64_t batch_size = exp.train.integer("batch_size");
    const int64_t log_every = exp.train.integer("log_every");
    const int64_t checkpoint_every = exp.train.integer("checkpoint_every");
    if (steps > 0) {
      const int64_t train_size = built.dataset->size(Split::Train);
      at::Generator order_gen = at::detail::createCPUGenerator(derive_seed(seed, "train.order"));
      std::vector<int64_t> order;
      int64_t cursor = train_size;
      torch::Tensor epoch_rng;  // order_gen's state just before this epoch's permutation
      auto new_epoch = [&] {  // a fresh permutation of the train split
        epoch_rng = order_gen.get_state();
        auto perm = torch::randperm(train_size, order_gen, torch::kLong);
        order.assign(perm.data_ptr<int64_t>(), perm.data_ptr<int64_t>() + train_size);
        cursor = 0;
      };
      if (options.resume) {
        if (!resumed_state.count("data.epoch_rng") || !resumed_state.count("data.cursor"))
          throw data_error(fmt::format("{}: the checkpoint has no data position (run.data.epoch_rng, run.data.cursor); it "
                                       "was not written by `asg run`",
                                       options.resume->checkpoint.string()));
        // Replay the epoch's permutation from its seed state, then stand where the run stood.
        order_gen.set_state(resumed_state.at("data.epoch_rng"));
        new_epoch();
        cursor = resumed_state.at("data.cursor").item<int64_t>();
      }
      // What a checkpoint needs besides the trainer's state to continue the data order exactly: O(1) in
      // the size of the data.
      auto data_position = [&] {
        return std::map<std::string, torch::Tensor>{{"data.epoch_rng", epoch_rng}, {"data.cursor", torch::tensor(cursor)}};
      };
      Progress progress("train", steps, [&](const std::string& l) { log.file_only(l); });
      double loss_avg = 0;
      int64_t in_avg = 0;
      for (int64_t step = start_step + 1; step <= steps; ++step) {
        try {
          throw_if_interrupted();
        } catch (const Error&) {
          // SIGINT/SIGTERM between steps: keep what was trained, so `asg resume` continues from here.
          if (step - 1 > start_step) {
            const fs::path file = outcome.run_dir / "checkpoints" / fmt::format("step_{:07}.pt", step - 1);
            trainer.save_checkpoint(file.string(), step - 1, data_position());
            log.info(fmt::format("interrupted after step {}: saved {} (asg resume {} continues from it)", step - 1,
                                 file.string(), run_id));
          }
          throw;
        }
        std::vector<Sticker> stickers;
        std::vector<std::string> captions;
        for (int64_t i = 0; i < batch_size; ++i) {
          if (cursor >= train_size) new_epoch();
          stickers.push_back(built.dataset->get(Split::Train, order[cursor++]));
          captions.push_back(stickers.back().caption);
        }
        StepResult r = trainer.step(to_model_space(stack_frames(stickers)), captions);
        if (!std::isfinite(r.loss))
          throw data_error(fmt::format("training diverged: loss is {} at step {} (lower [train] lr or enable grad_clip)", r.loss, step));
        loss_avg += r.loss;
        ++in_avg;
        if (step % log_every == 0 || step == steps) {
          pending.push_back({"train/loss", step, loss_avg / in_avg, now_ms()});
          pending.push_back({"train/lr", step, r.lr, now_ms()});
          if (exp.train.real("grad_clip") > 0) pending.push_back({"train/grad_norm", step, r.grad_norm, now_ms()});
          flush();
          loss_avg = 0;
          in_avg = 0;
        }
        progress.update(step, fmt::format("loss {:.4f}", r.loss));
        if (checkpoint_every > 0 && step % checkpoint_every == 0 && step != steps)
          trainer.save_checkpoint((outcome.run_dir / "checkpoints" / fmt::format("step_{:07}.pt", step)).string(), step,
                                  data_position());
      }
      progress.finish();
      fs::path ckpt = outcome.run_dir / "checkpoints" / "final.pt";
      trainer.save_checkpoint(ckpt.string(), steps, data_position());
      add_artifact(ckpt);
      trainer.use_ema_weights();
    } else {
      log.info(init_checkpoint.empty() ? "train: steps = 0, evaluating the untrained model"
                                       : "train: steps = 0, evaluating the checkpoint's weights");
    }

    // ---- sampling and evaluation ---------------------------------------------------------------
    const int64_t num_samples = exp.eval.integer("num_samples");
    const int64_t eval_batch = exp.eval.integer("batch_size");
    const int64_t save_gifs = exp.eval.integer("save_gifs");
    const int64_t gif_scale = exp.eval.integer("gif_scale");
    const Split split = split_from_name(exp.eval.str("split"));
    const int64_t split_size = built.dataset->size(split);
    const int32_t frame_ms = built.info.fps > 0 ? static_cast<int32_t>(std::lround(1000.0 / built.info.fps)) : 100;
    at::Generator sample_gen = at::detail::createCPUGenerator(derive_seed(seed, "eval.sample"));
    const std::vector<int64_t> clip_shape = {4, built.info.frames, built.info.height, built.info.width};
    const int64_t batches = (num_samples + eval_batch - 1) / eval_batch;
    Progress progress("sample", batches * built.sampler->num_steps(), [&](const std::string& l) { log.file_only(l); });
    std::vector<torch::Tensor> kept;  // for the grid
    std::string captions_txt;
    for (int64_t start = 0, b = 0; start < num_samples; start += eval_batch, ++b) {
      registry.heartbeat(run_id);  // sampling logs no metrics; say it is alive (asg runs gc)
      int64_t n = std::min(eval_batch, num_samples - start);
      std::vector<Sticker> refs;
      std::vector<std::string> captions;
      for (int64_t i = 0; i < n; ++i) {
        refs.push_back(built.dataset->get(split, (start + i) % split_size));
        captions.push_back(refs.back().caption);
      }
      torch::Tensor clips = trainer.sample(*built.sampler, captions, clip_shape, sample_gen, [&](int64_t i, int64_t) {
        throw_if_interrupted();
        progress.update(b * built.sampler->num_steps() + i);
      });
      for (auto& [slot, metric] : built.metrics) metric->update(clips, refs);
      for (int64_t i = 0; i < n; ++i) {
        int64_t index = start + i;
        if (index >= save_gifs) break;
        fs::path gif = outcome.run_dir / "samples" / fmt::format("{:04}_{}.gif", index, slug(captions[i]));
        write_gif(gif, to_animation(clips[i], frame_ms, gif_scale));
        add_artifact(gif);
        captions_txt += fmt::format("{}\t{}\n", gif.filename().string(), captions[i]);
        if (kept.size() < 16) kept.push_back(clips[i]);
      }
    }
    progress.finish();
    if (!kept.empty()) {
      fs::path grid = outcome.run_dir / "samples" / "grid.gif";
      write_gif(grid, to_animation(tile(torch::stack(kept), 4), frame_ms, std::max<int64_t>(1, gif_scale / 2)));
      add_artifact(grid);
      write_text_file_atomic(outcome.run_dir / "samples" / "captions.txt", captions_txt);
      add_artifact(outcome.run_dir / "samples" / "captions.txt");
    }

    // ---- results -------------------------------------------------------------------------------
    nlohmann::json metrics_json = nlohmann::json::object();
    for (auto& [slot, metric] : built.metrics) {
      for (const MetricValue& v : metric->compute()) {
        if (v.key != slot->plugin && v.key.rfind(slot->plugin + ".", 0) != 0)
          throw internal_error(fmt::format("metric '{}' reported key '{}'; keys must be '{}' or start with '{}.'",
                                           slot->plugin, v.key, slot->plugin, slot->plugin));
        outcome.results.push_back(ResultValue{v.key, v.value, v.higher_is_better});
        pending.push_back({"eval/" + v.key, steps, v.value, now_ms()});
        metrics_json[v.key] = v.value;
        log.info(fmt::format("  {:<32} {:>10.4f}  ({} is better)", v.key, v.value, v.higher_is_better ? "higher" : "lower"));
      }
    }
    flush();
    registry.set_results(run_id, outcome.results);
    write_text_file_atomic(outcome.run_dir / "metrics.json", metrics_json.dump(2) + "\n");
    add_artifact(outcome.run_dir / "metrics.json");
    add_artifact(outcome.run_dir / "config.toml");
    registry.mark_ended(run_id, RunStatus::Finished);
    log.info(fmt::format("run {} FINISHED; outputs in {}", run_id, outcome.run_dir.string()));
  } catch (const std::exception& e) {
    const auto* err = dynamic_cast<const Error*>(&e);
    bool killed = err && err->kind() == ErrorKind::Interrupted;
    try {
      flush();  // keep whatever history was logged
      registry.mark_ended(run_id, killed ? RunStatus::Killed : RunStatus::Failed, e.what());
    } catch (const std::exception& inner) {
      fmt::print(stderr, "asg: could not record the end of run {}: {}\n", run_id, inner.what());
    }
    log.file_only(fmt::format("run {} {}: {}", run_id, killed ? "KILLED" : "FAILED", e.what()));
    throw;
  }
  return outcome;
}

RunOutcome resume_run(const std::string& run_id, const RunOptions& options) {
  if (!fs::exists(options.registry_path))
    throw config_error(fmt::format("{}: no registry here (pass --registry PATH)", options.registry_path.string()));
  std::optional<RunRecord> record;
  {
    Registry registry(options.registry_path);
    record = registry.find_run(run_id);
    if (!record)
      throw config_error(fmt::format("{}: no run '{}' (asg runs --registry {} lists them)", options.registry_path.string(),
                                     run_id, options.registry_path.string()));
    if (record->status == RunStatus::Running || record->status == RunStatus::Queued) {
      registry.collect_dead_runs(30 * 60 * 1000);  // a run whose process is gone cannot say so itself
      record = registry.find_run(run_id);
    }
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
  Experiment exp = load_experiment(run_dir / "config.toml", {}, catalog);
  if (exp.config_hash != record->config_hash)
    throw config_error(fmt::format("run {}: {} has config hash {} but the registry recorded {}; the run folder does not "
                                   "belong to this run",
                                   run_id, (run_dir / "config.toml").string(), exp.config_hash.substr(0, 12),
                                   record->config_hash.substr(0, 12)));
  exp.file = record->experiment_path;  // the new attempt records the experiment the run came from
  RunOptions resumed = options;
  resumed.resume = ResumeFrom{run_id, record->attempt, checkpoint};
  return run_experiment(exp, resumed);
}

}  // namespace asg
