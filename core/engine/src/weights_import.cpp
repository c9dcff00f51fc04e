#include "asg/weights_import.h"

#include <fmt/format.h>

#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "asg/error.h"
#include "asg/hash.h"
#include "asg/kinds/autoencoder.h"
#include "asg/kinds/backbone.h"
#include "asg/nn/bert_model.h"
#include "asg/nn/clip_text_model.h"
#include "asg/nn/clip_vision_model.h"
#include "asg/nn/module_state.h"
#include "asg/nn/safetensors.h"
#include "asg/nn/t5_encoder.h"
#include "asg/names.h"

namespace fs = std::filesystem;

namespace asg {
namespace {

// The source as found on disk: its weight files (one, or the shards an index names) and its config.
struct Source {
  std::vector<fs::path> files;
  fs::path index;            // empty unless sharded
  nlohmann::json config;     // empty object without a config.json
  fs::path config_file;
};

nlohmann::json read_json(const fs::path& file) {
  std::ifstream in(file);
  if (!in) throw config_error(fmt::format("{}: cannot read it", file.string()));
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw config_error(fmt::format("{}: not valid JSON ({})", file.string(), e.what()));
  }
}

// The shards of a sharded checkpoint, from its index's weight_map (tensor -> shard file).
std::vector<fs::path> shards_of(const fs::path& index) {
  auto json = read_json(index);
  if (!json.contains("weight_map") || !json["weight_map"].is_object())
    throw config_error(fmt::format("{}: no \"weight_map\" object (a safetensors index maps each tensor to its shard file)", index.string()));
  std::set<std::string> names;
  for (const auto& [tensor, shard] : json["weight_map"].items()) {
    if (!shard.is_string()) throw config_error(fmt::format("{}: weight_map[\"{}\"] is not a file name", index.string(), tensor));
    names.insert(shard.get<std::string>());
  }
  std::vector<fs::path> files;
  for (const auto& name : names) {
    const fs::path shard = index.parent_path() / name;
    if (!fs::is_regular_file(shard)) throw config_error(fmt::format("{}: names shard '{}', which is not there", index.string(), shard.string()));
    files.push_back(shard);
  }
  return files;
}

Source find_source(const fs::path& path) {
  Source s;
  if (!fs::exists(path)) throw config_error(fmt::format("{}: no such file or folder (valid: a .safetensors file, a .safetensors.index.json "
                                                        "or a diffusers/transformers model folder)",
                                                        path.string()));
  fs::path weights = path;
  if (fs::is_directory(path)) {
    static const std::vector<std::string> candidates = {
        "diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.safetensors.index.json", "diffusion_pytorch_model.fp16.safetensors",
        "diffusion_pytorch_model.fp16.safetensors.index.json", "model.safetensors", "model.safetensors.index.json"};
    weights.clear();
    for (const auto& name : candidates)
      if (fs::is_regular_file(path / name)) {
        weights = path / name;
        break;
      }
    if (weights.empty())
      throw config_error(fmt::format("{}: a folder without safetensors weights (looked for {}; .bin checkpoints are pickles and are not "
                                     "read: convert them with the safetensors package first)",
                                     path.string(), join(candidates, ", ")));
  }
  const std::string name = weights.filename().string();
  if (name.ends_with(".index.json")) {
    s.index = weights;
    s.files = shards_of(weights);
  } else {
    s.files = {weights};
  }
  s.config_file = weights.parent_path() / "config.json";
  s.config = fs::is_regular_file(s.config_file) ? read_json(s.config_file) : nlohmann::json::object();
  return s;
}

// How one source class becomes a plugin: which plugin, its parameters, and how to build it for the check.
struct Target {
  std::string kind, plugin;
  std::map<std::string, ParamValue> params;
  std::string extra_toml;  // other tables the weights need (the UNet's temporal slots)
  // Builds the plugin (with `params`) as a module whose tensors the weights must fill.
  std::function<std::shared_ptr<torch::nn::Module>(const PluginCatalog&, const Params&)> build;
  // The source's names made the plugin's, and what the plugin does not use taken out; each line it returns
  // is said in the report ("dropped decoder.*: ...").
  std::function<std::vector<std::string>(std::map<std::string, torch::Tensor>&)> adapt;
  std::string tokenizer_note;  // the tokenizer file the slot table must name, said as a TOML comment
};

Params params_with(const PluginRecord& record, const std::map<std::string, ParamValue>& overrides) {
  auto values = default_params(record.factory.name, record.factory.params).values();
  for (const auto& [k, v] : overrides) values[k] = v;
  return Params(record.factory.name, values);
}

std::string toml_value(const ParamValue& v);

template <typename T>
T config_value(const nlohmann::json& config, const std::string& key, const T& fallback, const fs::path& file) {
  if (!config.contains(key) || config[key].is_null()) return fallback;
  try {
    return config[key].get<T>();
  } catch (const nlohmann::json::exception&) {
    throw config_error(fmt::format("{}: \"{}\" is {}, not the {} expected", file.string(), key, config[key].dump(),
                                   std::is_same_v<T, std::string> ? "string" : "value"));
  }
}

// UNet3DConditionModel (modelscope_unet3d) and I2VGenXLUNet (i2vgenxl_unet): the same body, the same config keys.
Target diffusers_unet_target(const Source& s, const std::string& cls, const std::string& plugin) {
  const auto& c = s.config;
  const fs::path& f = s.config_file;
  const bool i2vgenxl = cls == "I2VGenXLUNet";
  if (c.empty())
    throw config_error(fmt::format("{} weights without a config.json: the layout (levels, widths, heads) is read from it "
                                   "(valid: the model folder, or a file with its config.json beside it)",
                                   cls));
  // What the plugin does not implement must be at diffusers' defaults.
  auto require = [&](const std::string& key, const nlohmann::json& expected) {
    if (c.contains(key) && !c[key].is_null() && c[key] != expected)
      throw config_error(fmt::format("{}: \"{}\" = {}, but {} implements {} with {} only", f.string(), key, c[key].dump(), plugin, cls,
                                     expected.dump()));
  };
  require("act_fn", "silu");
  require("downsample_padding", 1);
  require("mid_block_scale_factor", 1);
  require("time_cond_proj_dim", nullptr);
  require("num_attention_heads", nullptr);
  if (c.contains("attention_head_dim") && !c["attention_head_dim"].is_number_integer())
    throw config_error(fmt::format("{}: \"attention_head_dim\" = {}: {} takes one head width for every level (valid: one integer, as "
                                   "ModelScope's and I2VGen-XL's 64)",
                                   f.string(), c["attention_head_dim"].dump(), plugin));
  Target t;
  t.kind = "backbone";
  t.plugin = plugin;
  const int64_t in = config_value<int64_t>(c, "in_channels", 4, f), out = config_value<int64_t>(c, "out_channels", 4, f);
  t.params["block_out_channels"] = config_value<std::vector<int64_t>>(c, "block_out_channels", {320, 640, 1280, 1280}, f);
  t.params["down_block_types"] = config_value<std::vector<std::string>>(
      c, "down_block_types", {"CrossAttnDownBlock3D", "CrossAttnDownBlock3D", "CrossAttnDownBlock3D", "DownBlock3D"}, f);
  t.params["up_block_types"] = config_value<std::vector<std::string>>(
      c, "up_block_types", {"UpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D"}, f);
  t.params["layers_per_block"] = config_value<int64_t>(c, "layers_per_block", 2, f);
  t.params["attention_head_dim"] = config_value<int64_t>(c, "attention_head_dim", 64, f);
  const int64_t groups = config_value<int64_t>(c, "norm_num_groups", 32, f);
  t.params["norm_num_groups"] = groups;
  if (!i2vgenxl) t.params["norm_eps"] = config_value<double>(c, "norm_eps", 1e-5, f);  // I2VGenXLUNet fixes 1e-5
  const int64_t cross = config_value<int64_t>(c, "cross_attention_dim", 1024, f);
  t.params["cross_attention_dim"] = cross;
  int64_t condition = in - out;
  if (i2vgenxl) {
    // Its image latents have the clip's channels (diffusers: 4, SD's latents); [conditioning] gives them and a mask.
    if (in != out || in != 4)
      throw config_error(fmt::format("{}: in_channels = {}, out_channels = {}: i2vgenxl_unet implements I2VGenXLUNet on SD's 4-channel "
                                     "latents (valid: 4 and 4)",
                                     f.string(), in, out));
    condition = in + 1;
  } else if (in < out) {
    throw config_error(fmt::format("{}: in_channels = {} < out_channels = {} (modelscope_unet3d takes the clip's channels plus its "
                                   "condition channels)",
                                   f.string(), in, out));
  }
  // ModelScope's temporal conv in every slot (I2VGen-XL keeps it): 4 layers, the UNet's groups, dropout 0.1.
  const std::map<std::string, ParamValue> temporal = {{"layers", int64_t{4}}, {"groups", groups}, {"dropout", 0.1}};
  t.extra_toml = "[temporal]\nplugin = \"temporal_conv\"\n";
  for (const auto& [k, v] : temporal) t.extra_toml += fmt::format("{} = {}\n", k, toml_value(v));
  t.build = [out, condition, cross, temporal, plugin](const PluginCatalog& catalog, const Params& params) -> std::shared_ptr<torch::nn::Module> {
    BackboneContext ctx;
    ctx.channels = out;
    ctx.condition_channels = condition;
    ctx.frames = 8;  // the weights do not depend on the clip's size
    ctx.height = ctx.width = 32;
    ctx.text_dim = cross;
    auto temporal_record = catalog.find("temporal", "temporal_conv");
    auto temporal_plugin = load_plugin(*temporal_record);
    const Params temporal_params = params_with(*temporal_record, temporal);
    ctx.make_temporal = [temporal_plugin, temporal_params](const TemporalContext& tc) {
      return create_plugin<TemporalModule>(*temporal_plugin, temporal_params, tc);
    };
    return create_plugin<Backbone>(*load_plugin(*catalog.find("backbone", plugin)), params, ctx);
  };
  return t;
}

Target autoencoder_kl_target(const Source& s) {
  const auto& c = s.config;
  const fs::path& f = s.config_file;
  if (c.empty())
    throw config_error("AutoencoderKL weights without a config.json: the layout (levels, widths) is read from it (valid: the vae/ "
                       "folder, or a file with its config.json beside it)");
  auto require = [&](const std::string& key, const nlohmann::json& expected) {
    if (c.contains(key) && !c[key].is_null() && c[key] != expected)
      throw config_error(fmt::format("{}: \"{}\" = {}, but autoencoder_kl implements AutoencoderKL with {} only", f.string(), key,
                                     c[key].dump(), expected.dump()));
  };
  require("act_fn", "silu");
  require("use_quant_conv", true);
  require("use_post_quant_conv", true);
  require("mid_block_add_attention", true);
  const int64_t in = config_value<int64_t>(c, "in_channels", 3, f), out = config_value<int64_t>(c, "out_channels", 3, f);
  if (in != out)
    throw config_error(fmt::format("{}: in_channels = {} but out_channels = {} (autoencoder_kl codes and decodes the same channels)",
                                   f.string(), in, out));
  for (const char* key : {"down_block_types", "up_block_types"}) {
    const std::string block = std::string(key) == "down_block_types" ? "DownEncoderBlock2D" : "UpDecoderBlock2D";
    for (const auto& type : config_value<std::vector<std::string>>(c, key, {}, f))
      if (type != block)
        throw config_error(fmt::format("{}: \"{}\" holds \"{}\" (autoencoder_kl implements {} only)", f.string(), key, type, block));
  }
  Target t;
  t.kind = "autoencoder";
  t.plugin = "autoencoder_kl";
  const auto channels = config_value<std::vector<int64_t>>(c, "block_out_channels", {64}, f);
  t.params["block_out_channels"] = channels;
  t.params["layers_per_block"] = config_value<int64_t>(c, "layers_per_block", 1, f);
  t.params["latent_channels"] = config_value<int64_t>(c, "latent_channels", 4, f);
  t.params["norm_num_groups"] = config_value<int64_t>(c, "norm_num_groups", 32, f);
  t.params["image_channels"] = in;
  t.params["scaling_factor"] = config_value<double>(c, "scaling_factor", 0.18215, f);
  const int64_t size = int64_t{8} << (channels.size() - 1);
  t.build = [size](const PluginCatalog& catalog, const Params& params) -> std::shared_ptr<torch::nn::Module> {
    return create_plugin<Autoencoder>(*load_plugin(*catalog.find("autoencoder", "autoencoder_kl")), params,
                                      AutoencoderContext{4, 1, size, size});
  };
  return t;
}


// Drops every tensor whose name starts with one of `prefixes`, returning a line per prefix that held any.
std::vector<std::string> drop_prefixed(std::map<std::string, torch::Tensor>& tensors, const std::vector<std::pair<std::string, std::string>>& prefixes) {
  std::vector<std::string> notes;
  for (const auto& [prefix, why] : prefixes) {
    int64_t dropped = 0;
    for (auto it = tensors.begin(); it != tensors.end();)
      if (it->first.starts_with(prefix)) {
        it = tensors.erase(it);
        ++dropped;
      } else {
        ++it;
      }
    if (dropped > 0) notes.push_back(fmt::format("dropped {}* ({} tensor{}): {}", prefix, dropped, dropped == 1 ? "" : "s", why));
  }
  return notes;
}

// Puts `prefix` before every name that lacks it (transformers 5 saves CLIPTextModel and ChineseCLIPTextModel
// without the text_model. their version-4 and published checkpoints have).
void ensure_prefix(std::map<std::string, torch::Tensor>& tensors, const std::string& prefix, const std::vector<std::string>& keep_as_is) {
  std::map<std::string, torch::Tensor> renamed;
  for (auto& [key, t] : tensors) {
    const bool keep = key.starts_with(prefix) || std::any_of(keep_as_is.begin(), keep_as_is.end(), [&](const auto& k) { return key.starts_with(k); });
    renamed.emplace(keep ? key : prefix + key, t);
  }
  tensors = std::move(renamed);
}

// A transformers config's text part: CLIPModel and ChineseCLIPModel keep it under text_config.
const nlohmann::json& text_config_of(const nlohmann::json& c) { return c.contains("text_config") && c["text_config"].is_object() ? c["text_config"] : c; }

Target clip_text_target(const Source& s) {
  if (s.config.empty())
    throw config_error("CLIPTextModel weights without a config.json: the layout (width, layers, heads) is read from it (valid: the "
                       "text_encoder/ folder of a pipeline, or a file with its config.json beside it)");
  const auto& c = text_config_of(s.config);
  const fs::path& f = s.config_file;
  Target t;
  t.kind = "text_encoder";
  t.plugin = "clip_text";
  t.params["vocab_size"] = config_value<int64_t>(c, "vocab_size", 49408, f);
  t.params["hidden_size"] = config_value<int64_t>(c, "hidden_size", 512, f);
  t.params["intermediate_size"] = config_value<int64_t>(c, "intermediate_size", 2048, f);
  t.params["layers"] = config_value<int64_t>(c, "num_hidden_layers", 12, f);
  t.params["heads"] = config_value<int64_t>(c, "num_attention_heads", 8, f);
  const int64_t positions = config_value<int64_t>(c, "max_position_embeddings", 77, f);
  t.params["max_positions"] = positions;
  if (positions < 77) t.params["context_length"] = positions;  // the plugin's default context would not fit
  t.params["layer_norm_eps"] = config_value<double>(c, "layer_norm_eps", 1e-5, f);
  const auto act = config_value<std::string>(c, "hidden_act", "quick_gelu", f);
  nn::text_activation_from_name(act);
  t.params["activation"] = act;
  // eos_token_id is not read: clip_text pools at the tokenizer's <|endoftext|>, which is what transformers
  // finds both ways it looks (the configured id, or the largest id for version-4 configs that say 2).
  t.tokenizer_note = "merges = \"<the tokenizer's merges.txt (tokenizer/ beside text_encoder/) or open_clip's bpe_simple_vocab_16e6.txt.gz>\"";
  t.adapt = [](std::map<std::string, torch::Tensor>& tensors) {
    ensure_prefix(tensors, "text_model.", {"text_projection.", "vision_model.", "visual_projection.", "logit_scale"});
    return drop_prefixed(tensors, {{"text_projection.", "CLIPTextModelWithProjection's projection of the pooled output (clip_text's pooled "
                                                        "output is the text encoder contract's D-wide one)"},
                                   {"text_model.embeddings.position_ids", "a buffer of 0..L-1, not a weight"},
                                   {"vision_model.", "CLIP's image tower"}, {"visual_projection.", "CLIP's image tower"},
                                   {"logit_scale", "CLIP's contrastive temperature"}});
  };
  t.build = [](const PluginCatalog&, const Params& p) -> std::shared_ptr<torch::nn::Module> {
    return nn::ClipTextModel(nn::ClipTextOptions{.vocab_size = p.integer("vocab_size"), .hidden_size = p.integer("hidden_size"),
                                                 .intermediate_size = p.integer("intermediate_size"), .layers = p.integer("layers"),
                                                 .heads = p.integer("heads"), .max_positions = p.integer("max_positions"),
                                                 .layer_norm_eps = p.real("layer_norm_eps"),
                                                 .activation = nn::text_activation_from_name(p.str("activation"))})
        .ptr();
  };
  return t;
}

// CLIPVisionModelWithProjection (I2VGen-XL's image_encoder/) or CLIPVisionModel.
Target clip_vision_target(const Source& s, bool with_projection) {
  if (s.config.empty())
    throw config_error("CLIP vision weights without a config.json: the layout (width, layers, heads, patches) is read from it (valid: "
                       "the image_encoder/ folder of a pipeline, or a file with its config.json beside it)");
  const auto& c = s.config;
  const fs::path& f = s.config_file;
  Target t;
  t.kind = "image_encoder";
  t.plugin = "clip_vision";
  t.params["image_size"] = config_value<int64_t>(c, "image_size", 224, f);
  t.params["patch_size"] = config_value<int64_t>(c, "patch_size", 32, f);
  t.params["hidden_size"] = config_value<int64_t>(c, "hidden_size", 768, f);
  t.params["intermediate_size"] = config_value<int64_t>(c, "intermediate_size", 3072, f);
  t.params["layers"] = config_value<int64_t>(c, "num_hidden_layers", 12, f);
  t.params["heads"] = config_value<int64_t>(c, "num_attention_heads", 12, f);
  t.params["layer_norm_eps"] = config_value<double>(c, "layer_norm_eps", 1e-5, f);
  const auto act = config_value<std::string>(c, "hidden_act", "quick_gelu", f);
  nn::text_activation_from_name(act);
  t.params["activation"] = act;
  const auto channels = config_value<int64_t>(c, "num_channels", 3, f);
  if (channels != 3) throw config_error(fmt::format("{}: \"num_channels\" is {} (valid: 3, RGB pictures)", f.string(), channels));
  // CLIPVisionModel has no visual_projection: the plugin then gives the pooled output.
  t.params["projection_dim"] = with_projection ? config_value<int64_t>(c, "projection_dim", 512, f) : int64_t{0};
  t.adapt = [](std::map<std::string, torch::Tensor>& tensors) {
    // transformers 5 saves CLIPVisionModel without the vision_model. prefix its other CLIP classes have.
    ensure_prefix(tensors, "vision_model.", {"visual_projection.", "text_model.", "text_projection.", "logit_scale"});
    return drop_prefixed(tensors, {{"vision_model.embeddings.position_ids", "a buffer of 0..P, not a weight"},
                                   {"text_model.", "CLIP's text tower"}, {"text_projection.", "CLIP's text tower"},
                                   {"logit_scale", "CLIP's contrastive temperature"}});
  };
  t.build = [](const PluginCatalog&, const Params& p) -> std::shared_ptr<torch::nn::Module> {
    return nn::ClipVisionModel(nn::ClipVisionOptions{.image_size = p.integer("image_size"), .patch_size = p.integer("patch_size"),
                                                     .hidden_size = p.integer("hidden_size"), .intermediate_size = p.integer("intermediate_size"),
                                                     .layers = p.integer("layers"), .heads = p.integer("heads"),
                                                     .layer_norm_eps = p.real("layer_norm_eps"),
                                                     .activation = nn::text_activation_from_name(p.str("activation")),
                                                     .projection_dim = p.integer("projection_dim")})
        .ptr();
  };
  return t;
}

Target t5_target(const Source& s) {
  if (s.config.empty())
    throw config_error("T5 weights without a config.json: the layout (width, blocks, heads, feed-forward) is read from it (valid: the "
                       "model folder, or a file with its config.json beside it)");
  const auto& c = s.config;
  const fs::path& f = s.config_file;
  Target t;
  t.kind = "text_encoder";
  t.plugin = "t5_text";
  t.params["vocab_size"] = config_value<int64_t>(c, "vocab_size", 32128, f);
  t.params["d_model"] = config_value<int64_t>(c, "d_model", 512, f);
  t.params["d_kv"] = config_value<int64_t>(c, "d_kv", 64, f);
  t.params["d_ff"] = config_value<int64_t>(c, "d_ff", 2048, f);
  t.params["layers"] = config_value<int64_t>(c, "num_layers", 6, f);
  t.params["heads"] = config_value<int64_t>(c, "num_heads", 8, f);
  t.params["relative_attention_num_buckets"] = config_value<int64_t>(c, "relative_attention_num_buckets", 32, f);
  t.params["relative_attention_max_distance"] = config_value<int64_t>(c, "relative_attention_max_distance", 128, f);
  t.params["layer_norm_epsilon"] = config_value<double>(c, "layer_norm_epsilon", 1e-6, f);
  const auto proj = config_value<std::string>(c, "feed_forward_proj", "relu", f);
  if (proj != "relu" && proj != "gated-gelu")
    throw config_error(fmt::format("{}: \"feed_forward_proj\" = \"{}\" (valid: relu, gated-gelu)", f.string(), proj));
  t.params["feed_forward_proj"] = proj;
  t.tokenizer_note = "vocabulary = \"<the model's spiece.model (tokenizer = \\\"sentencepiece\\\") or vocab.txt (tokenizer = \\\"wordpiece\\\")>\"";
  t.adapt = [](std::map<std::string, torch::Tensor>& tensors) {
    std::vector<std::string> notes;
    if (!tensors.contains("shared.weight") && tensors.contains("encoder.embed_tokens.weight")) {
      tensors.emplace("shared.weight", tensors.at("encoder.embed_tokens.weight"));
      notes.push_back("encoder.embed_tokens.weight taken as shared.weight (the same tied embedding)");
    }
    for (auto& n : drop_prefixed(tensors, {{"encoder.embed_tokens.weight", "the tied copy of shared.weight"},
                                           {"decoder.", "T5's decoder (a text encoder uses the encoder only)"},
                                           {"lm_head.", "T5's language-model head (decoder side)"}}))
      notes.push_back(n);
    return notes;
  };
  t.build = [](const PluginCatalog&, const Params& p) -> std::shared_ptr<torch::nn::Module> {
    const bool gated = p.str("feed_forward_proj") == "gated-gelu";
    return nn::T5Encoder(nn::T5EncoderOptions{.vocab_size = p.integer("vocab_size"), .d_model = p.integer("d_model"), .d_kv = p.integer("d_kv"),
                                              .d_ff = p.integer("d_ff"), .layers = p.integer("layers"), .heads = p.integer("heads"),
                                              .relative_attention_num_buckets = p.integer("relative_attention_num_buckets"),
                                              .relative_attention_max_distance = p.integer("relative_attention_max_distance"),
                                              .layer_norm_epsilon = p.real("layer_norm_epsilon"), .gated = gated,
                                              .activation = gated ? nn::TextActivation::GeluTanh : nn::TextActivation::Relu})
        .ptr();
  };
  return t;
}

Target chinese_clip_text_target(const Source& s) {
  if (s.config.empty())
    throw config_error("Chinese-CLIP weights without a config.json: the layout (width, layers, heads) is read from it (valid: the "
                       "model folder, or a file with its config.json beside it)");
  const auto& c = text_config_of(s.config);
  const fs::path& f = s.config_file;
  Target t;
  t.kind = "text_encoder";
  t.plugin = "chinese_clip_text";
  t.params["vocab_size"] = config_value<int64_t>(c, "vocab_size", 21128, f);
  t.params["hidden_size"] = config_value<int64_t>(c, "hidden_size", 768, f);
  t.params["intermediate_size"] = config_value<int64_t>(c, "intermediate_size", 3072, f);
  t.params["layers"] = config_value<int64_t>(c, "num_hidden_layers", 12, f);
  t.params["heads"] = config_value<int64_t>(c, "num_attention_heads", 12, f);
  const int64_t positions = config_value<int64_t>(c, "max_position_embeddings", 512, f);
  t.params["max_positions"] = positions;
  if (positions < 52) t.params["context_length"] = positions;  // the plugin's default context would not fit
  t.params["type_vocab_size"] = config_value<int64_t>(c, "type_vocab_size", 2, f);
  t.params["layer_norm_eps"] = config_value<double>(c, "layer_norm_eps", 1e-12, f);
  const auto act = config_value<std::string>(c, "hidden_act", "gelu", f);
  nn::text_activation_from_name(act);
  t.params["activation"] = act;
  if (config_value<std::string>(c, "position_embedding_type", "absolute", f) != "absolute")
    throw config_error(fmt::format("{}: \"position_embedding_type\" = {} (valid: absolute)", f.string(), c["position_embedding_type"].dump()));
  t.tokenizer_note = "vocabulary = \"<the model's vocab.txt>\"";
  t.adapt = [](std::map<std::string, torch::Tensor>& tensors) {
    // BertModel / ChineseCLIPTextModel name from embeddings.; ChineseCLIPModel from text_model.
    ensure_prefix(tensors, "text_model.", {"text_projection.", "vision_model.", "visual_projection.", "logit_scale", "bert."});
    std::map<std::string, torch::Tensor> renamed;
    for (auto& [key, v] : tensors) renamed.emplace(key.starts_with("bert.") ? "text_model." + key.substr(5) : key, v);
    tensors = std::move(renamed);
    return drop_prefixed(tensors, {{"text_projection.", "Chinese-CLIP's projection of [CLS] (chinese_clip_text's pooled output is the "
                                                        "text encoder contract's D-wide [CLS] state)"},
                                   {"text_model.pooler.", "BERT's pooler, which Chinese-CLIP does not use"},
                                   {"text_model.embeddings.position_ids", "a buffer of 0..L-1, not a weight"},
                                   {"text_model.embeddings.token_type_ids", "a buffer of zeros, not a weight"},
                                   {"vision_model.", "Chinese-CLIP's image tower"}, {"visual_projection.", "Chinese-CLIP's image tower"},
                                   {"logit_scale", "CLIP's contrastive temperature"}, {"cls.", "BERT's pre-training heads"}});
  };
  t.build = [](const PluginCatalog&, const Params& p) -> std::shared_ptr<torch::nn::Module> {
    return nn::BertModel(nn::BertOptions{.vocab_size = p.integer("vocab_size"), .hidden_size = p.integer("hidden_size"),
                                         .intermediate_size = p.integer("intermediate_size"), .layers = p.integer("layers"),
                                         .heads = p.integer("heads"), .max_positions = p.integer("max_positions"),
                                         .type_vocab_size = p.integer("type_vocab_size"), .layer_norm_eps = p.real("layer_norm_eps"),
                                         .activation = nn::text_activation_from_name(p.str("activation"))})
        .ptr();
  };
  return t;
}

struct ClassHandler {
  std::string format;  // the naming it comes in
  std::function<Target(const Source&)> target;
};
const std::map<std::string, ClassHandler>& handlers() {
  static const std::map<std::string, ClassHandler> h = {
      {"UNet3DConditionModel", {"diffusers", [](const Source& s) { return diffusers_unet_target(s, "UNet3DConditionModel", "modelscope_unet3d"); }}},
      {"I2VGenXLUNet", {"diffusers", [](const Source& s) { return diffusers_unet_target(s, "I2VGenXLUNet", "i2vgenxl_unet"); }}},
      {"AutoencoderKL", {"diffusers", autoencoder_kl_target}},
      {"CLIPTextModel", {"transformers", clip_text_target}},
      {"CLIPTextModelWithProjection", {"transformers", clip_text_target}},
      {"CLIPVisionModel", {"transformers", [](const Source& s) { return clip_vision_target(s, false); }}},
      {"CLIPVisionModelWithProjection", {"transformers", [](const Source& s) { return clip_vision_target(s, true); }}},
      {"T5EncoderModel", {"transformers", t5_target}},
      {"T5ForConditionalGeneration", {"transformers", t5_target}},
      {"T5Model", {"transformers", t5_target}},
      {"ChineseCLIPModel", {"transformers", chinese_clip_text_target}},
      {"ChineseCLIPTextModel", {"transformers", chinese_clip_text_target}},
      {"BertModel", {"transformers", chinese_clip_text_target}},
  };
  return h;
}

std::string class_of(const Source& s, const std::string& given) {
  std::string from_config;
  if (s.config.contains("_class_name") && s.config["_class_name"].is_string()) from_config = s.config["_class_name"];
  else if (s.config.contains("architectures") && s.config["architectures"].is_array() && !s.config["architectures"].empty())
    from_config = s.config["architectures"][0].get<std::string>();
  if (!given.empty() && !from_config.empty() && given != from_config)
    throw config_error(fmt::format("--class {} but {} says \"{}\"", given, s.config_file.string(), from_config));
  const std::string name = given.empty() ? from_config : given;
  if (name.empty())
    throw config_error(fmt::format("{}: which model these weights are for is not known: no config.json beside them (valid: pass --class, "
                                   "one of: {})",
                                   s.files.front().string(), join(importable_classes(), ", ")));
  if (!handlers().contains(name))
    throw config_error(fmt::format("{}: class '{}' cannot be imported yet (valid: {})",
                                   (s.config.empty() ? s.files.front() : s.config_file).string(), name, join(importable_classes(), ", ")));
  return name;
}

std::string toml_value(const ParamValue& v) {
  return std::visit(
      [](const auto& x) -> std::string {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::string>) return "\"" + x + "\"";
        else if constexpr (std::is_same_v<T, bool>) return x ? "true" : "false";
        else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
          std::vector<std::string> q;
          for (const auto& e : x) q.push_back("\"" + e + "\"");
          return "[" + join(q, ", ") + "]";
        } else if constexpr (std::is_same_v<T, std::vector<int64_t>> || std::is_same_v<T, std::vector<double>>) {
          std::vector<std::string> q;
          for (const auto& e : x) q.push_back(fmt::format("{}", e));
          return "[" + join(q, ", ") + "]";
        } else {
          return fmt::format("{}", x);
        }
      },
      v);
}

}  // namespace

std::vector<std::string> importable_classes() {
  std::vector<std::string> names;
  for (const auto& [name, handler] : handlers()) names.push_back(name);
  return names;
}

WeightImportReport import_weights(const WeightImportOptions& o, const PluginCatalog& catalog) {
  static const std::map<std::string, torch::ScalarType> dtypes = {
      {"float32", torch::kFloat32}, {"float16", torch::kFloat16}, {"bfloat16", torch::kBFloat16}};
  if (o.dtype != "keep" && !dtypes.contains(o.dtype))
    throw config_error(fmt::format("--dtype {} (valid: keep, float32, float16, bfloat16)", o.dtype));
  if (o.format != "diffusers" && o.format != "transformers")
    throw config_error(fmt::format("--format {} (valid: diffusers, transformers)", o.format));
  const Source source = find_source(o.source);
  const std::string cls = class_of(source, o.source_class);
  const ClassHandler& handler = handlers().at(cls);
  if (handler.format != o.format)
    throw config_error(fmt::format("--format {}, but {} weights come in the {} format (valid: --format {})", o.format, cls, handler.format,
                                   handler.format));

  // Every tensor of every file, each exactly once.
  std::map<std::string, torch::Tensor> tensors;
  std::map<std::string, std::string> file_of;
  WeightImportReport report;
  std::string source_hashes;
  for (const auto& file : source.files) {
    for (auto& [key, t] : nn::read_safetensors(file).tensors) {
      if (tensors.contains(key))
        throw config_error(fmt::format("{}: tensor '{}' is also in {} (a tensor must be in one shard only)", file.string(), key, file_of[key]));
      file_of[key] = file.string();
      tensors.emplace(key, o.dtype == "keep" ? t : t.to(dtypes.at(o.dtype)));
    }
    report.source_files.push_back(file.string());
    source_hashes += (source_hashes.empty() ? "" : " ") + file.filename().string() + ":" + sha256_file(file);
  }
  if (!source.index.empty()) {
    auto index = read_json(source.index);
    for (const auto& [key, shard] : index["weight_map"].items())
      if (!tensors.contains(key))
        throw config_error(fmt::format("{}: names tensor '{}' in {}, which does not hold it", source.index.string(), key, shard.get<std::string>()));
    for (const auto& [key, t] : tensors)
      if (!index["weight_map"].contains(key))
        throw config_error(fmt::format("{}: tensor '{}' of {} is not in the index's weight_map", source.index.string(), key, file_of[key]));
  }

  // The check: the plugin these weights are for, built from the source's config, takes every tensor.
  const Target target = handler.target(source);
  if (target.adapt) report.notes = target.adapt(tensors);
  const Params params = params_with(*catalog.find(target.kind, target.plugin), target.params);
  {
    auto module = target.build(catalog, params);
    try {
      nn::load_named_tensors(*module, tensors, fmt::format("{} as {} for {} '{}'", o.source.string(), cls, target.kind, target.plugin));
    } catch (const Error& e) {
      throw config_error(e.what());
    }
  }

  std::map<std::string, std::string> metadata = {
      {"format", "pt"},
      {"asg_weights", "1"},
      {"asg_kind", target.kind},
      {"asg_plugin", target.plugin},
      {"source_format", o.format},
      {"source_class", cls},
      {"source_sha256", source_hashes},
      {"source_config", source.config.dump()},
  };
  fs::create_directories(fs::absolute(o.out).parent_path());
  nn::write_safetensors(o.out, tensors, metadata);

  report.source_class = cls;
  report.kind = target.kind;
  report.plugin = target.plugin;
  for (const auto& [key, t] : tensors) {
    ++report.tensors;
    report.bytes += t.numel() * t.element_size();
  }
  report.out_sha256 = sha256_file(o.out);
  std::string toml = fmt::format("[{}]\nplugin = \"{}\"\n", target.kind, target.plugin);
  for (const auto& [k, v] : target.params) toml += fmt::format("{} = {}\n", k, toml_value(v));
  if (!target.tokenizer_note.empty()) toml += fmt::format("{}  # set this\n", target.tokenizer_note);
  toml += fmt::format("init_from = \"{}\"\ninit_sha256 = \"{}\"\n", fs::absolute(o.out).lexically_normal().string(), report.out_sha256);
  if (!target.extra_toml.empty()) toml += "\n" + target.extra_toml;
  report.slot_toml = toml;
  return report;
}

std::string merge_weights(const std::vector<WeightPart>& parts, const std::filesystem::path& out) {
  if (parts.empty()) throw config_error("asg weights merge: no parts (valid: PREFIX=FILE, e.g. t5.=t5.safetensors)");
  std::map<std::string, torch::Tensor> tensors;
  std::map<std::string, std::string> part_of;
  std::string recorded;
  for (const auto& part : parts) {
    if (part.prefix.empty() || part.prefix.back() != '.')
      throw config_error(fmt::format("{}: prefix '{}' (valid: a module name ending in '.', e.g. \"t5.\")", part.file.string(), part.prefix));
    if (!fs::is_regular_file(part.file)) throw config_error(fmt::format("{}: no such file", part.file.string()));
    for (auto& [key, t] : nn::read_safetensors(part.file).tensors) {
      const std::string name = part.prefix + key;
      if (tensors.contains(name))
        throw config_error(fmt::format("{}: '{}' is also given by {}", part.file.string(), name, part_of[name]));
      part_of[name] = part.file.string();
      tensors.emplace(name, t);
    }
    recorded += (recorded.empty() ? "" : " ") + part.prefix + "=" + part.file.filename().string() + ":" + sha256_file(part.file);
  }
  fs::create_directories(fs::absolute(out).parent_path());
  nn::write_safetensors(out, tensors, {{"format", "pt"}, {"asg_weights", "1"}, {"merged_from", recorded}});
  return sha256_file(out);
}

}  // namespace asg
