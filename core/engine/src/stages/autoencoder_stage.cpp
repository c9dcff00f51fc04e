#include <fmt/format.h>

#include <filesystem>

#include "asg/flat_parameters.h"
#include "asg/interrupt.h"
#include "asg/nn/module_state.h"
#include "asg/stages/autoencoder_stage.h"

namespace asg {

namespace fs = std::filesystem;

namespace {

constexpr const char* kAutoencoderFile = "autoencoder.pt";
constexpr int64_t kScaleBatches = 4;

double read_saved(Autoencoder& autoencoder, const fs::path& file) {
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(file.string());
    nn::load_module_state(autoencoder, archive, file.string());
    torch::Tensor scale;
    archive.read(kLatentScalingFactorKey, scale);
    return scale.item<double>();
  } catch (const c10::Error& e) {
    const std::string what = e.what_without_backtrace();
    throw data_error(fmt::format("{}: cannot load the autoencoder an earlier attempt of this run trained ({}); delete the file "
                                 "to train it again",
                                 file.string(), what.substr(0, what.find('\n'))));
  }
}

}  // namespace

double prepare_autoencoder(Autoencoder& autoencoder, std::shared_ptr<Dataset> dataset, LoaderOptions loader, RunLog& recorder,
                           torch::Device device, uint64_t seed, int64_t log_every, const fs::path& earlier_run_dir) {
  autoencoder.to(device);
  const AutoencoderTraining training = autoencoder.training();
  const fs::path saved = recorder.output_dir() / kAutoencoderFile;
  const fs::path earlier = earlier_run_dir.empty() ? fs::path() : earlier_run_dir / kAutoencoderFile;
  loader.order_seed = derive_seed(seed, "autoencoder.order");
  double scale = autoencoder.latent().scaling_factor;

  if (training.steps > 0 && !earlier.empty() && fs::exists(earlier)) {
    scale = read_saved(autoencoder, earlier);
    recorder.info(fmt::format("autoencoder: trained by an earlier attempt, loaded from {} (latent scaling factor {:.6g})",
                              earlier.string(), scale));
    // This attempt's folder holds it too, so that resuming this attempt finds it.
    fs::copy_file(earlier, saved, fs::copy_options::overwrite_existing);
    recorder.artifact(saved);
  } else {
    BatchSource batches(dataset, loader);
    if (training.steps > 0) {
      // Its own stream for what the autoencoder draws (posterior samples), so the diffusion stage after it
      // starts from the same global state whether or not this stage ran in this attempt.
      torch::manual_seed(derive_seed(seed, "autoencoder.global"));
      autoencoder.train();
      std::vector<torch::Tensor> params;
      for (auto& p : autoencoder.parameters())
        if (p.requires_grad()) params.push_back(p);
      FlatParameters flat(params);
      FlatAdamW optimizer(flat, FlatAdamWOptions{});
      recorder.info(fmt::format("autoencoder: training {} steps at lr {:g} ({} parameters)", training.steps, training.lr,
                                flat.data().numel()));
      for (int64_t step = 1; step <= training.steps; ++step) {
        throw_if_interrupted();
        TrainBatch batch = batches.next();
        flat.zero_grad();
        auto loss = autoencoder.training_loss(batch.x0.to(device));
        loss.backward();
        flat.clip_grad_norm(1.0);
        optimizer.step(training.lr);
        if (step % log_every == 0 || step == training.steps) recorder.metric("autoencoder/loss", step, loss.item<double>());
      }
      recorder.flush();
      autoencoder.eval();
    }
    if (scale == 0) {
      torch::NoGradGuard no_grad;
      autoencoder.eval();
      std::vector<torch::Tensor> latents;
      for (int64_t i = 0; i < kScaleBatches; ++i) latents.push_back(autoencoder.encode(batches.next().x0.to(device)).flatten());
      scale = 1.0 / torch::cat(latents).std().item<double>();
      recorder.info(fmt::format("autoencoder: latent scaling factor {:.6g} (1 / std of the latents of {} training batches)", scale,
                                kScaleBatches));
    }
    if (training.steps > 0) {
      torch::NoGradGuard no_grad;
      torch::serialize::OutputArchive archive;
      nn::save_module_state(autoencoder, archive);
      archive.write(kLatentScalingFactorKey, torch::tensor(scale, torch::kDouble), true);
      save_archive_atomically(archive, saved.string());
      recorder.artifact(saved);
    }
  }
  autoencoder.eval();
  for (auto& p : autoencoder.parameters()) p.set_requires_grad(false);
  return scale;
}

double restore_autoencoder(Autoencoder& autoencoder, std::shared_ptr<Dataset> dataset, LoaderOptions loader, RunLog& log,
                           torch::Device device, uint64_t seed, const fs::path& run_dir) {
  if (autoencoder.training().steps == 0) return prepare_autoencoder(autoencoder, std::move(dataset), loader, log, device, seed, 1);
  const fs::path saved = run_dir / kAutoencoderFile;
  if (!fs::exists(saved))
    throw config_error(fmt::format("{}: the run trained its autoencoder but this file, which holds it, is missing", saved.string()));
  autoencoder.to(device);
  const double scale = read_saved(autoencoder, saved);
  log.info(fmt::format("autoencoder: the run's, from {} (latent scaling factor {:.6g})", saved.string(), scale));
  autoencoder.eval();
  for (auto& p : autoencoder.parameters()) p.set_requires_grad(false);
  return scale;
}

}  // namespace asg
