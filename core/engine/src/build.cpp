#include "asg/build.h"

#include "initial_weights.h"

#include <fmt/format.h>

#include <algorithm>
#include <type_traits>

#include "asg/trainer.h"
#include "asg/names.h"
#include "asg/plugin_catalog.h"
#include "asg/vocabulary.h"

namespace asg {

namespace {

// What one slot's plugin declared it needs from the dataset (Factory::requirements), checked against
// what the dataset announced. The message is the core's: file, section and plugin, then what is missing
// and what the dataset offers.
void check_requirements(const Experiment& exp, const PluginSlot& slot, const PluginSlot& dataset, const DatasetInfo& info) {
  const Requirements& needs = slot.record->factory.requirements;
  auto fail = [&](const std::string& requirement, const std::string& provided) {
    throw config_error(fmt::format("{}: {} requires {}; [dataset] plugin '{}' provides {}. Pick a dataset that provides "
                                   "it, or another {} plugin.",
                                   exp.file.string(), slot.label(), requirement, dataset.plugin, provided, slot.kind));
  };
  if (!needs.label_keys.empty()) {
    std::vector<std::string> missing;
    for (const auto& key : needs.label_keys)
      if (std::find(info.label_keys.begin(), info.label_keys.end(), key) == info.label_keys.end()) missing.push_back(key);
    if (!missing.empty())
      fail(fmt::format("the label keys {} (missing: {})", join(needs.label_keys, ", "), join(missing, ", ")),
           info.label_keys.empty() ? std::string("no labels") : "the label keys " + join(info.label_keys, ", "));
  }
  const Vocabulary& vocabulary = needs.vocabulary;
  if (!vocabulary.name.empty() && !vocabulary_satisfies(info.vocabulary, vocabulary))
    fail(fmt::format("labels from the vocabulary {} (or a newer {}.x)", vocabulary.text(),
                     vocabulary.version.substr(0, vocabulary.version.find('.'))),
         info.vocabulary.name.empty() ? std::string("no vocabulary") : "vocabulary " + info.vocabulary.text());
  if (needs.min_frames > 0 && info.frames < needs.min_frames)
    fail(fmt::format("clips of at least {} frames", needs.min_frames), fmt::format("{} frames", info.frames));
}

// A backbone asking for an image embedding needs an [image_encoder] and frames to encode; an [image_encoder]
// needs a backbone that takes its output (otherwise it would load and run for nothing).
void check_image_encoder(const Experiment& exp, const Backbone& backbone) {
  const PluginSlot& slot = exp.slot("backbone");
  const bool wants = backbone.image_embedding_dim() > 0, has = exp.has_slot("image_encoder");
  if (wants && !has)
    throw config_error(fmt::format("{}: {} takes a {}-wide image embedding (I2VGen-XL's CLIP image embedding) and the experiment has no "
                                   "[image_encoder] to compute it (valid: an [image_encoder] table, e.g. plugin = \"clip_vision\", or a "
                                   "backbone without it, e.g. i2vgenxl_unet with image_embedding = \"none\")",
                                   exp.file.string(), slot.label(), backbone.image_embedding_dim()));
  if (has && !wants)
    throw config_error(fmt::format("{}: {} is set but {} takes no image embedding (valid: remove [image_encoder], or a backbone that takes "
                                   "one, e.g. i2vgenxl_unet with image_embedding = \"clip\")",
                                   exp.file.string(), exp.slot("image_encoder").label(), slot.label()));
  if (has && exp.conditioning.strs("tasks").empty())
    throw config_error(fmt::format("{}: {} encodes the frame a condition task gives, and [conditioning] tasks is empty (valid: "
                                   "[conditioning] tasks = [\"image\"], or no [image_encoder])",
                                   exp.file.string(), exp.slot("image_encoder").label()));
}

}  // namespace

std::vector<int64_t> BuiltExperiment::backbone_input_shape() const {
  std::vector<int64_t> shape = diffusion_shape;
  shape[0] += condition_channels;
  return shape;
}

NoiseSchedule noise_schedule(const Experiment& exp) {
  return NoiseSchedule(exp.diffusion.str("schedule"), exp.diffusion.integer("timesteps"),
                       parse_prediction(exp.diffusion.str("prediction")), exp.diffusion.real("shift"),
                       BetaOptions{exp.diffusion.real("beta_start"), exp.diffusion.real("beta_end"), exp.diffusion.real("max_beta")});
}

void check_plugin_requirements(const Experiment& exp, const DatasetInfo& info) {
  const PluginSlot& dataset = exp.slot("dataset");
  for (const auto& slot : exp.slots) check_requirements(exp, slot, dataset, info);
}

BuiltExperiment build_experiment(const Experiment& exp, const NoiseSchedule& schedule, uint64_t seed) {
  BuiltExperiment b;
  const PluginSlot& ds = exp.slot("dataset");
  // Each slot's library is opened once (checked against the sha256 it was validated with) and every
  // object created from it keeps it mapped (see keep_library_alive). Each object draws its initial
  // weights from its own seed stream.
  auto construct = [seed](const PluginSlot& slot, const LoadedPlugin& plugin, auto tag, const std::string& stream,
                          const auto& context) {
    using Interface = typename decltype(tag)::type;
    ScopedGlobalSeed init_seed(derive_seed(seed, "init." + stream));
    return create_plugin<Interface>(plugin, slot.params, context);
  };
  // A plugin refusing its parameters or the data: the core says which file, section and plugin.
  auto create = [&exp, construct](const PluginSlot& slot, auto tag, const std::string& stream, const auto& context) {
    auto plugin = load_plugin(*slot.record);
    try {
      return construct(slot, *plugin, tag, stream, context);
    } catch (const Error& e) {
      // Already prefixed: a temporal module refusing an insertion point while the backbone is built.
      if (e.kind() != ErrorKind::Config || std::string_view(e.what()).starts_with(exp.file.string() + ": ")) throw;
      throw config_error(fmt::format("{}: {}: {}", exp.file.string(), slot.label(), e.what()));
    }
  };
  DatasetContext dctx;
  dctx.limits = DecodeLimits{exp.data.integer("max_canvas_pixels"), exp.data.integer("max_frames"),
                             exp.data.integer("max_decoded_bytes")};
  b.dataset = create(ds, std::type_identity<Dataset>{}, "dataset", dctx);
  b.info = b.dataset->info();
  const std::string& split = exp.eval.str("split");
  const Split eval_split = split_from_name(split);
  if (exp.train.integer("steps") > 0 && b.dataset->size(Split::Train) == 0)
    throw config_error(fmt::format("{}: [dataset] plugin '{}' has an empty train split but [train] steps = {}",
                                   exp.file.string(), ds.plugin, exp.train.integer("steps")));
  if (b.dataset->size(eval_split) == 0)
    throw config_error(fmt::format("{}: [eval] split = \"{}\": dataset '{}' has no samples in that split", exp.file.string(),
                                   split, ds.plugin));
  check_plugin_requirements(exp, b.info);
  b.text_encoder = create(exp.slot("text_encoder"), std::type_identity<TextEncoder>{}, "text_encoder", NoContext{});
  load_initial_weights(exp.slot("text_encoder"), *b.text_encoder);

  b.diffusion_shape = {4, b.info.frames, b.info.height, b.info.width};
  std::string clips_from = fmt::format("the clips come from [dataset] '{}'", ds.plugin);
  if (exp.has_slot("autoencoder")) {
    const PluginSlot& ae = exp.slot("autoencoder");
    b.autoencoder = create(ae, std::type_identity<Autoencoder>{}, "autoencoder",
                           AutoencoderContext{4, b.info.frames, b.info.height, b.info.width});
    load_initial_weights(ae, *b.autoencoder);
    const LatentShape latent = b.autoencoder->latent();
    if (latent.channels < 1 || latent.height < 1 || latent.width < 1 || latent.frames != b.info.frames)
      throw config_error(fmt::format("{}: {}: latent of {} channels, {} frames, {}x{} for clips of {} frames, {}x{} from [dataset] "
                                     "'{}' (valid: a latent with the clip's frame count and at least 1x1)",
                                     exp.file.string(), ae.label(), latent.channels, latent.frames, latent.height, latent.width,
                                     b.info.frames, b.info.height, b.info.width, ds.plugin));
    b.diffusion_shape = {latent.channels, latent.frames, latent.height, latent.width};
    clips_from = fmt::format("the latents come from {} over [dataset] '{}' clips of {}x{}", ae.label(), ds.plugin, b.info.height,
                             b.info.width);
  }
  if (!exp.conditioning.strs("tasks").empty()) b.condition_channels = b.diffusion_shape[0] + 1;

  const PluginSlot& temporal = exp.slot("temporal");
  std::shared_ptr<const LoadedPlugin> temporal_plugin = load_plugin(*temporal.record);
  BackboneContext ctx;
  ctx.channels = b.diffusion_shape[0];
  ctx.condition_channels = b.condition_channels;
  ctx.frames = b.diffusion_shape[1];
  ctx.height = b.diffusion_shape[2];
  ctx.width = b.diffusion_shape[3];
  ctx.text_dim = b.text_encoder->dim();
  ctx.num_timesteps = schedule.num_timesteps();
  const PluginSlot& backbone = exp.slot("backbone");
  bool temporal_refused = false;
  ctx.make_temporal = [&exp, &temporal, &backbone, &temporal_refused, temporal_plugin, construct](const TemporalContext& tc) {
    try {
      return construct(temporal, *temporal_plugin, std::type_identity<TemporalModule>{}, "temporal." + tc.name, tc);
    } catch (const Error& e) {
      if (e.kind() != ErrorKind::Config) throw;
      temporal_refused = true;
      throw config_error(fmt::format("{}: {}: {} (temporal insertion point '{}' of {}: {} channels, {} frames, {}x{})",
                                     exp.file.string(), temporal.label(), e.what(), tc.name, backbone.label(), tc.channels,
                                     tc.frames, tc.height, tc.width));
    }
  };
  try {
    b.backbone = create(backbone, std::type_identity<Backbone>{}, "backbone", ctx);
  } catch (const Error& e) {
    // The backbone's own refusals are about the clips it is given: say where they come from.
    if (e.kind() != ErrorKind::Config || temporal_refused) throw;
    throw config_error(fmt::format("{} ({}: {} channels{}, {} frames, {}x{})", e.what(), clips_from, ctx.channels,
                                   ctx.condition_channels > 0 ? fmt::format(" + {} condition channels ([conditioning] tasks)",
                                                                            ctx.condition_channels)
                                                              : std::string(),
                                   ctx.frames, ctx.height, ctx.width));
  }
  check_image_encoder(exp, *b.backbone);
  if (exp.has_slot("image_encoder")) {
    const PluginSlot& ie = exp.slot("image_encoder");
    b.image_encoder = create(ie, std::type_identity<ImageEncoder>{}, "image_encoder", NoContext{});
    if (b.image_encoder->dim() != b.backbone->image_embedding_dim())
      throw config_error(fmt::format("{}: {} gives {}-wide embeddings; {} takes {}-wide ones (valid: an image encoder of that width, "
                                     "e.g. projection_dim = {})",
                                     exp.file.string(), ie.label(), b.image_encoder->dim(), backbone.label(),
                                     b.backbone->image_embedding_dim(), b.backbone->image_embedding_dim()));
    load_initial_weights(ie, *b.image_encoder);
  }
  load_initial_weights(backbone, *b.backbone);
  b.sampler = create(exp.slot("sampler"), std::type_identity<Sampler>{}, "sampler", NoContext{});
  for (const PluginSlot* m : exp.metric_slots()) b.metric_libraries.push_back(load_plugin(*m->record));
  b.metrics = build_metrics(exp, b.info, torch::kCPU, seed, b.metric_libraries);
  return b;
}

MetricList build_metrics(const Experiment& exp, const DatasetInfo& info, torch::Device device, uint64_t seed,
                         const std::vector<std::shared_ptr<const LoadedPlugin>>& libraries) {
  const MetricContext context{info, exp.slot("dataset").plugin, device};
  MetricList metrics;
  const auto slots = exp.metric_slots();
  if (!libraries.empty() && libraries.size() != slots.size())
    throw internal_error("build_metrics: one library per metric slot is needed");
  for (size_t i = 0; i < slots.size(); ++i) {
    const PluginSlot* slot = slots[i];
    auto plugin = libraries.empty() ? load_plugin(*slot->record) : libraries[i];
    try {
      ScopedGlobalSeed init_seed(derive_seed(seed, "init." + slot->section));
      metrics.emplace_back(slot, create_plugin<Metric>(*plugin, slot->params, context));
    } catch (const Error& e) {
      if (e.kind() != ErrorKind::Config) throw;
      throw config_error(fmt::format("{}: {}: {}", exp.file.string(), slot->label(), e.what()));
    }
  }
  return metrics;
}

}  // namespace asg
