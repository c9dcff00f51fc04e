// `asg weights import`: published pretrained weights (diffusers or transformers safetensors, one file, a
// sharded set or a model folder with its config.json) turned into one ASG Lab weight file that a model slot's
// init_from takes. The import checks the weights against the plugin they are for by building that plugin
// from the source's config and loading every tensor by name (any missing, unexpected or mis-shaped tensor is
// named), and records where they came from: the source files' sha256, its class and its config.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "asg/plugin_catalog.h"

namespace asg {

struct WeightImportOptions {
  std::string format = "diffusers";      // the source's naming: diffusers (models) or transformers (text towers)
  std::filesystem::path source;          // a .safetensors file, a .safetensors.index.json, or a model folder
  std::filesystem::path out;             // the ASG Lab weight file to write (.safetensors)
  std::string source_class;              // the source's class when it has no config.json beside it
  std::string dtype = "keep";            // keep, float32, float16, bfloat16
};

struct WeightImportReport {
  std::string source_class;              // "UNet3DConditionModel"
  std::string kind, plugin;              // "backbone", "modelscope_unet3d"
  std::string slot_toml;                 // the [slot] table that builds the plugin these weights fit, init keys included
  std::vector<std::string> source_files;
  std::vector<std::string> notes;        // what the import renamed or left out, one line each
  int64_t tensors = 0;
  int64_t bytes = 0;
  std::string out_sha256;
};

// `asg weights merge`: weight files (imported ones, say) joined into one, each file's tensor names behind its
// prefix ("chinese_clip." + "text_model.…"), for a plugin made of several pretrained parts (rdtf_text). The
// parts' files and sha256 are recorded. asg::Error(Config) naming the file for a missing one, a prefix not
// ending in '.', or two parts giving the same name; nothing is written then. Returns the written file's sha256.
struct WeightPart {
  std::string prefix;            // "t5."
  std::filesystem::path file;
};
std::string merge_weights(const std::vector<WeightPart>& parts, const std::filesystem::path& out);

// The classes import knows, by source class name.
std::vector<std::string> importable_classes();

// asg::Error(Config) naming the source (file, config key or tensor) and what would be valid; nothing is
// written unless every tensor fits.
WeightImportReport import_weights(const WeightImportOptions& options, const PluginCatalog& catalog);

}  // namespace asg
