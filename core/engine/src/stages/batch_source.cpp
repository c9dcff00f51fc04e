#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <fmt/format.h>

#include "asg/stages/batch_source.h"

namespace asg {

namespace {

// A decoding worker runs its tensor ops on one thread. Without this, each worker's first parallel op starts
// an OpenMP team of its own; once the process holds more OpenMP threads than cores, libgomp stops spinning
// between parallel regions and puts every training thread to sleep and wakes it again hundreds of times a
// step (on 2 cores this made a quickstart step 1.5x slower than the same step without a loader). Only this
// thread's OpenMP setting changes: at::set_num_threads would also change the process-wide default. The
// OpenMP runtime is the one LibTorch loaded, found by name; a LibTorch without OpenMP has nothing to limit.
void run_tensor_ops_on_this_thread_only() {
  // LibTorch's own per-thread set-up first, or it would undo the next line. at::get_num_threads runs it inside
  // LibTorch: the header's inline lazy_init_num_threads would mark only this library's copy of its flag.
  (void)at::get_num_threads();
  using SetThreads = void (*)(int);
  if (auto set_threads = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "omp_set_num_threads"))) set_threads(1);
}

}  // namespace

std::map<std::string, torch::Tensor> DataPosition::to_checkpoint() const {
  if (epoch >= 0) return {{"data.epoch", torch::tensor(epoch)}, {"data.cursor", torch::tensor(cursor)}};
  return {{"data.epoch_rng", epoch_rng}, {"data.cursor", torch::tensor(cursor)}, {"data.random_access_epoch", torch::tensor(random_access_epoch)}};
}

DataPosition DataPosition::from_checkpoint(const std::map<std::string, torch::Tensor>& run_state, const std::string& file) {
  if ((!run_state.count("data.epoch_rng") && !run_state.count("data.epoch")) || !run_state.count("data.cursor"))
    throw data_error(fmt::format("{}: the checkpoint has no data position (run.data.epoch_rng, run.data.cursor); it was "
                                 "not written by `asg run`",
                                 file));
  DataPosition p;
  p.cursor = run_state.at("data.cursor").item<int64_t>();
  if (run_state.count("data.epoch")) p.epoch = run_state.at("data.epoch").item<int64_t>();
  else p.epoch_rng = run_state.at("data.epoch_rng");
  if (run_state.count("data.random_access_epoch")) p.random_access_epoch = run_state.at("data.random_access_epoch").item<int64_t>();
  return p;
}

DataHealth::DataHealth(const Dataset& dataset, double max_bad_fraction, std::function<void(const RejectedSample&)> report)
    : max_bad_fraction_(max_bad_fraction), report_(std::move(report)) {
  const std::vector<RejectedSample> rejected = dataset.rejected();
  rows_ = static_cast<int64_t>(rejected.size()) + dataset.size(Split::Train) + dataset.size(Split::Validation) +
          dataset.size(Split::Test);
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& r : rejected) {
    if (!bad_ids_.insert(r.id).second) continue;
    last_reason_ = r.reason;
    if (report_) report_(r);
  }
  check_locked();
}

void DataHealth::skip(const std::string& id, const std::string& reason) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!bad_ids_.insert(id).second) return;  // the same bad file again, in a later epoch
  last_reason_ = reason;
  if (report_) report_(RejectedSample{id, reason});
  check_locked();
}

int64_t DataHealth::bad() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return static_cast<int64_t>(bad_ids_.size());
}

void DataHealth::check_locked() const {
  const auto bad = static_cast<int64_t>(bad_ids_.size());
  if (rows_ == 0 || static_cast<double>(bad) <= max_bad_fraction_ * static_cast<double>(rows_)) return;
  throw data_error(fmt::format("{} of {} samples ({:.2f}%) are bad, over [data] max_bad_fraction = {} ({:.2f}%); the "
                               "latest: {} (every skipped sample and its reason is in the run's data_skipped.tsv)",
                               bad, rows_, 100.0 * bad / rows_, max_bad_fraction_, 100.0 * max_bad_fraction_, last_reason_));
}

BatchSource::BatchSource(std::shared_ptr<Dataset> dataset, LoaderOptions options, std::optional<DataPosition> resume_from)
    : dataset_(std::move(dataset)),
      options_(options),
      train_size_(dataset_->size(Split::Train)),
      streaming_(dataset_->info().sequential),
      order_gen_(at::detail::createCPUGenerator(options.order_seed)) {
  if (train_size_ == 0) throw internal_error("BatchSource over an empty train split");
  if (options_.batch_size < 1) throw internal_error("BatchSource: batch_size < 1");
  if (resume_from && (resume_from->epoch >= 0) != streaming_)
    throw data_error(fmt::format("the checkpoint's data position is for a {} dataset, but [dataset] is read {} (was the "
                                 "dataset plugin changed?)",
                                 resume_from->epoch >= 0 ? "streamed" : "random-access", streaming_ ? "as a stream" : "by index"));
  if (streaming_) {
    position_.epoch = resume_from ? resume_from->epoch : 0;
    position_.cursor = 0;
    stream_ = dataset_->open_stream(Split::Train, StreamSlice{}, position_.epoch, options_.order_seed);
    // Stand where the run stood: the epoch's stream again, its first `cursor` samples read and dropped.
    const int64_t skip = resume_from ? resume_from->cursor : 0;
    for (; position_.cursor < skip; ++position_.cursor)
      if (!stream_->next())
        throw data_error(fmt::format("the checkpoint's data position (epoch {}, sample {}) is past the end of that epoch's "
                                     "stream ({} samples): the dataset changed since",
                                     position_.epoch, skip, position_.cursor));
  } else if (resume_from) {
    // Replay the epoch's permutation from its seed state, then stand where the run stood.
    order_gen_.set_state(resume_from->epoch_rng);
    position_.epoch_rng = order_gen_.get_state();
    auto perm = torch::randperm(train_size_, order_gen_, torch::kLong);
    order_.assign(perm.data_ptr<int64_t>(), perm.data_ptr<int64_t>() + train_size_);
    position_.cursor = resume_from->cursor;
    position_.random_access_epoch = resume_from->random_access_epoch;
  } else {
    position_.cursor = train_size_;  // the first sample starts an epoch
  }
  const int64_t workers = std::max<int64_t>(1, options_.workers);
  capacity_ = static_cast<size_t>(std::max<int64_t>(1, options_.prefetch_batches) * options_.batch_size + workers);
  if (options_.prefetch_batches > 0)
    for (int64_t i = 0; i < workers; ++i) workers_.emplace_back([this] { work(); });
}

BatchSource::~BatchSource() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  for (auto& worker : workers_) worker.join();
}

BatchSource::Slot BatchSource::plan() {
  Slot slot;
  if (streaming_) {
    for (;;) {
      if (auto item = stream_->next()) {
        ++position_.cursor;
        slot.id = std::move(item->id);
        slot.read = std::move(item->decode);
        break;
      }
      if (position_.cursor == 0)  // a whole epoch without a sample
        throw data_error(fmt::format("the train split's stream for epoch {} yields no samples", position_.epoch));
      ++position_.epoch;  // the epoch is over: the next one's stream, in its own order
      position_.cursor = 0;
      stream_ = dataset_->open_stream(Split::Train, StreamSlice{}, position_.epoch, options_.order_seed);
    }
    slot.after = position_;
    return slot;
  }
  if (position_.cursor >= train_size_) {  // a fresh permutation of the train split
    if (!order_.empty()) ++position_.random_access_epoch;
    position_.epoch_rng = order_gen_.get_state();
    auto perm = torch::randperm(train_size_, order_gen_, torch::kLong);
    order_.assign(perm.data_ptr<int64_t>(), perm.data_ptr<int64_t>() + train_size_);
    position_.cursor = 0;
  }
  const int64_t index = order_[position_.cursor++];
  slot.id = fmt::format("train/{}", index);
  slot.read = [dataset = dataset_.get(), index, epoch = position_.random_access_epoch] {
    return dataset->get_in_epoch(Split::Train, index, epoch);
  };
  slot.after = position_;
  return slot;
}

void BatchSource::decode(Slot& slot) const {
  try {
    slot.sticker = slot.read();
  } catch (...) {
    slot.error = std::current_exception();
  }
  slot.read = nullptr;  // whatever it held (a stream item's bytes) is no longer needed
}

void BatchSource::work() {
  run_tensor_ops_on_this_thread_only();
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    Slot* slot = nullptr;
    changed_.wait(lock, [&] {
      if (stopping_) return true;
      for (auto& s : window_)
        if (!s.claimed) return (slot = &s), true;
      return window_.size() < capacity_;
    });
    if (stopping_) return;
    if (!slot) {
      // Planning is cheap; it stays in order under the lock. If it fails (a dataset's stream broke), the
      // failure takes the next place in the order and nothing is planned after it.
      Slot planned;
      try {
        planned = plan();
      } catch (...) {
        planned.error = std::current_exception();
        planned.fatal = true;
        planned.claimed = planned.done = true;
        window_.push_back(std::move(planned));
        capacity_ = 0;  // no more planning
        changed_.notify_all();
        continue;
      }
      slot = &window_.emplace_back(std::move(planned));
    }
    slot->claimed = true;
    // Decoding is the work that overlaps training. Deque elements keep their address while others are
    // added at the back or taken from the front, and only next() takes, once a slot is done.
    lock.unlock();
    Slot decoded;
    decoded.read = std::move(slot->read);
    decode(decoded);
    lock.lock();
    slot->sticker = std::move(decoded.sticker);
    slot->error = decoded.error;
    slot->done = true;
    changed_.notify_all();
  }
}

TrainBatch BatchSource::next() {
  std::vector<Sticker> stickers;
  TrainBatch batch;
  while (static_cast<int64_t>(stickers.size()) < options_.batch_size) {
    Slot slot;
    if (workers_.empty()) {
      slot = plan();
      decode(slot);
    } else {
      std::unique_lock<std::mutex> lock(mutex_);
      changed_.wait(lock, [&] { return !window_.empty() && window_.front().done; });
      slot = std::move(window_.front());
      window_.pop_front();
      lock.unlock();
      changed_.notify_all();
    }
    batch.after = slot.after;
    if (slot.error) {
      // A bad file is skipped (and counted) when the run tolerates some; anything else is an error.
      try {
        std::rethrow_exception(slot.error);
      } catch (const Error& e) {
        if (slot.fatal || e.kind() != ErrorKind::Data || !options_.health) throw;
        options_.health->skip(slot.id, e.what());
        continue;
      }
    }
    batch.captions.push_back(slot.sticker->caption);
    stickers.push_back(std::move(*slot.sticker));
  }
  batch.x0 = to_model_space(stack_frames(stickers));
  bool masked = false;
  for (const auto& s : stickers) masked = masked || s.frame_valid.defined();
  if (masked) {
    std::vector<torch::Tensor> valid;
    for (const auto& s : stickers)
      valid.push_back(s.frame_valid.defined() ? s.frame_valid.to(torch::kFloat) : torch::ones({s.frames.size(0)}));
    batch.frame_valid = torch::stack(valid);
  }
  return batch;
}

}  // namespace asg
