#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>

#include "asg/stages.h"

namespace asg {

std::map<std::string, torch::Tensor> DataPosition::to_checkpoint() const {
  return {{"data.epoch_rng", epoch_rng}, {"data.cursor", torch::tensor(cursor)}};
}

DataPosition DataPosition::from_checkpoint(const std::map<std::string, torch::Tensor>& run_state, const std::string& file) {
  if (!run_state.count("data.epoch_rng") || !run_state.count("data.cursor"))
    throw data_error(fmt::format("{}: the checkpoint has no data position (run.data.epoch_rng, run.data.cursor); it was "
                                 "not written by `asg run`",
                                 file));
  return DataPosition{run_state.at("data.epoch_rng"), run_state.at("data.cursor").item<int64_t>()};
}

BatchSource::BatchSource(std::shared_ptr<Dataset> dataset, int64_t batch_size, uint64_t order_seed, int64_t prefetch,
                         std::optional<DataPosition> resume_from)
    : dataset_(std::move(dataset)),
      batch_size_(batch_size),
      train_size_(dataset_->size(Split::Train)),
      order_gen_(at::detail::createCPUGenerator(order_seed)),
      prefetch_(prefetch) {
  if (train_size_ == 0) throw internal_error("BatchSource over an empty train split");
  if (resume_from) {
    // Replay the epoch's permutation from its seed state, then stand where the run stood.
    order_gen_.set_state(resume_from->epoch_rng);
    position_.epoch_rng = order_gen_.get_state();
    auto perm = torch::randperm(train_size_, order_gen_, torch::kLong);
    order_.assign(perm.data_ptr<int64_t>(), perm.data_ptr<int64_t>() + train_size_);
    position_.cursor = resume_from->cursor;
  } else {
    position_.cursor = train_size_;  // the first batch starts an epoch
  }
  if (prefetch_ > 0) worker_ = std::thread([this] { work(); });
}

BatchSource::~BatchSource() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  if (worker_.joinable()) worker_.join();
}

TrainBatch BatchSource::produce() {
  std::vector<Sticker> stickers;
  TrainBatch batch;
  for (int64_t i = 0; i < batch_size_; ++i) {
    if (position_.cursor >= train_size_) {  // a fresh permutation of the train split
      position_.epoch_rng = order_gen_.get_state();
      auto perm = torch::randperm(train_size_, order_gen_, torch::kLong);
      order_.assign(perm.data_ptr<int64_t>(), perm.data_ptr<int64_t>() + train_size_);
      position_.cursor = 0;
    }
    stickers.push_back(dataset_->get(Split::Train, order_[position_.cursor++]));
    batch.captions.push_back(stickers.back().caption);
  }
  batch.x0 = to_model_space(stack_frames(stickers));
  batch.after = position_;
  return batch;
}

void BatchSource::work() {
  try {
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        changed_.wait(lock, [&] { return stopping_ || static_cast<int64_t>(ready_.size()) < prefetch_; });
        if (stopping_) return;
      }
      TrainBatch batch = produce();  // outside the lock: this is the work that overlaps training
      {
        std::lock_guard<std::mutex> lock(mutex_);
        ready_.push_back(std::move(batch));
      }
      changed_.notify_all();
    }
  } catch (...) {
    std::lock_guard<std::mutex> lock(mutex_);
    failure_ = std::current_exception();
    changed_.notify_all();
  }
}

TrainBatch BatchSource::next() {
  if (prefetch_ == 0) return produce();
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [&] { return !ready_.empty() || failure_; });
  if (ready_.empty()) std::rethrow_exception(failure_);  // batches made before the failure come first
  TrainBatch batch = std::move(ready_.front());
  ready_.pop_front();
  lock.unlock();
  changed_.notify_all();
  return batch;
}

}  // namespace asg
