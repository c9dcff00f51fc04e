#include <ATen/CPUGeneratorImpl.h>
#include <cmath>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "asg/hash.h"
#include "asg/interrupt.h"
#include "asg/progress.h"
#include "asg/stages/evaluator.h"
#include "asg/names.h"
#include "asg/files.h"

namespace asg {

namespace fs = std::filesystem;

// ---- statistics cache ------------------------------------------------------------------------------

StatisticsCache::StatisticsCache(fs::path dir) : dir_(std::move(dir)) {}

std::string StatisticsCache::description_for(const Experiment& exp, const PluginSlot& metric, int64_t num_real) {
  const nlohmann::json key = {
      {"format", 1},
      {"protocol_hash", exp.protocol_hash},
      {"metric", nlohmann::json::parse(slot_identity(metric, false))},
      {"dataset", nlohmann::json::parse(slot_identity(exp.slot("dataset"), false))},
      {"split", exp.eval.str("split")},
      {"num_real", num_real},
  };
  return key.dump();
}

std::string StatisticsCache::key_for(const Experiment& exp, const PluginSlot& metric, int64_t num_real) {
  return sha256_hex(description_for(exp, metric, num_real));
}

std::optional<MetricState> StatisticsCache::load(const std::string& key) const {
  if (dir_.empty()) return std::nullopt;
  const fs::path file = dir_ / (key + ".pt");
  if (!fs::exists(file)) return std::nullopt;
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(file.string());
    MetricState state;
    for (const std::string& name : archive.keys()) {
      torch::Tensor t;
      archive.read(name, t);
      state[name] = t;
    }
    return state;
  } catch (const std::exception&) {
    return std::nullopt;  // unreadable (truncated by a crash before rename, another version): a miss
  }
}

void StatisticsCache::store(const std::string& key, const MetricState& state, const std::string& description) const {
  if (dir_.empty()) return;
  fs::create_directories(dir_);
  torch::serialize::OutputArchive archive;
  for (const auto& [name, tensor] : state) archive.write(name, tensor.to(torch::kCPU));
  save_archive_atomically(archive, (dir_ / (key + ".pt")).string());
  write_text_file_atomic(dir_ / (key + ".json"), nlohmann::json::parse(description).dump(2) + "\n");
}

// ---- evaluator -------------------------------------------------------------------------------------

Evaluator::Evaluator(const Experiment& experiment, BuiltExperiment& built, DiffusionTrainer& trainer, RunLog& log,
                     uint64_t seed, DataHealth* health, StatisticsCache cache)
    : experiment_(experiment),
      built_(built),
      trainer_(trainer),
      log_(log),
      seed_(seed),
      health_(health),
      cache_(std::move(cache)) {}

Sticker Evaluator::next_reference(int64_t* next, int64_t* skipped_in_a_row) {
  const Split split = split_from_name(experiment_.eval.str("split"));
  const int64_t split_size = built_.dataset->size(split);
  while (true) {
    const int64_t index = (*next)++ % split_size;
    try {
      Sticker s = built_.dataset->get(split, index);
      *skipped_in_a_row = 0;
      return s;
    } catch (const Error& e) {
      if (e.kind() != ErrorKind::Data || !health_) throw;
      health_->skip(fmt::format("{}/{}", split_name(split), index), e.what());
      if (++*skipped_in_a_row >= split_size)
        throw data_error(fmt::format("no sample of the {} split can be read (the latest: {})", split_name(split), e.what()));
    }
  }
}

void Evaluator::prepare_real_side() {
  const Params& eval = experiment_.eval;
  const int64_t num_real = eval.integer("num_real") > 0 ? eval.integer("num_real") : eval.integer("num_samples");
  struct Pending {
    const PluginSlot* slot;
    Metric* metric;
    std::string key;
  };
  std::vector<Pending> pending;
  for (auto& [slot, metric] : built_.metrics) {
    if (!metric->uses_real_set()) continue;
    const std::string key = StatisticsCache::key_for(experiment_, *slot, num_real);
    if (auto state = cache_.load(key)) {
      metric->load_real_state(*state);
      log_.info(fmt::format("real set: {} statistics of {} {} clips from the cache ({})", slot->plugin, num_real,
                                 eval.str("split"), (cache_.dir() / (key + ".pt")).string()));
    } else {
      pending.push_back({slot, metric.get(), key});
    }
  }
  if (pending.empty()) return;
  const int64_t batch_size = eval.integer("batch_size");
  Progress progress("real set", num_real, [&](const std::string& l) { log_.file_only(l); });
  int64_t next = 0, skipped_in_a_row = 0;
  for (int64_t start = 0; start < num_real; start += batch_size) {
    throw_if_interrupted();
    log_.heartbeat();
    const int64_t n = std::min(batch_size, num_real - start);
    std::vector<Sticker> batch;
    for (int64_t i = 0; i < n; ++i) batch.push_back(next_reference(&next, &skipped_in_a_row));
    for (const Pending& p : pending) p.metric->update_real(batch, start);
    progress.update(start + n);
  }
  progress.finish();
  std::vector<std::string> names;
  for (const Pending& p : pending) {
    cache_.store(p.key, p.metric->real_state(), StatisticsCache::description_for(experiment_, *p.slot, num_real));
    names.push_back(p.slot->plugin);
  }
  log_.info(fmt::format("real set: {} {} clips through {}{}", num_real, eval.str("split"), join(names, ", "),
                             cache_.dir().empty() ? "" : fmt::format(" (statistics cached in {})", cache_.dir().string())));
}

std::vector<ResultValue> Evaluator::run(SampleWriter& samples, int64_t at_step) {
  const Params& eval = experiment_.eval;
  const int64_t num_samples = eval.integer("num_samples");
  const int64_t batch_size = eval.integer("batch_size");
  const DatasetInfo& info = built_.info;
  prepare_real_side();
  at::Generator sample_gen = at::detail::createCPUGenerator(derive_seed(seed_, "eval.sample"));
  const std::vector<int64_t>& clip_shape = built_.diffusion_shape;
  const ConditionTask task = condition_task_names().parse(eval.str("task"), "[eval] task");
  const int64_t batches = (num_samples + batch_size - 1) / batch_size;
  Sampler& sampler = *built_.sampler;
  Progress progress("sample", batches * sampler.num_steps(), [&](const std::string& l) { log_.file_only(l); });
  int64_t next_index = 0, skipped_in_a_row = 0;  // the eval split in order, wrapping, bad samples skipped
  for (int64_t start = 0, b = 0; start < num_samples; start += batch_size, ++b) {
    log_.heartbeat();  // sampling logs no metrics; say it is alive (asg runs gc)
    const int64_t n = std::min(batch_size, num_samples - start);
    std::vector<Sticker> refs;
    std::vector<std::string> captions;
    while (static_cast<int64_t>(refs.size()) < n) {
      refs.push_back(next_reference(&next_index, &skipped_in_a_row));
      captions.push_back(refs.back().caption);
    }
    std::optional<SampleCondition> condition;  // the reference clips' given frames, for an image-conditioned task
    if (task != ConditionTask::Generation)
      condition = SampleCondition{stack_frames(refs), evaluation_condition_mask(task, info.frames).repeat({n, 1}),
                                  eval.real("image_guidance_scale")};
    torch::Tensor clips = trainer_.sample(
        sampler, captions, clip_shape, sample_gen,
        [&](int64_t i, int64_t) {
          throw_if_interrupted();
          progress.update(b * sampler.num_steps() + i);
        },
        eval.str("negative_prompt"), condition ? &*condition : nullptr);
    for (auto& [slot, metric] : built_.metrics) metric->update(clips, refs, start);
    for (int64_t i = 0; i < n; ++i) samples.add(start + i, clips[i], captions[i]);
  }
  progress.finish();
  samples.finish();

  std::vector<ResultValue> results;
  for (auto& [slot, metric] : built_.metrics) {
    for (const MetricValue& v : metric->result()) {
      if (v.key != slot->plugin && v.key.rfind(slot->plugin + ".", 0) != 0)
        throw internal_error(fmt::format("metric '{}' reported key '{}'; keys must be '{}' or start with '{}.'", slot->plugin,
                                         v.key, slot->plugin, slot->plugin));
      if (!std::isfinite(v.value))
        throw data_error(fmt::format("metric '{}' computed {} = {}; a metric must fail naming the sample instead of reporting "
                                     "a non-finite value",
                                     slot->plugin, v.key, v.value));
      results.push_back(ResultValue{v.key, v.value, v.higher_is_better});
      log_.metric("eval/" + v.key, at_step, v.value);
      log_.info(fmt::format("  {:<32} {:>10.4f}  ({} is better)", v.key, v.value, v.higher_is_better ? "higher" : "lower"));
    }
  }
  return results;
}

}  // namespace asg
