#include "weights_commands.h"

#include <fmt/format.h>

#include <filesystem>
#include <memory>

#include "asg/error.h"
#include "asg/hash.h"
#include "asg/nn/safetensors.h"
#include "asg/plugin_catalog.h"
#include "asg/names.h"
#include "asg/weights_import.h"

namespace fs = std::filesystem;

namespace asg::cli {
namespace {

int cmd_import(const WeightImportOptions& options) {
  const auto report = import_weights(options, PluginCatalog::discover());
  fmt::print("imported {} ({}) from {} file{}: {} tensors, {:.1f} MB, checked against {} '{}'\n", options.out.string(), report.source_class,
             report.source_files.size(), report.source_files.size() == 1 ? "" : "s", report.tensors, report.bytes / 1e6, report.kind,
             report.plugin);
  for (const auto& note : report.notes) fmt::print("  {}\n", note);
  fmt::print("sha256 {}\n\nThe experiment tables these weights fit:\n\n{}",
             report.out_sha256, report.slot_toml);
  return 0;
}

int cmd_show(const fs::path& file) {
  const auto header = nn::read_safetensors_header(file);
  int64_t bytes = 0;
  for (const auto& [key, t] : header.tensors) bytes += t.numel() * t.element_size();
  fmt::print("{}\nsha256 {}\n{} tensors, {:.1f} MB\n", file.string(), sha256_file(file), header.tensors.size(), bytes / 1e6);
  if (header.metadata.contains("asg_weights")) {
    for (const char* key : {"asg_kind", "asg_plugin", "source_format", "source_class", "source_sha256", "merged_from"})
      if (header.metadata.contains(key)) fmt::print("{}: {}\n", key, header.metadata.at(key));
  } else {
    fmt::print("not written by asg weights import (no provenance recorded)\n");
  }
  return 0;
}

}  // namespace

void add_weights_commands(CLI::App& app, Action& action) {
  auto* weights = app.add_subcommand("weights", "pretrained weights: import published checkpoints, show a weight file");
  weights->require_subcommand(1);
  {
    auto* cmd = weights->add_subcommand("import", fmt::format("check published safetensors weights against the plugin they are for and "
                                                              "write them as one weight file (classes: {})",
                                                              join(importable_classes(), ", ")));
    auto o = std::make_shared<WeightImportOptions>();
    cmd->add_option("source", o->source, "a .safetensors file, a .safetensors.index.json, or a model folder with its config.json")->required();
    cmd->add_option("--out", o->out, "the weight file to write (.safetensors)")->required();
    cmd->add_option("--format", o->format, "the source's naming: diffusers or transformers")->capture_default_str();
    cmd->add_option("--class", o->source_class, "the source's class, when no config.json says it");
    cmd->add_option("--dtype", o->dtype, "keep, float32, float16 or bfloat16")->capture_default_str();
    cmd->callback([&, o] { action = [o] { return cmd_import(*o); }; });
  }
  {
    auto* cmd = weights->add_subcommand("merge", "join weight files into one, each file's names behind a prefix (PREFIX=FILE), for a "
                                                 "plugin made of several pretrained parts");
    auto out = std::make_shared<fs::path>();
    auto parts = std::make_shared<std::vector<std::string>>();
    cmd->add_option("parts", *parts, "PREFIX=FILE, e.g. chinese_clip.=chinese_clip.safetensors t5.=t5.safetensors")->required();
    cmd->add_option("--out", *out, "the weight file to write (.safetensors)")->required();
    cmd->callback([&, out, parts] {
      action = [out, parts] {
        std::vector<WeightPart> split;
        for (const auto& part : *parts) {
          const auto eq = part.find('=');
          if (eq == std::string::npos)
            throw config_error(fmt::format("asg weights merge: '{}' (valid: PREFIX=FILE, e.g. t5.=t5.safetensors)", part));
          split.push_back({part.substr(0, eq), part.substr(eq + 1)});
        }
        const std::string sha = merge_weights(split, *out);
        fmt::print("merged {} file{} into {}\nsha256 {}\n", split.size(), split.size() == 1 ? "" : "s", out->string(), sha);
        return 0;
      };
    });
  }
  {
    auto* cmd = weights->add_subcommand("show", "tensor count, size, sha256 and (for imported files) where the weights came from");
    auto file = std::make_shared<fs::path>();
    cmd->add_option("file", *file, "a .safetensors file")->required();
    cmd->callback([&, file] { action = [file] { return cmd_show(*file); }; });
  }
}

}  // namespace asg::cli
