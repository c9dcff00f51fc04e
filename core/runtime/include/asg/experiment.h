// Experiment files: TOML composition, validation and canonical hashing.
//
// An experiment names one plugin per slot and sets its parameters:
//
//   base = ["base/tiny.toml"]          # optional; paths relative to this file, merged in order
//   name = "quickstart"
//   [dataset]      plugin = "synthetic_stickers"   (+ the plugin's parameters)
//   [text_encoder] plugin = "word_embedding"
//   [backbone]     plugin = "unet3d"
//   [temporal]     plugin = "temporal_conv"
//   [sampler]      plugin = "ddim"
//   [[metrics]]    plugin = "caption_accuracy"     (one table per metric)
//   [autoencoder]  plugin = "frame_vae"            optional: latent diffusion (pixel space without it)
//   [image_encoder] plugin = "clip_vision"         optional: the image embedding a backbone may ask for
//   [train] [eval] [diffusion] [runtime] [data] [conditioning] [benchmark]   core sections, see core_sections()
//
// Composition: bases first (recursively), then the file, then `--set a.b=value` overrides. Tables merge
// key by key; scalars and arrays (including [[metrics]]) replace. A table holding `__replace__ = true`
// replaces the inherited table instead of merging into it.
//
// Validation happens before any plugin object is created: every key must be declared by the plugin's
// (or core section's) schema with a value of the right type and range. Errors are asg::Error(Config)
// and read "file:line:col: [section] key = value: problem (what is valid). Did you mean 'x'?".
//
// The resolved config (every key, defaults filled in) is printed as canonical TOML: sorted keys, one
// formatting. Its sha256, excluding the free-text `name` and `description`, is the config hash.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "asg/benchmark_definition.h"
#include "asg/params.h"
#include "asg/plugin_catalog.h"

namespace asg {

// Pretrained weights a model slot starts from: [backbone], [autoencoder], [text_encoder] or [image_encoder] with
//   init_from = "unet/"            a .safetensors file (diffusers, transformers or `asg weights import`'s), or
//                                  a diffusers/transformers folder holding one
//   init_sha256 = "..."            the weights file's sha256 (required: a different file is a different run)
//   init_allow_missing = ["*.temp_convs.*"]   glob patterns over tensor names that keep their initial values
//                                  (model side) or are not used (file side); nothing else may be missing or extra
struct InitialWeights {
  std::filesystem::path file;              // the weights file itself (a folder resolved to its file)
  std::string sha256;
  std::vector<std::string> allow_missing;
  std::string where;                       // "exp.toml:12:1", for messages
};

struct PluginSlot {
  std::string section;  // "backbone", "metrics[0]", ...
  std::string kind;     // "backbone", "metric", ...
  std::string plugin;
  Params params;
  // The plugin's description (version, schema, requirements, library and its sha256). Shared, so the
  // experiment outlives the catalog it was validated with; no library stays loaded for it.
  std::shared_ptr<const PluginRecord> record;
  std::optional<InitialWeights> init;  // model slots only

  // "[metrics[0]] metric 'caption_accuracy'": how the core prefixes what it says about this slot.
  std::string label() const { return "[" + section + "] " + kind + " '" + plugin + "'"; }
};

// The slot's plugin, version and parameters as canonical JSON (path parameters by their file's sha256;
// with_library: also the library's sha256): what the hashes are made of, and what keys a metric's cached
// real-side statistics.
std::string slot_identity(const PluginSlot& slot, bool with_library);

struct Experiment {
  std::filesystem::path file;
  std::string name;
  std::string description;
  std::vector<PluginSlot> slots;  // dataset, text_encoder, backbone, temporal, sampler, [autoencoder], [image_encoder], metrics[i]...
  bool has_slot(const std::string& section) const;
  Params train, eval, diffusion, runtime, data, conditioning, benchmark;
  std::string resolved_toml;  // canonical resolved config
  std::string config_hash;    // sha256 of resolved_toml without name/description
  // What was trained: [dataset], [text_encoder], [backbone], [temporal], [diffusion], [train] (less its
  // bookkeeping keys log_every and checkpoint_every) and the seed, plus each of those plugins' name,
  // version and library sha256. Path values count by their file's sha256, not by where the file is.
  std::string method_hash;
  // What was measured: the benchmark's name and version, the eval split and sample count, the dataset
  // the references come from (name, version), the sampler (name, version, parameters) and every metric
  // (name, version, parameters). protocol_json is the canonical JSON it hashes, so the leaderboard can
  // say which fields two protocols differ in.
  std::string protocol_hash;
  std::string protocol_json;
  // The definition of the benchmark named in [benchmark], if it has one (benchmark_definition.h), and the
  // dataset parameters it pins: they define its references and so are part of the protocol hash.
  std::optional<BenchmarkDefinition> benchmark_definition;
  std::vector<std::string> reference_keys;
  // Neither hash covers [runtime] (device, threads, prefetching, plugin path): where and how a run
  // executed is its environment, recorded with it and never hashed.

  const PluginSlot& slot(const std::string& section) const;
  std::vector<const PluginSlot*> metric_slots() const;
};

struct CoreSection {
  std::string name;
  std::string doc;
  std::vector<ParamSpec> params;
};
// Schemas of the core sections ([train], [eval], [diffusion], [runtime], [benchmark]).
const std::vector<CoreSection>& core_sections();

// Reads `file` with its bases and overrides, describes the plugins on the search path (including the
// experiment's [runtime].plugin_path) into `catalog`, and validates everything. No plugin library stays
// loaded and no plugin object is created.
Experiment load_experiment(const std::filesystem::path& file, const std::vector<std::string>& overrides,
                           PluginCatalog& catalog);

// The experiment measured under another benchmark (asg eval): the benchmark's definition replaces its [sampler],
// its [[metrics]] and the [eval] keys the definition pins, and [benchmark] becomes that benchmark; then the
// overrides apply and the definition pins the rest as for any experiment (data the definition pins otherwise
// is refused). asg::Error(Config) when no definition has that name.
Experiment load_experiment_under_benchmark(const std::filesystem::path& file, const std::string& benchmark,
                                           const std::vector<std::string>& overrides, PluginCatalog& catalog);

}  // namespace asg
