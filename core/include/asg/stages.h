// The stages of a run, each with one job. core/src/runner.cpp composes them:
//
//   apply_runtime_settings   global torch state (device, threads, determinism, allocator), in one place
//   build_experiment         plugin objects (asg/build.h)
//   RunRecorder              registry rows, run folder, log, metric points, heartbeat, artifacts, the end
//   BatchSource              the training data order and its position; batches prefetched on a worker
//   TrainLoop                steps: batch -> DiffusionTrainer::step (forward/backward -> gradient hook ->
//                            optimizer -> EMA) -> loss records -> checkpoints (every N steps, on SIGINT/SIGTERM)
//   Evaluator                sampling and metrics; hands every clip to a SampleWriter
//   SampleWriter             sample GIFs, the grid and captions.txt, each recorded as an artifact
//
// A distributed run replaces pieces, not the composition: a BatchSource per rank over its shard, an
// all-reduce as the trainer's gradient hook (asg/trainer.h), the recorder only on rank 0.
// Torch code; host-only (plugins never include it).
#pragma once

#include <torch/torch.h>

#include <condition_variable>
#include <deque>
#include <exception>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "asg/build.h"
#include "asg/experiment.h"
#include "asg/registry.h"
#include "asg/runner.h"
#include "asg/trainer.h"

namespace asg {

// ---- runtime settings ------------------------------------------------------------------------------

struct RuntimeSettings {
  torch::Device device = torch::kCPU;
  int64_t threads = 1;
  bool deterministic = true;
  std::string allocator;  // what keep_freed_memory_for_reuse() did
};

// Applies [runtime] to the process: intra-op threads, deterministic algorithms (and cuBLAS workspace),
// the allocator policy; resolves the device. The only place a run changes global torch state.
// Threads: [runtime] threads, or when that is 0 `threads_when_unset` (RunOptions::threads), else ASG_THREADS,
// else every core. asg::Error(Config) when the device is not available.
RuntimeSettings apply_runtime_settings(const Experiment& experiment, std::optional<int64_t> threads_when_unset = std::nullopt);

// The run's environment as JSON: host, CPU, cores, the settings above, Torch and ASG Lab versions.
// Recorded with the run (registry host_json), never part of its method or protocol hash.
std::string environment_json(const RuntimeSettings& settings);

// ---- recorders -------------------------------------------------------------------------------------

// Where the stages report: console and log lines, metric points, signs of life, and the files they write.
// RunRecorder is a run's; EvalRecorder is a result set's, added to a finished run by `asg eval`.
class RunLog {
 public:
  virtual ~RunLog() = default;
  // The folder samples/ and the log go into: the run's folder, or <run folder>/evals/<set id>.
  virtual const std::filesystem::path& output_dir() const = 0;
  virtual void info(const std::string& line) = 0;       // console and the log file
  virtual void file_only(const std::string& line) = 0;  // the log file only
  virtual void metric(const std::string& key, int64_t step, double value) = 0;
  virtual void flush() = 0;
  virtual void heartbeat() = 0;
  virtual void artifact(const std::filesystem::path& file) = 0;  // a file inside the run's folder
};

// Everything a run writes about itself. Constructing it records the run (QUEUED, then RUNNING once its
// folder, config.toml, run.log and plugin rows exist), so construct it only after the experiment built.
class RunRecorder : public RunLog {
 public:
  RunRecorder(const Experiment& experiment, const RunOptions& options, const RuntimeSettings& settings);
  RunRecorder(const RunRecorder&) = delete;
  RunRecorder& operator=(const RunRecorder&) = delete;

  const std::string& run_id() const { return run_id_; }
  const std::filesystem::path& run_dir() const { return run_dir_; }
  const std::filesystem::path& output_dir() const override { return run_dir_; }
  int64_t attempt() const { return attempt_; }

  void info(const std::string& line) override;       // console and run.log
  void file_only(const std::string& line) override;  // run.log only
  // Buffered; flush() writes the buffer in one transaction (and is a heartbeat).
  void metric(const std::string& key, int64_t step, double value) override;
  void flush() override;
  void heartbeat() override;
  void artifact(const std::filesystem::path& file) override;  // inside run_dir()
  // An earlier attempt's training history up to `up_to_step`, so every step appears once in this run.
  void continue_history(const std::string& earlier_run, int64_t up_to_step);
  // One line of data_skipped.tsv (id, reason), written at once; recorded as an artifact at the end.
  void skipped_sample(const RejectedSample& sample);
  static constexpr const char* kSkippedFile = "data_skipped.tsv";
  // Results, metrics.json and the FINISHED mark.
  void finish(const std::vector<ResultValue>& results);
  // KILLED for an interrupt, FAILED otherwise, keeping whatever was logged. Never throws.
  void fail(const std::exception& error) noexcept;

 private:
  void record_skipped_samples();
  Registry registry_;
  std::string run_id_;
  std::filesystem::path run_dir_;
  int64_t attempt_ = 1;
  std::vector<MetricPoint> pending_;
  std::ofstream log_;
};

// A result set of a FINISHED run: the run's model evaluated under another protocol without retraining (asg
// eval). Constructing it records the set as RUNNING; its samples and eval.log go to <run folder>/evals/<set id>/
// (recorded as the run's artifacts), finish() records the values and FINISHED, fail() FAILED or KILLED. Metric
// points are not history here: the set's values are its results.
class EvalRecorder : public RunLog {
 public:
  EvalRecorder(const Experiment& experiment, const RunRecord& run, const std::filesystem::path& registry_path,
               const std::filesystem::path& run_dir, const RuntimeSettings& settings);
  EvalRecorder(const EvalRecorder&) = delete;
  EvalRecorder& operator=(const EvalRecorder&) = delete;

  int64_t set_id() const { return set_id_; }
  const std::filesystem::path& output_dir() const override { return output_dir_; }
  void info(const std::string& line) override;
  void file_only(const std::string& line) override;
  void metric(const std::string&, int64_t, double) override {}
  void flush() override {}
  void heartbeat() override {}
  void artifact(const std::filesystem::path& file) override;
  void finish(const std::vector<ResultValue>& results);
  void fail(const std::exception& error) noexcept;

 private:
  Registry registry_;
  std::string run_id_;
  std::filesystem::path run_dir_, output_dir_;
  int64_t set_id_ = 0;
  std::ofstream log_;
};

// ---- batch source ----------------------------------------------------------------------------------

// Where the data order stands: enough to continue it exactly, O(1) in the size of the data.
// Random access: the epoch's permutation is replayed from the generator state. Streaming (datasets with
// info().sequential): the stream of epoch `epoch` is reopened and `cursor` samples are skipped (read, not
// decoded).
struct DataPosition {
  torch::Tensor epoch_rng;  // random access: the order generator's state just before the epoch's permutation
  int64_t cursor = 0;       // samples of the current epoch already taken (the next index into the permutation)
  int64_t epoch = -1;       // streaming: the epoch (-1 = random access)
  int64_t random_access_epoch = 0;  // random access: which epoch the current permutation is (0 = the first)

  // "data.epoch_rng", "data.cursor" and "data.random_access_epoch", or "data.epoch" and "data.cursor" when
  // streaming. (A checkpoint from before "data.random_access_epoch" counts as epoch 0.)
  std::map<std::string, torch::Tensor> to_checkpoint() const;
  // From a checkpoint's run.* tensors; asg::Error(Data) naming `file` if they are missing.
  static DataPosition from_checkpoint(const std::map<std::string, torch::Tensor>& run_state, const std::string& file);
};

struct TrainBatch {
  torch::Tensor x0;  // model space [B, C, T, H, W]
  std::vector<std::string> captions;
  torch::Tensor frame_valid;  // [B, T] float, 1 = real frame; undefined when every frame of the batch is real
  DataPosition after;  // the position once this batch is consumed: what a checkpoint after it stores
};

// The run's bad-data account: rows the dataset refused while opening plus samples that failed to decode,
// each reported once (by id) through `report`. The run fails, with the counts, once more than
// max_bad_fraction of all rows (every split plus the refused ones) turned out bad. Thread-safe.
class DataHealth {
 public:
  DataHealth(const Dataset& dataset, double max_bad_fraction, std::function<void(const RejectedSample&)> report);
  // A sample that could not be used; asg::Error(Data) with the counts when the fraction passes the limit.
  void skip(const std::string& id, const std::string& reason);
  int64_t bad() const;
  int64_t rows() const { return rows_; }

 private:
  void check_locked() const;
  mutable std::mutex mutex_;
  std::set<std::string> bad_ids_;
  int64_t rows_ = 0;
  double max_bad_fraction_;
  std::function<void(const RejectedSample&)> report_;
  std::string last_reason_;
};

struct LoaderOptions {
  int64_t batch_size = 1;
  uint64_t order_seed = 0;
  int64_t prefetch_batches = 2;  // batches prepared ahead; 0 = everything on the calling thread
  int64_t workers = 1;           // threads decoding samples when prefetching
  DataHealth* health = nullptr;  // skips (and counts) samples that fail with asg::Error(Data); null = such a sample is an error
};

// The training split in epochs, each a fresh permutation drawn from an order generator seeded once, or,
// for a dataset read sequentially (info().sequential, e.g. tar shards), its stream for that epoch
// (Dataset::open_stream, seeded with order_seed); batch_size samples per batch, stacked into model space. With prefetch_batches > 0, `workers` threads decode samples ahead (at most
// prefetch_batches batches' worth); a batch always takes the next samples in permutation order, so
// batches, their order and their positions never depend on the number of threads or their timing.
// A skipped (bad) sample is replaced by the next one in order.
class BatchSource {
 public:
  BatchSource(std::shared_ptr<Dataset> dataset, LoaderOptions options, std::optional<DataPosition> resume_from = {});
  ~BatchSource();
  BatchSource(const BatchSource&) = delete;
  BatchSource& operator=(const BatchSource&) = delete;

  // The next batch; rethrows what decoding hit (asg::Error(Data) from a dataset, when not skipped).
  TrainBatch next();

 private:
  struct Slot {
    std::string id;                // for the bad-data report
    std::function<Sticker()> read;  // the decoding work
    DataPosition after;
    bool claimed = false, done = false;
    bool fatal = false;  // planning itself failed: the error ends the data, it is not a bad sample
    std::optional<Sticker> sticker;
    std::exception_ptr error;
  };
  Slot plan();  // the next sample of the order; advances position_
  void decode(Slot& slot) const;
  void work();

  std::shared_ptr<Dataset> dataset_;
  LoaderOptions options_;
  int64_t train_size_;
  bool streaming_;
  std::unique_ptr<SampleStream> stream_;  // of position_.epoch, position_.cursor samples in
  at::Generator order_gen_;
  std::vector<int64_t> order_;
  DataPosition position_;  // of the last planned sample
  size_t capacity_;        // most samples planned ahead
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Slot> window_;  // planned samples in order; workers decode them, next() takes from the front
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

// ---- autoencoder -----------------------------------------------------------------------------------

// Latent diffusion's first stage, run before the diffusion model trains:
// - A trainable autoencoder (training().steps > 0) is trained on the training split: its own data order
//   (derive_seed(seed, "autoencoder.order")) and weight-init-independent noise ("autoencoder.global"),
//   AdamW at training().lr with gradient clipping at 1, its loss recorded as "autoencoder/loss" every
//   log_every steps. Its weights and scaling factor then go to <run>/autoencoder.pt atomically (an
//   artifact; the file format the kind header describes). A resumed attempt finds that file in the folder
//   of the attempt it resumes (earlier_run_dir), loads it instead of training again and copies it into its
//   own folder.
// - latent().scaling_factor = 0: measured as 1 / std of the latents of the first 4 training batches of
//   the autoencoder's data order (Rombach et al. 2022, section G).
// Returns the scaling factor and leaves the autoencoder frozen, in eval mode.
double prepare_autoencoder(Autoencoder& autoencoder, std::shared_ptr<Dataset> dataset, LoaderOptions loader,
                           RunLog& log, torch::Device device, uint64_t seed, int64_t log_every,
                           const std::filesystem::path& earlier_run_dir = {});

// asg eval: the autoencoder as the finished run in `run_dir` had it: loaded from its autoencoder.pt when the run
// trained it (asg::Error(Config) naming the file when it is missing), else prepared as the run prepared it (the
// same batches give the same scaling factor). Returns the scaling factor; the autoencoder is left frozen.
double restore_autoencoder(Autoencoder& autoencoder, std::shared_ptr<Dataset> dataset, LoaderOptions loader, RunLog& log,
                           torch::Device device, uint64_t seed, const std::filesystem::path& run_dir);

// ---- train loop ------------------------------------------------------------------------------------

struct TrainLoopOptions {
  int64_t steps = 0;
  int64_t log_every = 25;
  int64_t checkpoint_every = 0;  // 0 = only the final checkpoint
  bool log_grad_norm = false;
  static TrainLoopOptions from(const Params& train);
};

class TrainLoop {
 public:
  TrainLoop(DiffusionTrainer& trainer, BatchSource& batches, RunRecorder& recorder, TrainLoopOptions options);
  // Trains steps start_step + 1 ... steps and writes checkpoints/final.pt (returned). `position` is the
  // data position at start_step (what a resumed checkpoint held; empty for a fresh run). On SIGINT/SIGTERM
  // between steps it saves checkpoints/step_<last>.pt first, then rethrows.
  std::filesystem::path run(int64_t start_step, DataPosition position);

 private:
  std::filesystem::path checkpoint_path(int64_t step) const;
  DiffusionTrainer& trainer_;
  BatchSource& batches_;
  RunRecorder& recorder_;
  TrainLoopOptions options_;
};

// ---- sample writer ---------------------------------------------------------------------------------

// The first `save_gifs` samples as GIFs (samples/NNNN_<caption>.gif, upscaled gif_scale times), a grid of
// the first 16 (samples/grid.gif) and samples/captions.txt; each recorded as an artifact.
class SampleWriter {
 public:
  SampleWriter(RunLog& log, int64_t save_gifs, int64_t gif_scale, double fps);
  void add(int64_t index, const torch::Tensor& clip, const std::string& caption);  // clip [T, 4, H, W]
  void finish();

 private:
  RunLog& log_;
  int64_t save_gifs_, gif_scale_;
  int32_t frame_ms_;
  std::vector<torch::Tensor> grid_;
  std::string captions_;
};

// ---- statistics cache ------------------------------------------------------------------------------

// The real side of distribution metrics (Metric::real_state) on disk, so that a second evaluation under the
// same protocol reads it instead of streaming the real set through the extractor again. One entry per
// metric: <dir>/<key>.pt (the state) and <key>.json (what the key was made of, for people). The key is the
// sha256 of: the protocol hash, the metric's plugin, version and parameters (extractor files by sha256),
// the dataset's plugin, version and parameters (manifest files by sha256), the split and the number of
// real clips. Entries are written atomically; an unreadable one counts as a miss and is rewritten.
class StatisticsCache {
 public:
  explicit StatisticsCache(std::filesystem::path dir);  // empty: no cache (every evaluation computes)
  static std::string key_for(const Experiment& experiment, const PluginSlot& metric, int64_t num_real);
  static std::string description_for(const Experiment& experiment, const PluginSlot& metric, int64_t num_real);
  std::optional<MetricState> load(const std::string& key) const;
  void store(const std::string& key, const MetricState& state, const std::string& description) const;
  const std::filesystem::path& dir() const { return dir_; }

 private:
  std::filesystem::path dir_;
};

// ---- evaluator -------------------------------------------------------------------------------------

// First gives every metric that uses a real set its real side: from `cache`, or by streaming [eval]
// num_real clips of the eval split (in order, wrapping; 0 = num_samples) through update_real() and caching
// the state. Then samples [eval] num_samples clips prompted by the eval split's captions (in order,
// wrapping), feeds every metric and the sample writer, and returns the metrics' results. A metric key must
// be '<metric>' or '<metric>.<part>' (asg::Error(Internal) otherwise).
class Evaluator {
 public:
  // health: skips eval-split samples that fail to decode (the next one in order takes their place).
  Evaluator(const Experiment& experiment, BuiltExperiment& built, DiffusionTrainer& trainer, RunLog& log, uint64_t seed,
            DataHealth* health = nullptr, StatisticsCache cache = StatisticsCache({}));
  std::vector<ResultValue> run(SampleWriter& samples, int64_t at_step);

 private:
  const Experiment& experiment_;
  BuiltExperiment& built_;
  DiffusionTrainer& trainer_;
  RunLog& log_;
  uint64_t seed_;
  DataHealth* health_;
  StatisticsCache cache_;

  // The eval split's sample at position *next (in order, wrapping), skipping bad ones; advances *next.
  Sticker next_reference(int64_t* next, int64_t* skipped_in_a_row);
  void prepare_real_side();
};

}  // namespace asg
