// Conformance suites: one GoogleTest value-parameterised suite per plugin kind, instantiated over every
// plugin of that kind the build (and $ASG_PLUGIN_PATH) provides. A new plugin is held to its kind's
// contract the moment it is built; no test lists plugins.
//
//   INSTANTIATE_TEST_SUITE_P(Build, DatasetConformance, ::testing::ValuesIn(asg::testing::plugins_of_kind("dataset")),
//                            asg::testing::plugin_test_name);
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <fmt/format.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <toml++/toml.h>

#include "asg/data/tar_shards.h"
#include "asg/hash.h"
#include "asg/media/gif.h"
#include "asg/media/sticker_file.h"
#include "asg/plugin_catalog.h"
#include "asg/files.h"
#include "extractor_fixtures.h"
#include "test_animation.h"
#include "test_paths.h"

namespace asg::testing {

// Vocabulary files for text encoders that need one: the source tree's fixtures, or, for the installed suite,
// $ASG_CONFORMANCE_FIXTURES (`asg plugins test` sets it to <prefix>/share/asg/conformance).
inline std::filesystem::path conformance_fixture_dir() {
  if (const char* dir = std::getenv("ASG_CONFORMANCE_FIXTURES"); dir && *dir) return dir;
  return source_dir() / "tests/fixtures";
}

inline const PluginCatalog& build_catalog() {
  static const PluginCatalog catalog = PluginCatalog::discover();
  return catalog;
}

inline std::vector<std::string> plugins_of_kind(const std::string& kind) { return build_catalog().names(kind); }

// The plugin's defaults, with the values of its test_params.toml (see cmake/AsgPlugin.cmake) over them: a
// published network's full size is a small one in the conformance suites.
inline std::map<std::string, ParamValue> test_values(const std::string& kind, const std::string& name) {
  const auto record = build_catalog().find(kind, name);
  auto values = default_params(name, record->factory.params).values();
  auto sidecar = record->library_path;
  sidecar.replace_extension(".test_params.toml");
  if (!std::filesystem::exists(sidecar)) return values;
  const toml::table table = toml::parse_file(sidecar.string());
  for (auto&& [key, node] : table) {
    const std::string k(key.str());
    auto spec = std::find_if(record->factory.params.begin(), record->factory.params.end(), [&](const ParamSpec& s) { return s.key == k; });
    if (spec == record->factory.params.end()) throw std::runtime_error(sidecar.string() + ": no parameter " + k);
    switch (spec->type) {
      case ParamType::Int: values[k] = node.value<int64_t>().value(); break;
      case ParamType::Float: values[k] = node.value<double>().value(); break;
      case ParamType::Bool: values[k] = node.value<bool>().value(); break;
      case ParamType::String:
      case ParamType::Path: values[k] = node.value<std::string>().value(); break;
      case ParamType::IntList: {
        std::vector<int64_t> v;
        for (auto&& e : *node.as_array()) v.push_back(e.value<int64_t>().value());
        values[k] = v;
        break;
      }
      case ParamType::FloatList: {
        std::vector<double> v;
        for (auto&& e : *node.as_array()) v.push_back(e.value<double>().value());
        values[k] = v;
        break;
      }
      case ParamType::StringList: {
        std::vector<std::string> v;
        for (auto&& e : *node.as_array()) v.push_back(e.value<std::string>().value());
        values[k] = v;
        break;
      }
    }
  }
  return values;
}

inline Params defaults_of(const std::string& kind, const std::string& name) { return Params(name, test_values(kind, name)); }

// A small sticker corpus on disk, written once per test process, in every layout the SDK reads: 24
// animated stickers (GIF and WebP, 8 per split, labels "mood" and "style") as a JSONL manifest and as two
// tar shards. Dataset plugins whose required parameter is `manifest` or `shards` are built over it.
inline const std::filesystem::path& conformance_corpus() {
  static const std::filesystem::path dir = [] {
    const auto d = make_temp_dir("conformance-corpus");
    std::filesystem::create_directories(d / "media");
    std::string manifest;
    ShardWriter shards[2] = {ShardWriter(d / "shard-000000.tar"), ShardWriter(d / "shard-000001.tar")};
    const char* splits[] = {"train", "validation", "test"};
    for (int i = 0; i < 24; ++i) {
      Animation a = test_animation(12 + i % 5, 10 + i % 3, 2 + i % 6, i % 2 == 0);
      const bool gif = i % 2 == 0;
      const std::string name = fmt::format("media/{:03}.{}", i, gif ? "gif" : "webp");
      if (gif) write_gif(d / name, a);
      else write_webp(d / name, a);
      const std::string split = splits[i % 3];
      const std::string labels = fmt::format(R"({{"mood": "{}", "style": "{}"}})", i % 2 ? "calm" : "happy", i % 3 ? "flat" : "3d");
      manifest += fmt::format(R"({{"id": "s{:03}", "path": "{}", "caption": "sticker {} waves", "split": "{}", "labels": {}}})",
                              i, name, i, split, labels) + "\n";
      const std::string bytes = read_text_file(d / name);
      const std::string json = fmt::format(R"({{"caption": "sticker {} waves", "split": "{}", "labels": {}}})", i, split, labels);
      shards[i % 2].add(fmt::format("{:03}.{}", i, gif ? "gif" : "webp"), bytes.data(), bytes.size());
      shards[i % 2].add(fmt::format("{:03}.json", i), json.data(), json.size());
    }
    for (auto& s : shards) s.close();
    write_text_file_atomic(d / "manifest.jsonl", manifest);
    return d;
  }();
  return dir;
}

// A fixture written once per test process into its own temporary folder.
inline std::filesystem::path fixture_once(const std::string& script, const std::string& name) {
  const auto out = make_temp_dir("conformance-" + name) / (name + ".pt");
  if (!write_fixture(script, out))
    throw std::runtime_error(script + " failed (torch: the reference environment, scripts/setup.sh)");
  return out;
}

// A CLIP-shaped text encoder with random weights (write_clip_text_torchscript.py), for text encoders that load
// one (`model` + `sha256` + `merges`: the BPE fixture of the tokenizer tests).
inline const std::filesystem::path& clip_text_torchscript() {
  static const std::filesystem::path file = fixture_once("write_clip_text_torchscript.py", "clip_text");
  return file;
}

// An SD-VAE-shaped image autoencoder (RGB, f = 4) with random weights (write_autoencoder_torchscript.py), for
// autoencoders that load one.
inline const std::filesystem::path& autoencoder_torchscript() {
  static const std::filesystem::path file = fixture_once("write_autoencoder_torchscript.py", "autoencoder");
  return file;
}

// The parameters a conformance suite builds plugin `name` with: its defaults, plus the conformance
// corpus for a dataset's required `manifest` or `shards`, the CLIP-shaped TorchScript fixture for a
// text encoder's required `model`, `sha256` and `merges` (and the WordPiece fixture for `vocabulary`), the VAE-shaped one for an autoencoder's
// `model` and `sha256`, and the I3D-, Inception-, CLIP- and DOVER-shaped ones for fvd's, fid's, inception_score's, clip_score's and dover's. nullopt when some other parameter must be set
// (the suite then skips the plugin, naming the parameter).
inline std::optional<Params> conformance_params(const std::string& kind, const std::string& name, std::string* missing = nullptr) {
  const auto& specs = build_catalog().find(kind, name)->factory.params;
  auto values = test_values(kind, name);
  for (const auto& spec : specs) {
    if (!spec.required) continue;
    if (kind == "dataset" && spec.key == "manifest") values[spec.key] = (conformance_corpus() / "manifest.jsonl").string();
    else if (kind == "dataset" && spec.key == "shards") values[spec.key] = std::vector<std::string>{(conformance_corpus() / "shard-*.tar").string()};
    else if (kind == "text_encoder" && spec.key == "model") values[spec.key] = clip_text_torchscript().string();
    else if (kind == "text_encoder" && spec.key == "sha256") values[spec.key] = sha256_file(clip_text_torchscript());
    else if (kind == "text_encoder" && spec.key == "merges") values[spec.key] = (conformance_fixture_dir() / "clip_bpe_merges.txt").string();
    else if (kind == "text_encoder" && (spec.key == "vocabulary" || spec.key.ends_with("_vocabulary"))) values[spec.key] = (conformance_fixture_dir() / "wordpiece_vocab.txt").string();
    else if (kind == "autoencoder" && spec.key == "model") values[spec.key] = autoencoder_torchscript().string();
    else if (kind == "autoencoder" && spec.key == "sha256") values[spec.key] = sha256_file(autoencoder_torchscript());
    else if (kind == "metric" && (name == "fvd" || name == "fid" || name == "inception_score" || name == "clip_score" || name == "dover") &&
             (spec.key == "model" || spec.key == "sha256")) {
      const auto file = extractor_fixture(name == "fvd" ? "i3d" : name == "clip_score" ? "clip" : name == "dover" ? "dover" : "inception");
      values[spec.key] = spec.key == "model" ? file.string() : sha256_file(file);
    } else if (kind == "metric" && name == "clip_score" && spec.key == "merges")
      values[spec.key] = (conformance_fixture_dir() / "clip_bpe_merges.txt").string();
    else {
      if (missing) *missing = spec.key;
      return std::nullopt;
    }
  }
  return Params(name, values);
}

inline std::string plugin_test_name(const ::testing::TestParamInfo<std::string>& info) { return info.param; }

}  // namespace asg::testing
