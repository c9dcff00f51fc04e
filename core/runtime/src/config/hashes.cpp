// The config, method and protocol hashes of an experiment.
#include "hashes.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <iterator>
#include <utility>

#include "asg/hash.h"
#include "core_schema.h"
#include "param_values.h"

namespace asg {

namespace fs = std::filesystem;

namespace {

struct JsonValue {
  nlohmann::json operator()(int64_t x) const { return x; }
  nlohmann::json operator()(double x) const { return x; }
  nlohmann::json operator()(bool x) const { return x; }
  nlohmann::json operator()(const std::string& x) const { return x; }
  template <typename E>
  nlohmann::json operator()(const std::vector<E>& xs) const {
    return nlohmann::json(xs);
  }
};

// Parameters as JSON; a path counts by its file's content, so moving a file does not change a hash and
// replacing it does. A folder (a dataset's root) counts as a folder: what is read from it is named by the file
// that lists it (the manifest), whose content is hashed.
nlohmann::json params_json(const Params& params, const std::vector<ParamSpec>& specs) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [key, value] : params.values()) {
    auto spec = std::find_if(specs.begin(), specs.end(), [&](const ParamSpec& s) { return s.key == key; });
    if (spec != specs.end() && !spec->hashed_at_default && value == spec->default_value) continue;
    const std::string* path = std::get_if<std::string>(&value);
    if (spec != specs.end() && spec->type == ParamType::Path && path && !path->empty())
      j[key] = fs::is_directory(*path) ? std::string("folder") : "sha256:" + sha256_file(*path);
    else
      j[key] = std::visit(JsonValue{}, value);
  }
  return j;
}

nlohmann::json slot_json(const PluginSlot& slot, bool with_library) {
  nlohmann::json j = {{"plugin", slot.plugin},
                      {"version", slot.record->factory.version},
                      {"params", params_json(slot.params, slot.record->factory.params)}};
  // The weights a slot starts from are part of the method, by content: the file's name and place are not.
  if (slot.init) j["init"] = {{"sha256", slot.init->sha256}, {"allow_missing", slot.init->allow_missing}};
  if (with_library) j["library_sha256"] = slot.record->library_sha256;
  return j;
}

}  // namespace

std::string slot_identity(const PluginSlot& slot, bool with_library) { return slot_json(slot, with_library).dump(); }

namespace config {

std::string config_hash(const toml::table& resolved, const Experiment& exp) {
  // Core keys added after runs were recorded, whose default keeps the earlier behaviour: at their default
  // they are left out of the config hash too (as added_later() keys are of the method and protocol hashes),
  // so runs recorded before them keep their config hash and a resumable sweep still finds them. (Keys added
  // before this list existed were already part of recorded hashes and stay in.)
  const std::pair<const char*, const Params*> left_out_at_default[] = {{"eval", &exp.eval}};
  const char* const left_out_keys[] = {"num_real"};
  toml::table hashed = resolved;
  for (size_t i = 0; i < std::size(left_out_keys); ++i) {
    const auto& [section, params] = left_out_at_default[i];
    const auto& specs = core_specs(section);
    const auto spec = std::find_if(specs.begin(), specs.end(), [&](const ParamSpec& s) { return s.key == left_out_keys[i]; });
    if (spec != specs.end() && params->values().at(spec->key) == spec->default_value)
      if (auto* table = hashed[section].as_table()) table->erase(spec->key);
  }
  return sha256_hex(to_toml_text(hashed));
}

void compute_method_and_protocol(Experiment& exp) {
  nlohmann::json method = nlohmann::json::object();
  for (const auto& slot : exp.slots)
    if (slot.kind != "metric" && slot.kind != "sampler") method[slot.section] = slot_json(slot, true);
  method["diffusion"] = params_json(exp.diffusion, core_specs("diffusion"));
  nlohmann::json train = params_json(exp.train, core_specs("train"));
  train.erase("log_every");         // how often the loss is recorded
  train.erase("checkpoint_every");  // how often the state is saved
  method["train"] = train;
  nlohmann::json data = params_json(exp.data, core_specs("data"));
  data.erase("workers");  // how many threads decode: never what they decode
  if (!data.empty()) method["data"] = data;  // [data] came later: at its defaults, hashes are as before it
  nlohmann::json conditioning = params_json(exp.conditioning, core_specs("conditioning"));
  if (!conditioning.empty()) method["conditioning"] = conditioning;
  method["seed"] = exp.runtime.integer("seed");
  // Precision changes every number; fp32 (the default, and all there was before the key) is left out.
  if (exp.runtime.str("precision") != "fp32") method["precision"] = exp.runtime.str("precision");
  exp.method_hash = sha256_hex(method.dump());

  nlohmann::json protocol = nlohmann::json::object();
  protocol["benchmark"] = {{"name", exp.benchmark.str("name")}, {"version", exp.benchmark.str("version")}};
  protocol["eval"] = {{"split", exp.eval.str("split")}, {"num_samples", exp.eval.integer("num_samples")}};
  // Only when set, so that protocols from before the key existed keep their hash.
  if (!exp.eval.str("negative_prompt").empty()) protocol["eval"]["negative_prompt"] = exp.eval.str("negative_prompt");
  if (exp.eval.str("task") != "generation") protocol["eval"]["task"] = exp.eval.str("task");
  if (exp.eval.integer("num_real") != 0) protocol["eval"]["num_real"] = exp.eval.integer("num_real");
  if (exp.eval.real("image_guidance_scale") != 0) protocol["eval"]["image_guidance_scale"] = exp.eval.real("image_guidance_scale");
  const PluginSlot& dataset = exp.slot("dataset");
  protocol["references"] = {{"dataset", dataset.plugin}, {"version", dataset.record->factory.version}};
  // The dataset parameters a benchmark definition pins define its references (size, frames, selection rule).
  if (!exp.reference_keys.empty()) {
    const nlohmann::json all = params_json(dataset.params, dataset.record->factory.params);
    nlohmann::json pinned = nlohmann::json::object();
    for (const auto& key : exp.reference_keys)
      if (all.contains(key)) pinned[key] = all[key];
    protocol["references"]["params"] = pinned;
  }
  protocol["sampler"] = slot_json(exp.slot("sampler"), false);
  for (const PluginSlot* m : exp.metric_slots()) protocol["metrics"][m->plugin] = slot_json(*m, false);
  exp.protocol_json = protocol.dump();
  exp.protocol_hash = sha256_hex(exp.protocol_json);
}

}  // namespace config

}  // namespace asg
