#include "asg/experiment.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <sstream>
#include <nlohmann/json.hpp>
#include <toml++/toml.h>

#include "asg/benchmark_definition.h"
#include "asg/diffusion_kinds.h"
#include "asg/util.h"
#include "config/composition.h"
#include "config/initial_weight_keys.h"
#include "config/definition_pinning.h"

namespace asg {

namespace fs = std::filesystem;
using config::node_text;
using config::node_type_name;
using config::initial_weight_specs;
using config::initial_weights;
using config::Origins;

namespace {

// ---- validation -------------------------------------------------------------------------------

ParamValue convert(const ParamSpec& spec, const toml::node& node, const std::string& where, const std::string& section,
                   const fs::path& file_dir) {
  auto fail = [&](const std::string& problem, const std::string& hint = "") {
    std::string valid = fmt::format("{}{}", param_type_name(spec.type),
                                    spec.constraint_text().empty() ? "" : ", " + spec.constraint_text());
    return config_error(fmt::format("{}: [{}] {} = {}: {} (valid: {}).{}", where, section, spec.key, node_text(node),
                                    problem, valid, hint));
  };
  auto check_range = [&](double v) {
    if ((spec.min && v < *spec.min) || (spec.max && v > *spec.max)) throw fail("out of range");
  };
  auto check_choice = [&](const std::string& v) {
    if (!spec.choices.empty() && std::find(spec.choices.begin(), spec.choices.end(), v) == spec.choices.end())
      throw fail("not an allowed value", did_you_mean(v, spec.choices));
  };
  auto as_int = [&](const toml::node& n) -> int64_t {
    if (auto i = n.as_integer()) { check_range(static_cast<double>(i->get())); return i->get(); }
    throw fail(fmt::format("expected an integer, got {}", node_type_name(n)));
  };
  auto as_float = [&](const toml::node& n) -> double {
    double v;
    if (auto i = n.as_integer()) v = static_cast<double>(i->get());
    else if (auto f = n.as_floating_point()) v = f->get();
    else throw fail(fmt::format("expected a number, got {}", node_type_name(n)));
    if (!std::isfinite(v)) throw fail("must be finite");
    check_range(v);
    return v;
  };
  auto as_string = [&](const toml::node& n) -> std::string {
    if (auto s = n.as_string()) { check_choice(s->get()); return s->get(); }
    throw fail(fmt::format("expected a string, got {}", node_type_name(n)));
  };
  auto as_array = [&]() -> const toml::array& {
    auto a = node.as_array();
    if (!a) throw fail(fmt::format("expected an array, got {}", node_type_name(node)));
    auto n = static_cast<int64_t>(a->size());
    if ((spec.min_length && n < *spec.min_length) || (spec.max_length && n > *spec.max_length))
      throw fail(fmt::format("has {} items", n));
    return *a;
  };
  switch (spec.type) {
    case ParamType::Int: return as_int(node);
    case ParamType::Float: return as_float(node);
    case ParamType::Bool:
      if (auto b = node.as_boolean()) return b->get();
      throw fail(fmt::format("expected true or false, got {}", node_type_name(node)));
    case ParamType::String: return as_string(node);
    case ParamType::Path: {
      std::string s = as_string(node);
      if (s.empty()) return s;
      fs::path p = fs::path(s).is_absolute() ? fs::path(s) : file_dir / s;
      if (!fs::exists(p)) throw fail(fmt::format("file not found (looked for {})", p.lexically_normal().string()));
      return fs::absolute(p).lexically_normal().string();
    }
    case ParamType::IntList: {
      std::vector<int64_t> out;
      for (auto&& e : as_array()) out.push_back(as_int(e));
      return out;
    }
    case ParamType::FloatList: {
      std::vector<double> out;
      for (auto&& e : as_array()) out.push_back(as_float(e));
      return out;
    }
    case ParamType::StringList: {
      std::vector<std::string> out;
      for (auto&& e : as_array()) out.push_back(as_string(e));
      return out;
    }
  }
  throw internal_error("unhandled param type");
}

// Validates `table` against `specs`; `skip` lists keys handled elsewhere (e.g. "plugin").
Params validate_table(const toml::table& table, const std::vector<ParamSpec>& specs, const std::string& section,
                      const std::string& owner, const std::string& table_where, const std::string& dotted_prefix,
                      const Origins& origins, const std::set<std::string>& skip = {}) {
  std::vector<std::string> valid_keys;
  for (const auto& s : specs) valid_keys.push_back(s.key);
  for (auto&& [key, value] : table) {
    std::string k(key.str());
    if (skip.count(k)) continue;
    if (std::none_of(specs.begin(), specs.end(), [&](const ParamSpec& s) { return s.key == k; })) {
      throw config_error(fmt::format("{}: [{}] unknown key '{}' for {} (valid keys: {}).{}",
                                     origins.where_key(dotted_prefix + k), section, k, owner,
                                     valid_keys.empty() ? "none" : join(valid_keys, ", "), did_you_mean(k, valid_keys)));
    }
  }
  std::map<std::string, ParamValue> values;
  for (const auto& spec : specs) {
    if (auto node = table.get(spec.key)) {
      values[spec.key] = convert(spec, *node, origins.where(dotted_prefix + spec.key), section,
                                 origins.dir_of(dotted_prefix + spec.key));
    } else if (spec.required) {
      throw config_error(fmt::format("{}: [{}] missing required key '{}' for {}: {} ({})", table_where, section,
                                     spec.key, owner, spec.doc, param_type_name(spec.type)));
    } else {
      values[spec.key] = spec.default_value;
    }
  }
  return Params(owner, std::move(values));
}

struct PutValue {
  toml::table& t;
  const std::string& key;
  void operator()(int64_t x) const { t.insert_or_assign(key, x); }
  void operator()(double x) const { t.insert_or_assign(key, x); }
  void operator()(bool x) const { t.insert_or_assign(key, x); }
  void operator()(const std::string& x) const { t.insert_or_assign(key, x); }
  template <typename E>
  void operator()(const std::vector<E>& xs) const {
    toml::array a;
    for (const auto& x : xs) a.push_back(x);
    t.insert_or_assign(key, std::move(a));
  }
};

void put_value(toml::table& t, const std::string& key, const ParamValue& v) { std::visit(PutValue{t, key}, v); }

toml::table params_table(const Params& p) {
  toml::table t;
  for (const auto& [k, v] : p.values()) put_value(t, k, v);
  return t;
}

std::string to_toml_text(const toml::table& t) {
  std::ostringstream ss;
  ss << toml::toml_formatter(t, toml::format_flags::indentation | toml::format_flags::allow_literal_strings) << "\n";
  return ss.str();
}

// ---- method and protocol hashes ------------------------------------------------------------------

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

const std::vector<ParamSpec>& core_specs(const std::string& section);

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

namespace {

void compute_hashes(Experiment& exp) {
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

struct SlotDef {
  const char* section;
  const char* kind;
};
// Slots an experiment may leave out; without them the run is what it was before the kind existed
// (no [autoencoder]: pixel space; no [image_encoder]: no image embedding).
constexpr SlotDef kOptionalSlots[] = {{"autoencoder", "autoencoder"}, {"image_encoder", "image_encoder"}};
constexpr SlotDef kSingleSlots[] = {{"dataset", "dataset"},   {"text_encoder", "text_encoder"}, {"backbone", "backbone"},
                                    {"temporal", "temporal"}, {"sampler", "sampler"}};

}  // namespace

const std::vector<CoreSection>& core_sections() {
  static const std::vector<CoreSection> sections = {
      {"train", "optimisation of the backbone (and a trainable text encoder) with the DDPM objective",
       {int_param("steps", 1000, "optimizer steps; 0 evaluates the untrained model").range(0, 1e9),
        int_param("batch_size", 16, "clips per step").range(1, 65536),
        float_param("lr", 1e-3, "AdamW peak learning rate").range(0, 10),
        float_param("weight_decay", 0.0, "AdamW decoupled weight decay").range(0, 10),
        int_param("warmup_steps", 50, "linear learning-rate warm-up steps").range(0, 1e9),
        float_param("ema_decay", 0.995, "EMA of weights used for sampling; 0 disables EMA").range(0, 1),
        float_param("caption_dropout", 0.1, "probability of training on the empty caption (enables guidance)").range(0, 1),
        float_param("grad_clip", 1.0, "max global gradient norm; 0 disables clipping").range(0, 1e6),
        float_param("high_noise_fraction", 0.0, "share of each batch trained at high-noise timesteps (see high_noise_shift)")
            .range(0, 1),
        float_param("high_noise_shift", 1.0, "those timesteps are drawn as if the schedule's SNR were divided by shift^2; "
                                             "sampling keeps the schedule")
            .range(1, 1000),
        int_param("log_every", 25, "steps between loss records in the registry").range(1, 1e9),
        int_param("checkpoint_every", 200, "steps between training-state checkpoints (what asg resume continues from); "
                                           "0 = only the final one")
            .range(0, 1e9),
        path_param("init_checkpoint", "", "start from the weights this checkpoint samples with (its EMA); with steps = 0, "
                                          "evaluate it"),
        string_param("lr_schedule", "constant", "after warm-up: constant, or cosine decay to min_lr_fraction * lr at the last step")
            .one_of({"constant", "cosine"})
            .added_later(),
        float_param("min_lr_fraction", 0.0, "where the cosine schedule ends, as a fraction of lr").range(0, 1).added_later(),
        int_param("micro_batches", 1, "gradient accumulation: each batch runs as this many sequential micro-batches whose "
                                      "gradients add up to one optimizer step (the same update; activation memory / N)")
            .range(1, 65536)
            .added_later()}},
      {"eval", "sampling and metric evaluation after training",
       {int_param("num_samples", 32, "clips generated for evaluation (one per test-split caption)").range(1, 1e7),
        int_param("batch_size", 32, "clips per sampling batch").range(1, 65536),
        string_param("split", "test", "dataset split whose captions prompt the samples").one_of({"train", "validation", "test"}),
        int_param("save_gifs", 16, "sample GIFs written to the run directory").range(0, 1e6),
        int_param("gif_scale", 8, "nearest-neighbour upscaling of saved GIFs (display only)").range(1, 64),
        string_param("negative_prompt", "", "text the unconditional branch of classifier-free guidance is conditioned on "
                                            "(the sampler's guidance_scale weighs it); empty = the empty caption")
            .added_later(),
        string_param("task", "generation", "which frames of each reference clip the samples are given (image conditioning, "
                                           "see [conditioning]): generation = none, image = the first, interpolation = "
                                           "the even frames, prediction = the first half")
            .one_of({"generation", "image", "interpolation", "prediction"})
            .added_later(),
        float_param("image_guidance_scale", 0.0, "with an image task: > 0 guides on the given frames too, with this scale, the "
                                                 "sampler's guidance_scale on the text (RDTF: 7.5 and 7.5; three passes per "
                                                 "step); 0 = guidance on the text alone, both branches see the frames")
            .range(0, 100)
            .added_later(),
        int_param("num_real", 0, "real clips distribution metrics (Fréchet distances) compare with: the eval split in "
                                 "order, wrapping; 0 = as many as num_samples")
            .range(0, 1e7)
            .added_later()}},
      {"conditioning", "image conditioning: masked condition frames and a per-frame mask concatenated to the backbone's input",
       {string_list_param("tasks", {}, "tasks training draws from for each clip (generation, image, interpolation, "
                                       "prediction); empty = no image conditioning")
            .one_of({"generation", "image", "interpolation", "prediction"})
            .added_later(),
        string_param("image_frame", "random", "the frame the image task gives in training: a random one (RDTF) or the first "
                                              "(I2VGen-XL; evaluation always gives the first)")
            .one_of({"random", "first"})
            .added_later(),
        string_param("curriculum", "uniform", "how each clip's task is drawn: uniform, linear (RDTF's static schedule: "
                                              "interpolation first, generation last) or dcl (RDTF's difficulty-adaptive "
                                              "curriculum: the schedule plus a PID signal of the loss; asg/task_curriculum.h)")
            .one_of({"uniform", "linear", "dcl"})
            .added_later(),
        float_list_param("text_dropout", {}, "per task in `tasks` (same order), the probability a clip drawn for it trains "
                                             "without its text, its text encoding zeroed (RDTF: the image task without text "
                                             "is i2v); empty = none beyond [train] caption_dropout")
            .range(0, 1)
            .added_later()}},
      {"diffusion", "forward process and parameterisation (shared by training and sampling)",
       {int_param("timesteps", 1000, "number of diffusion steps T").range(2, 100000),
        enum_param("schedule", ScheduleKind::Cosine, schedule_names(), "noise schedule"),
        enum_param("prediction", Prediction::V, prediction_names(), "what the backbone predicts"),
        float_param("shift", 1.0, "log-SNR shift: every step's SNR is divided by shift^2 (>1 = more noise; simple diffusion)")
            .range(0.01, 100),
        float_param("beta_start", 0.0, "linear and scaled_linear: the first beta; 0 = the schedule's own (1e-4; 0.00085)")
            .range(0, 0.999)
            .added_later(),
        float_param("beta_end", 0.0, "linear and scaled_linear: the last beta; 0 = the schedule's own (0.02; 0.012)")
            .range(0, 0.999)
            .added_later(),
        float_param("max_beta", 0.999, "cosine: the cap on every beta (diffusers' squaredcos_cap_v2: 0.999)")
            .range(0, 0.999999)
            .added_later()}},
      {"runtime", "where and how the run executes",
       {int_param("seed", 0, "run seed; every generator is derived from it").range(0, 9.2e18),
        int_param("threads", 0, "intra-op CPU threads; 0 = all cores").range(0, 4096),
        string_param("device", "cpu", "compute device: cpu, cuda (the first GPU), cuda:N, or auto (cuda:0 when present, "
                                      "else cpu)"),
        bool_param("deterministic", true, "seed everything and use deterministic algorithms"),
        string_list_param("plugin_path", {}, "extra plugin directories or libraries (relative to the experiment file)"),
        string_param("precision", "fp32", "fp32; bf16 or fp16: autocast (bfloat16 or float16 matmuls and convolutions) around "
                                          "every backbone forward, in training and sampling, CUDA or CPU; fp16 also scales the "
                                          "loss dynamically")
            .one_of({"fp32", "bf16", "fp16"})
            .added_later(),
        int_param("prefetch_batches", 2, "training batches prepared ahead on a worker thread; 0 = on the training thread")
            .range(0, 64)}},
      {"data", "reading real sticker files: decode limits and bad-file tolerance (every dataset plugin gets these)",
       {int_param("max_canvas_pixels", 4096 * 4096, "largest canvas (width x height) a decoder accepts").range(1, 1e12).added_later(),
        int_param("max_frames", 2000, "most frames a decoder accepts per file").range(1, 1e9).added_later(),
        int_param("max_decoded_bytes", int64_t{1} << 30, "most RGBA bytes a decoder may produce per file").range(1, 1e15).added_later(),
        float_param("max_bad_fraction", 0.01, "the run fails when more than this share of the samples read so far were "
                                              "skipped as bad (truncated, empty, unsupported, oversized, outside the root)")
            .range(0, 1)
            .added_later(),
        int_param("workers", 0, "threads decoding training samples; 0 = [runtime] threads; results never depend on it")
            .range(0, 256)
            .added_later()}},
      {"benchmark", "the leaderboard this run belongs to",
       {string_param("name", "", "benchmark name; empty = on no leaderboard"),
        string_param("version", "1", "benchmark protocol version; bump it when what the benchmark measures changes"),
        string_param("rank_by", "", "metric key that orders the leaderboard; empty = the first metric")}},
  };
  return sections;
}

namespace {
const std::vector<ParamSpec>& core_specs(const std::string& section) {
  for (const auto& s : core_sections())
    if (s.name == section) return s.params;
  throw internal_error("no core section " + section);
}
}  // namespace

bool Experiment::has_slot(const std::string& section) const {
  return std::any_of(slots.begin(), slots.end(), [&](const PluginSlot& s) { return s.section == section; });
}

const PluginSlot& Experiment::slot(const std::string& section) const {
  for (const auto& s : slots)
    if (s.section == section) return s;
  throw internal_error("experiment has no slot " + section);
}

std::vector<const PluginSlot*> Experiment::metric_slots() const {
  std::vector<const PluginSlot*> out;
  for (const auto& s : slots)
    if (s.kind == "metric") out.push_back(&s);
  return out;
}

namespace {

// The benchmark `name` as its definition asks for it; asg::Error(Config) listing the known ones if it has none.
BenchmarkDefinition definition_named(const std::string& name) {
  const auto search_path = benchmark_search_path();
  if (auto def = find_benchmark(name, search_path)) return *def;
  std::vector<std::string> names, dirs;
  for (const auto& d : discover_benchmarks(search_path)) names.push_back(d.name);
  for (const auto& d : search_path) dirs.push_back(d.string());
  throw config_error(fmt::format("no benchmark definition named '{}' (known: {}; searched: {}).{}", name,
                                 names.empty() ? "none" : join(names, ", "), dirs.empty() ? "nothing" : join(dirs, ":"),
                                 did_you_mean(name, names)));
}

// `under_benchmark` (asg eval): the experiment's own protocol gives way to that benchmark's definition.
Experiment load_experiment_impl(const fs::path& file, const std::vector<std::string>& overrides, PluginCatalog& catalog,
                                const std::string& under_benchmark) {
  std::vector<fs::path> stack;
  Origins origins;
  origins.fallback = file.string();
  toml::table root = config::compose_file(file, stack, origins);
  std::optional<toml::table> under_root;
  if (!under_benchmark.empty()) {
    // Its sampler, metrics and pinned [eval] keys are the definition's (written in before the overrides, so that
    // --set metrics.0.model=... can give a metric's file); everything else stays the experiment's, and pinning
    // below still refuses what does not fit (e.g. data the model was not trained on).
    const BenchmarkDefinition def = definition_named(under_benchmark);
    under_root = toml::parse_file(def.file.string());
    if (under_root->contains("sampler")) root.erase("sampler");
    if (const auto* metrics = under_root->get_as<toml::array>("metrics")) {
      root.insert_or_assign("metrics", *metrics);
      for (size_t i = 0; i < metrics->size(); ++i) {
        const std::string item = fmt::format("metrics.{}", i);
        origins.values[item] = Origins::position(metrics->get(i)->source());
        origins.dirs[item] = def.file.parent_path();
        if (const auto* t = metrics->get(i)->as_table()) origins.record(*t, item + ".");
      }
    }
    if (const auto* eval = under_root->get_as<toml::table>("eval"))
      if (auto* own = root.get_as<toml::table>("eval"))
        for (auto&& [key, value] : *eval) own->erase(key);
    root.insert_or_assign("benchmark", toml::table{{"name", under_benchmark}});
  }
  for (const auto& o : overrides) config::apply_override(root, o, origins);
  const std::string file_where = file.string();

  // A benchmark with a definition file pins what its runs measure (benchmark_definition.h).
  std::optional<BenchmarkDefinition> definition;
  std::vector<std::string> reference_keys;
  if (const auto* benchmark_name = root["benchmark"]["name"].as_string(); benchmark_name && !benchmark_name->get().empty()) {
    definition = find_benchmark(benchmark_name->get(), benchmark_search_path());
    if (definition) {
      const toml::table def_root = toml::parse_file(definition->file.string());
      reference_keys = config::pin_to_definition(*definition, def_root, origins, root);
    }
  }

  // Top-level keys.
  std::vector<std::string> top_keys = {"name", "description", "metrics"};
  for (const auto& s : kSingleSlots) top_keys.push_back(s.section);
  for (const auto& s : kOptionalSlots) top_keys.push_back(s.section);
  for (const auto& s : core_sections()) top_keys.push_back(s.name);
  for (auto&& [key, value] : root) {
    std::string k(key.str());
    if (std::find(top_keys.begin(), top_keys.end(), k) == top_keys.end()) {
      throw config_error(fmt::format("{}: unknown top-level key '{}' (valid: base, {}).{}", origins.where_key(k), k,
                                     join(top_keys, ", "), did_you_mean(k, top_keys)));
    }
    if (k != "name" && k != "description" && k != "metrics" && !value.is_table()) {
      throw config_error(fmt::format("{}: '{}' must be a table ([{}]), got {}", origins.where(k), k, k, node_type_name(value)));
    }
  }

  Experiment exp;
  exp.file = file;
  exp.name = root["name"].value_or(file.stem().string());
  exp.description = root["description"].value_or(std::string());

  // Core sections first: [runtime].plugin_path decides which plugins exist.
  toml::table resolved;
  auto core_params = [&](const CoreSection& section) {
    const toml::table empty;
    const toml::table* t = root[section.name].as_table();
    return validate_table(t ? *t : empty, section.params, section.name, "[" + section.name + "]",
                          file_where, section.name + ".", origins);
  };
  for (const auto& section : core_sections()) {
    Params p = core_params(section);
    if (section.name == "runtime") {
      // Plugin directories are resolved against the file that named them, and recorded so: the stored config of a
      // run then finds the same plugins from any folder (asg reproduce and asg eval load it from elsewhere).
      auto values = p.values();
      std::vector<std::string> absolute;
      for (const auto& entry : p.strs("plugin_path")) {
        const fs::path path(entry);
        absolute.push_back((path.is_absolute() ? path : fs::absolute(origins.dir_of("runtime.plugin_path") / path)).lexically_normal().string());
      }
      values["plugin_path"] = absolute;
      p = Params(p.owner(), std::move(values));
    }
    resolved.insert_or_assign(section.name, params_table(p));
    if (section.name == "train") exp.train = p;
    else if (section.name == "eval") exp.eval = p;
    else if (section.name == "diffusion") exp.diffusion = p;
    else if (section.name == "runtime") {
      exp.runtime = p;
      // "cuda:N" has a number in it, so it is checked here rather than by a fixed list of choices.
      const std::string& device = p.str("device");
      const bool numbered = device.size() > 5 && device.rfind("cuda:", 0) == 0 &&
                            device.find_first_not_of("0123456789", 5) == std::string::npos && device.size() <= 9;
      if (device != "cpu" && device != "cuda" && device != "auto" && !numbered)
        throw config_error(fmt::format("{}: [runtime] device = \"{}\": not a device (valid: \"cpu\", \"cuda\", \"cuda:N\" "
                                       "with N the GPU's index, \"auto\")",
                                       origins.where("runtime.device"), device));
    }
    else if (section.name == "data") exp.data = p;
    else if (section.name == "conditioning") exp.conditioning = p;
    else if (section.name == "benchmark") exp.benchmark = p;
  }

  if (definition && !definition->seeds.empty()) {
    const int64_t seed = exp.runtime.integer("seed");
    if (std::find(definition->seeds.begin(), definition->seeds.end(), seed) == definition->seeds.end()) {
      std::vector<std::string> seeds;
      for (int64_t s : definition->seeds) seeds.push_back(std::to_string(s));
      throw config_error(fmt::format("{}: [runtime] seed = {}, but benchmark '{}' (version {}, {}) is run with seeds {} (valid: one "
                                     "of them, or another [benchmark] name)",
                                     origins.where("runtime.seed"), seed, definition->name, definition->version,
                                     definition->file.string(), join(seeds, ", ")));
    }
  }
  if (definition && !definition->tasks.empty()) {
    const std::string& task = exp.eval.str("task");
    if (std::find(definition->tasks.begin(), definition->tasks.end(), task) == definition->tasks.end())
      throw config_error(fmt::format("{}: [eval] task = \"{}\", but benchmark '{}' (version {}, {}) measures the tasks {} (valid: one "
                                     "of them, or another [benchmark] name)",
                                     origins.where("eval.task"), task, definition->name, definition->version, definition->file.string(),
                                     join(definition->tasks, ", ")));
  }
  exp.benchmark_definition = definition;
  exp.reference_keys = reference_keys;

  std::vector<fs::path> extra;
  for (const auto& entry : exp.runtime.strs("plugin_path")) extra.push_back(entry);  // absolute (above)
  catalog.load_path(PluginCatalog::search_path(extra));

  auto resolve_slot = [&](const toml::table& t, const std::string& section, const std::string& dotted, const std::string& kind,
                          const std::string& where) {
    auto plugin_node = t.get("plugin");
    auto known = catalog.names(kind);
    if (!plugin_node || !plugin_node->is_string()) {
      throw config_error(fmt::format("{}: [{}] needs plugin = \"<name>\" naming a {} plugin (known: {})", where, section,
                                     kind, known.empty() ? "none" : join(known, ", ")));
    }
    std::string name = plugin_node->as_string()->get();
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      throw config_error(fmt::format("{}: [{}] plugin = \"{}\": unknown {} plugin (known: {}).{}",
                                     origins.where(dotted + "plugin"), section, name, kind,
                                     known.empty() ? "none" : join(known, ", "), did_you_mean(name, known)));
    }
    std::shared_ptr<const PluginRecord> record = catalog.find(kind, name);
    std::string owner = fmt::format("{} '{}'", kind, name);
    // Model slots also take the initial-weight keys; they are validated with the plugin's own, so an unknown
    // key's message lists both.
    const bool takes_weights =
        section == "backbone" || section == "autoencoder" || section == "text_encoder" || section == "image_encoder";
    std::vector<ParamSpec> specs = record->factory.params;
    if (takes_weights) specs.insert(specs.end(), initial_weight_specs().begin(), initial_weight_specs().end());
    Params all = validate_table(t, specs, section, owner, where, dotted, origins, {"plugin"});
    std::map<std::string, ParamValue> plugin_values = all.values();
    std::optional<InitialWeights> init;
    if (takes_weights) {
      init = initial_weights(all, section, dotted, origins);
      for (const auto& spec : initial_weight_specs()) plugin_values.erase(spec.key);
    }
    Params params(owner, std::move(plugin_values));
    toml::table out = params_table(params);
    out.insert_or_assign("plugin", name);
    if (init) {
      out.insert_or_assign("init_from", init->file.string());
      out.insert_or_assign("init_sha256", init->sha256);
      toml::array patterns;
      for (const auto& p : init->allow_missing) patterns.push_back(p);
      if (!patterns.empty()) out.insert_or_assign("init_allow_missing", std::move(patterns));
    }
    PluginSlot slot{section, kind, name, std::move(params), std::move(record), std::move(init)};
    return std::make_pair(std::move(slot), std::move(out));
  };

  for (const auto& def : kSingleSlots) {
    auto node = root.get(def.section);
    if (!node) {
      auto known = catalog.names(def.kind);
      throw config_error(fmt::format("{}: missing [{}] table: add one with plugin = \"<name>\" (known {} plugins: {})",
                                     file_where, def.section, def.kind, known.empty() ? "none" : join(known, ", ")));
    }
    auto [slot, table] = resolve_slot(*node->as_table(), def.section, std::string(def.section) + ".", def.kind,
                                      origins.where(def.section));
    exp.slots.push_back(std::move(slot));
    resolved.insert_or_assign(def.section, std::move(table));
  }

  for (const auto& def : kOptionalSlots) {
    auto node = root.get(def.section);
    if (!node) continue;
    auto [slot, table] = resolve_slot(*node->as_table(), def.section, std::string(def.section) + ".", def.kind,
                                      origins.where(def.section));
    exp.slots.push_back(std::move(slot));
    resolved.insert_or_assign(def.section, std::move(table));
  }

  // An eval task gives frames only a model trained with image conditioning can take.
  const auto& tasks = exp.conditioning.strs("tasks");
  const std::string& eval_task = exp.eval.str("task");
  if (eval_task != "generation" && std::find(tasks.begin(), tasks.end(), eval_task) == tasks.end())
    throw config_error(fmt::format("{}: [eval] task = \"{}\" needs a model trained for it: [conditioning] tasks = [{}] does "
                                   "not include it (valid: add \"{}\" to [conditioning] tasks, or task = \"generation\")",
                                   origins.where("eval.task"), eval_task,
                                   tasks.empty() ? std::string() : "\"" + join(tasks, "\", \"") + "\"", eval_task));

  if (eval_task == "generation" && exp.eval.real("image_guidance_scale") != 0)
    throw config_error(fmt::format("{}: [eval] image_guidance_scale = {} guides on given frames, and task = \"generation\" gives none "
                                   "(valid: 0, or an image task)",
                                   origins.where("eval.image_guidance_scale"), exp.eval.real("image_guidance_scale")));
  const auto& text_dropout = exp.conditioning.reals("text_dropout");
  if (!text_dropout.empty() && text_dropout.size() != tasks.size())
    throw config_error(fmt::format("{}: [conditioning] text_dropout has {} entries for {} tasks (valid: one probability per entry of "
                                   "tasks, in its order, or none)",
                                   origins.where("conditioning.text_dropout"), text_dropout.size(), tasks.size()));
  if (exp.conditioning.str("curriculum") != "uniform" && tasks.empty())
    throw config_error(fmt::format("{}: [conditioning] curriculum = \"{}\" draws among tasks, and tasks is empty (valid: list the "
                                   "tasks, or curriculum = \"uniform\")",
                                   origins.where("conditioning.curriculum"), exp.conditioning.str("curriculum")));

  auto metrics_node = root.get("metrics");
  if (!metrics_node || !metrics_node->is_array() || metrics_node->as_array()->empty()) {
    throw config_error(fmt::format("{}: no metrics: add at least one [[metrics]] table with plugin = \"<name>\" (known: {})",
                                   metrics_node ? origins.where("metrics") : file_where,
                                   join(catalog.names("metric"), ", ")));
  }
  toml::array resolved_metrics;
  std::set<std::string> seen_metrics;
  size_t index = 0;
  for (auto&& item : *metrics_node->as_array()) {
    std::string section = fmt::format("metrics[{}]", index);
    if (!item.is_table())
      throw config_error(fmt::format("{}: each metrics entry must be a table ([[metrics]]), got {}",
                                     origins.where(fmt::format("metrics.{}", index)), node_type_name(item)));
    auto [slot, table] = resolve_slot(*item.as_table(), section, fmt::format("metrics.{}.", index), "metric",
                                      origins.where(fmt::format("metrics.{}", index)));
    if (!seen_metrics.insert(slot.plugin).second)
      throw config_error(fmt::format("{}: metric '{}' is listed twice", origins.where(fmt::format("metrics.{}", index)), slot.plugin));
    exp.slots.push_back(std::move(slot));
    resolved_metrics.push_back(std::move(table));
    ++index;
  }
  resolved.insert_or_assign("metrics", std::move(resolved_metrics));

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
  exp.config_hash = sha256_hex(to_toml_text(hashed));
  compute_hashes(exp);
  toml::table with_meta = resolved;
  with_meta.insert_or_assign("name", exp.name);
  if (!exp.description.empty()) with_meta.insert_or_assign("description", exp.description);
  exp.resolved_toml = to_toml_text(with_meta);
  return exp;
}

}  // namespace

Experiment load_experiment(const fs::path& file, const std::vector<std::string>& overrides, PluginCatalog& catalog) {
  return load_experiment_impl(file, overrides, catalog, "");
}

Experiment load_experiment_under_benchmark(const fs::path& file, const std::string& benchmark,
                                           const std::vector<std::string>& overrides, PluginCatalog& catalog) {
  if (benchmark.empty()) throw config_error("asg eval needs --benchmark NAME (asg benchmarks lists them)");
  return load_experiment_impl(file, overrides, catalog, benchmark);
}

}  // namespace asg
