// A model's trainable parameters as views into one contiguous buffer, and their gradients as views
// into a second one, with AdamW, the weight EMA and gradient clipping written over the buffers.
//
// Why: a training step of a small model spends a real share of its time in per-tensor bookkeeping.
// LibTorch's AdamW issues about ten small ops per parameter tensor, the EMA two, clipping two: some
// 2,500 dispatches per step for the quickstart's 200 tensors. Over one flat buffer they are a dozen.
// The distributed gradient all-reduce also wants exactly this: one bucket, no packing.
//
// Arithmetic: FlatAdamW performs torch::optim::AdamW's element-wise operations of LibTorch 1.13, in the
// same order and with the same scalars (decoupled weight decay, bias corrections, denom = sqrt(v) /
// sqrt(bc2) + eps), and clip_grad_norm reduces per-tensor norms exactly as
// torch::nn::utils::clip_grad_norm_ does. The unit test compares both against LibTorch's own on a real
// model, step by step.
//
// Contract:
// - Every parameter must be a dense tensor of one dtype on one device; the constructor refuses others.
// - After construction each parameter's data *is* its slice of data(); code holding the parameter
//   (modules, checkpoints) sees every update. Saving a parameter saves a slice of the shared storage:
//   clone() it first (DiffusionTrainer does) so a file holds its own tensors only.
// - Each parameter's grad is its slice of grad(). Autograd accumulates into it in place (it is defined
//   and dense, so AccumulateGrad adds rather than replaces). Never assign a new grad tensor.
// - Build it after the model is on its device and in its dtype: module.to(...) afterwards gives the
//   parameters new data and silently cuts them loose from the buffer.
// - Every parameter takes part in every step: one that received no gradient is updated with a zero
//   gradient (LibTorch's AdamW skips a tensor whose grad is undefined, which here never happens).
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

namespace asg {

class FlatParameters {
 public:
  explicit FlatParameters(std::vector<torch::Tensor> params);

  const torch::Tensor& data() const { return data_; }  // [N]
  const torch::Tensor& grad() const { return grad_; }  // [N]
  const std::vector<torch::Tensor>& params() const { return params_; }
  int64_t numel() const { return data_.numel(); }
  // The slice of a flat tensor (data(), grad(), an optimizer moment, an EMA) that parameter i occupies,
  // shaped like the parameter.
  torch::Tensor slice(const torch::Tensor& flat, size_t i) const;

  void zero_grad() { grad_.zero_(); }
  // Scales the gradients so their global 2-norm is at most max_norm; returns the norm before scaling.
  double clip_grad_norm(double max_norm);

 private:
  std::vector<torch::Tensor> params_;
  std::vector<int64_t> offsets_;
  torch::Tensor data_, grad_;
};

struct FlatAdamWOptions {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0;
};

class FlatAdamW {
 public:
  FlatAdamW(FlatParameters& params, FlatAdamWOptions options);
  void step(double lr);
  int64_t steps() const { return steps_; }
  // Restoring a saved state: copy the moments into exp_avg()/exp_avg_sq() and set the step count.
  void set_steps(int64_t steps) { steps_ = steps; }
  const torch::Tensor& exp_avg() const { return exp_avg_; }
  const torch::Tensor& exp_avg_sq() const { return exp_avg_sq_; }

 private:
  FlatParameters& params_;
  FlatAdamWOptions options_;
  torch::Tensor exp_avg_, exp_avg_sq_;
  int64_t steps_ = 0;
};

}  // namespace asg
