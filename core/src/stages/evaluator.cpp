#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>

#include "asg/interrupt.h"
#include "asg/progress.h"
#include "asg/stages.h"

namespace asg {

Evaluator::Evaluator(const Experiment& experiment, BuiltExperiment& built, DiffusionTrainer& trainer, RunRecorder& recorder,
                     uint64_t seed, DataHealth* health)
    : experiment_(experiment), built_(built), trainer_(trainer), recorder_(recorder), seed_(seed), health_(health) {}

std::vector<ResultValue> Evaluator::run(SampleWriter& samples, int64_t at_step) {
  const Params& eval = experiment_.eval;
  const int64_t num_samples = eval.integer("num_samples");
  const int64_t batch_size = eval.integer("batch_size");
  const Split split = split_from_name(eval.str("split"));
  const int64_t split_size = built_.dataset->size(split);
  const DatasetInfo& info = built_.info;
  at::Generator sample_gen = at::detail::createCPUGenerator(derive_seed(seed_, "eval.sample"));
  const std::vector<int64_t>& clip_shape = built_.diffusion_shape;
  const ConditionTask task = condition_task_names().parse(eval.str("task"), "[eval] task");
  const int64_t batches = (num_samples + batch_size - 1) / batch_size;
  Sampler& sampler = *built_.sampler;
  Progress progress("sample", batches * sampler.num_steps(), [&](const std::string& l) { recorder_.file_only(l); });
  int64_t next_index = 0, skipped_in_a_row = 0;  // the eval split in order, wrapping, bad samples skipped
  for (int64_t start = 0, b = 0; start < num_samples; start += batch_size, ++b) {
    recorder_.heartbeat();  // sampling logs no metrics; say it is alive (asg runs gc)
    const int64_t n = std::min(batch_size, num_samples - start);
    std::vector<Sticker> refs;
    std::vector<std::string> captions;
    while (static_cast<int64_t>(refs.size()) < n) {
      const int64_t index = next_index++ % split_size;
      try {
        refs.push_back(built_.dataset->get(split, index));
      } catch (const Error& e) {
        if (e.kind() != ErrorKind::Data || !health_) throw;
        health_->skip(fmt::format("{}/{}", split_name(split), index), e.what());
        if (++skipped_in_a_row >= split_size)
          throw data_error(fmt::format("no sample of the {} split can be read (the latest: {})", split_name(split), e.what()));
        continue;
      }
      skipped_in_a_row = 0;
      captions.push_back(refs.back().caption);
    }
    std::optional<SampleCondition> condition;  // the reference clips' given frames, for an image-conditioned task
    if (task != ConditionTask::Generation)
      condition = SampleCondition{stack_frames(refs), evaluation_condition_mask(task, info.frames).repeat({n, 1})};
    torch::Tensor clips = trainer_.sample(
        sampler, captions, clip_shape, sample_gen,
        [&](int64_t i, int64_t) {
          throw_if_interrupted();
          progress.update(b * sampler.num_steps() + i);
        },
        eval.str("negative_prompt"), condition ? &*condition : nullptr);
    for (auto& [slot, metric] : built_.metrics) metric->update(clips, refs);
    for (int64_t i = 0; i < n; ++i) samples.add(start + i, clips[i], captions[i]);
  }
  progress.finish();
  samples.finish();

  std::vector<ResultValue> results;
  for (auto& [slot, metric] : built_.metrics) {
    for (const MetricValue& v : metric->compute()) {
      if (v.key != slot->plugin && v.key.rfind(slot->plugin + ".", 0) != 0)
        throw internal_error(fmt::format("metric '{}' reported key '{}'; keys must be '{}' or start with '{}.'", slot->plugin,
                                         v.key, slot->plugin, slot->plugin));
      results.push_back(ResultValue{v.key, v.value, v.higher_is_better});
      recorder_.metric("eval/" + v.key, at_step, v.value);
      recorder_.info(fmt::format("  {:<32} {:>10.4f}  ({} is better)", v.key, v.value, v.higher_is_better ? "higher" : "lower"));
    }
  }
  return results;
}

}  // namespace asg
