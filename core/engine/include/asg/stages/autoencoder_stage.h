// The autoencoder stage: latent diffusion's first stage trained (or loaded) and its scaling factor measured.
// Host-only (plugins never include it); run_experiment (asg/runner.h) composes the stages.
#pragma once

#include <torch/torch.h>
#include <cstdint>
#include <filesystem>
#include <memory>

#include "asg/kinds/autoencoder.h"
#include "asg/kinds/dataset.h"
#include "asg/stages/batch_source.h"
#include "asg/stages/recorder.h"

namespace asg {

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

}  // namespace asg
