// Reading a model slot's init_from / init_sha256 / init_allow_missing keys (see initial_weight_keys.h).
#include "initial_weight_keys.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>

#include "asg/error.h"
#include "asg/names.h"

namespace asg::config {

const std::vector<ParamSpec>& initial_weight_specs() {
  static const std::vector<ParamSpec> specs = {
      path_param("init_from", "", "pretrained weights to start from: a .safetensors file, or a diffusers/transformers folder "
                                  "holding one"),
      string_param("init_sha256", "", "sha256 of the init_from weights file (required with init_from)"),
      string_list_param("init_allow_missing", {}, "glob patterns of tensor names init_from need not provide (they keep their "
                                                  "initial values; the file's are not used)"),
  };
  return specs;
}

namespace {

// A folder given as init_from: the weights file diffusers (models) or transformers (text towers) keeps in it.
fs::path weights_file_in(const fs::path& folder, const std::string& where) {
  static const std::vector<std::string> names = {"diffusion_pytorch_model.safetensors", "model.safetensors"};
  for (const auto& name : names)
    if (fs::is_regular_file(folder / name)) return folder / name;
  throw config_error(fmt::format("{}: init_from = \"{}\" is a folder without a single-file safetensors checkpoint (looked for {}; "
                                 "a sharded checkpoint must be merged first, e.g. with `asg weights import`)",
                                 where, folder.string(), join(names, ", ")));
}

}  // namespace

std::optional<InitialWeights> initial_weights(const Params& all, const std::string& section, const std::string& dotted,
                                              const Origins& origins) {
  const std::string& from = all.str("init_from");
  const std::string& sha = all.str("init_sha256");
  const auto& patterns = all.strs("init_allow_missing");
  if (from.empty()) {
    if (!sha.empty() || !patterns.empty())
      throw config_error(fmt::format("{}: [{}] {} without init_from (valid: set init_from to the weights, or remove it)",
                                     origins.where(dotted + (sha.empty() ? "init_allow_missing" : "init_sha256")), section,
                                     sha.empty() ? "init_allow_missing" : "init_sha256"));
    return std::nullopt;
  }
  const std::string where = origins.where(dotted + "init_from");
  InitialWeights w;
  w.where = where;
  w.file = fs::is_directory(from) ? weights_file_in(from, where) : fs::path(from);
  w.allow_missing = patterns;
  if (sha.empty())
    throw config_error(fmt::format("{}: [{}] init_from needs init_sha256 = \"<the file's sha256>\" beside it: `sha256sum {}` prints "
                                   "it (a different file would be a different run)",
                                   where, section, w.file.string()));
  const bool hex = sha.size() == 64 && std::all_of(sha.begin(), sha.end(), [](char c) {
                     return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
                   });
  if (!hex)
    throw config_error(fmt::format("{}: [{}] init_sha256 = \"{}\" is not a sha256 (valid: 64 lower-case hex digits, as "
                                   "`sha256sum` prints)",
                                   origins.where(dotted + "init_sha256"), section, sha));
  w.sha256 = sha;
  return w;
}

}  // namespace asg::config
