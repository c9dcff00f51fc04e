// Loading a module's parameters and buffers from a torch::serialize archive by name, refusing what does not
// fit. torch::nn::Module::load does not check shapes: it replaces a parameter with whatever tensor the
// file holds under its name, so a file from a differently configured model loads "successfully" and fails
// (or worse, runs) later. Needs torch.
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

namespace asg::nn {

// Writes every parameter and buffer of `module` under its dotted name ("encoder.0.weight"), flat, the
// way the core's checkpoints name tensors.
void save_module_state(const torch::nn::Module& module, torch::serialize::OutputArchive& archive);

// Copies every parameter and buffer of `module` from `archive` (keys as save_module_state writes them). asg::Error(Config) naming `file` and the first tensor that is missing or shaped differently.
void load_module_state(torch::nn::Module& module, torch::serialize::InputArchive& archive, const std::string& file);

// Copies `tensors` (e.g. a safetensors file's) into `module`'s parameters and buffers by dotted name,
// converting the dtype. Nothing is copied unless everything fits: one asg::Error(Config) naming `source`
// lists every parameter or buffer without a tensor (except those in `allow_missing`, which keep their
// values), every tensor the module has no place for, and every shape mismatch.
void load_named_tensors(torch::nn::Module& module, const std::map<std::string, torch::Tensor>& tensors,
                        const std::string& source, const std::vector<std::string>& allow_missing = {});

// Registers every child of `wrapped` as a child of `module`, under the same name, so that `module`'s parameter
// names are the reference's (text_model.*, conv1.0.weight) rather than behind a wrapper's prefix.
void adopt_children(torch::nn::Module& module, const torch::nn::Module& wrapped);

// A pretrained part that does not train: no parameter asks for gradients, and the part is in eval mode.
void freeze(torch::nn::Module& module);

}  // namespace asg::nn
