// Turning a validated Experiment into live objects: the one place where slots become plugin objects.
//
// Every slot draws its initial weights from its own stream of the run seed (derive_seed(seed,
// "init.<slot>"), "init.temporal.<insertion point>" for each temporal module), so the temporal module an
// experiment picks cannot shift the backbone's or the text encoder's weights. The run and the benchmarks
// both build through here, so a benchmark times exactly the model a run trains.
#pragma once

#include <memory>
#include <utility>
#include <vector>

#include "asg/diffusion.h"
#include "asg/experiment.h"
#include "asg/kinds/autoencoder.h"
#include "asg/kinds/backbone.h"
#include "asg/kinds/dataset.h"
#include "asg/kinds/image_encoder.h"
#include "asg/kinds/metric.h"
#include "asg/kinds/sampler.h"
#include "asg/plugin_catalog.h"
#include "asg/kinds/text_encoder.h"

namespace asg {

using MetricList = std::vector<std::pair<const PluginSlot*, std::shared_ptr<Metric>>>;

struct BuiltExperiment {
  std::shared_ptr<Dataset> dataset;
  DatasetInfo info;
  std::shared_ptr<TextEncoder> text_encoder;
  std::shared_ptr<Autoencoder> autoencoder;  // null: pixel space
  std::shared_ptr<Backbone> backbone;
  std::shared_ptr<ImageEncoder> image_encoder;  // null: the backbone takes no image embedding
  std::shared_ptr<Sampler> sampler;
  MetricList metrics;  // built on the CPU to check them; a run builds them again after training (build_metrics)
  // The metrics' libraries as opened and checked before training, kept mapped so that the metrics built
  // after training come from the same code even if the files are rebuilt or replaced meanwhile.
  std::vector<std::shared_ptr<const LoadedPlugin>> metric_libraries;
  // The clip diffusion runs on, [C, T, H, W]: the dataset's RGBA clip, or the autoencoder's latent.
  std::vector<int64_t> diffusion_shape;
  // Extra backbone input channels for image conditioning (C + 1, or 0).
  int64_t condition_channels = 0;
  // [C + condition_channels, T, H, W]: what the backbone takes.
  std::vector<int64_t> backbone_input_shape() const;
};

// The experiment's [diffusion] noise schedule.
NoiseSchedule noise_schedule(const Experiment& experiment);

// Checks what every slot's plugin declared it requires (Factory::requirements) against the dataset's
// info; asg::Error(Config) prefixed with the file, the section and the plugin.
void check_plugin_requirements(const Experiment& experiment, const DatasetInfo& info);

// Creates every plugin object of the experiment, in slot order, each from its own seed stream.
// Plugins refusing their parameters or the data, an empty split, or a metric whose vocabulary the
// dataset does not provide: asg::Error(Config) naming the experiment file.
BuiltExperiment build_experiment(const Experiment& experiment, const NoiseSchedule& schedule, uint64_t seed);

// The experiment's metrics on `device`, in slot order; refusals as build_experiment's. A run calls it after
// training (with the libraries build_experiment opened, `libraries`, so a plugin file rebuilt during training
// cannot change or fail the evaluation), so an extractor never holds memory while the model trains. Empty
// `libraries`: each slot's library is opened (and checked against its sha256) now.
MetricList build_metrics(const Experiment& experiment, const DatasetInfo& info, torch::Device device, uint64_t seed,
                         const std::vector<std::shared_ptr<const LoadedPlugin>>& libraries = {});

}  // namespace asg
