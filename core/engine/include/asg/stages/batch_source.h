// The batch-source stage: the training data order, its resumable position, prefetching on workers, and the
// run's account of bad samples.
// Host-only (plugins never include it); run_experiment (asg/runner.h) composes the stages.
#pragma once

#include <torch/torch.h>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "asg/experiment.h"
#include "asg/kinds/dataset.h"
#include "asg/trainer.h"

namespace asg {

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

}  // namespace asg
