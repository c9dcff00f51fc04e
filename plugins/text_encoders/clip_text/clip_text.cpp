// clip_text: CLIP's text tower in C++ (asg/nn/clip_text_model.h, exact to transformers' CLIPTextModel) with
// CLIP's BPE tokenizer on the user's merges file; its weights come from `init_from` (a transformers
// checkpoint, or one `asg weights import --format transformers` wrote). The defaults are ModelScope
// text-to-video's encoder: OpenCLIP ViT-H/14's text tower without its last layer (23 of 24, 1024 wide).
//
// The pooled output is transformers' pooler_output (the state at <|endoftext|>), D wide as the text-encoder
// contract asks; CLIPTextModelWithProjection's text_projection is not part of this plugin (the import drops it).
//
// What the backbone sees, as diffusers' video pipelines give it: the final LayerNorm of the last kept
// layer for all context_length positions, padding included, and a mask of all true (their UNets take no
// encoder mask), unless mask_padding says to mark the positions after <|endoftext|> as padding.
#include <torch/torch.h>

#include <fmt/format.h>

#include "asg/error.h"
#include "asg/kinds/text_encoder.h"
#include "asg/nn/clip_text_model.h"
#include "asg/nn/module_state.h"
#include "asg/plugin.h"
#include "asg/text/clip_tokenizer.h"

namespace asg::text_encoders {
namespace {

nn::ClipTextOptions model_options(const Params& p, const ClipTokenizer& tokenizer) {
  nn::ClipTextOptions o;
  o.vocab_size = p.integer("vocab_size");
  o.hidden_size = p.integer("hidden_size");
  o.intermediate_size = p.integer("intermediate_size");
  o.layers = p.integer("layers");
  o.heads = p.integer("heads");
  o.max_positions = p.integer("max_positions");
  o.layer_norm_eps = p.real("layer_norm_eps");
  o.activation = nn::text_activation_from_name(p.str("activation"));
  o.eos_token_id = tokenizer.end_token();
  if (tokenizer.vocab_size() > o.vocab_size)
    throw config_error(fmt::format("vocab_size = {} is smaller than the tokenizer's vocabulary ({} ids from {})", o.vocab_size,
                                   tokenizer.vocab_size(), p.str("merges")));
  if (p.integer("context_length") > o.max_positions)
    throw config_error(fmt::format("context_length = {} exceeds max_positions = {}", p.integer("context_length"), o.max_positions));
  if (p.integer("skip_last_layers") >= o.layers)
    throw config_error(fmt::format("skip_last_layers = {} leaves none of the {} layers", p.integer("skip_last_layers"), o.layers));
  if (o.hidden_size % o.heads != 0)
    throw config_error(fmt::format("hidden_size = {} is not divisible by heads = {}", o.hidden_size, o.heads));
  return o;
}

class ClipText final : public TextEncoder {
 public:
  explicit ClipText(const Params& p)
      : tokenizer_(ClipTokenizer::from_merges_file(p.str("merges"), p.integer("max_merges"))),
        context_(p.integer("context_length")),
        pad_token_(p.integer("pad_token_id")),
        skip_(p.integer("skip_last_layers")),
        pass_attention_mask_(p.boolean("attention_mask")),
        mask_padding_(p.boolean("mask_padding")),
        frozen_(p.boolean("frozen")),
        model_(model_options(p, tokenizer_)) {
    nn::adopt_children(*this, *model_);  // transformers' parameter names (text_model.*)
    if (frozen_) nn::freeze(*this);
  }

  int64_t dim() const override { return model_->options().hidden_size; }
  bool frozen() const override { return frozen_; }

  TextEmbedding encode(const std::vector<std::string>& captions) override {
    const auto batch = static_cast<int64_t>(captions.size());
    auto ids = torch::full({batch, context_}, pad_token_, torch::kLong);
    auto real = torch::zeros({batch, context_}, torch::kBool);
    auto id = ids.accessor<int64_t, 2>();
    auto r = real.accessor<bool, 2>();
    for (int64_t b = 0; b < batch; ++b) {
      const auto tokens = tokenizer_.tokenize(captions[static_cast<size_t>(b)], context_, /*truncate=*/true);
      for (int64_t i = 0; i < context_; ++i) {
        id[b][i] = tokens[static_cast<size_t>(i)];
        r[b][i] = true;
        if (tokens[static_cast<size_t>(i)] == tokenizer_.end_token()) {
          for (int64_t j = i + 1; j < context_; ++j) id[b][j] = pad_token_;
          break;
        }
      }
    }
    const auto device = model_->parameters().front().device();
    ids = ids.to(device);
    real = real.to(device);
    std::optional<torch::NoGradGuard> no_grad;
    if (frozen_) no_grad.emplace();
    auto out = model_->forward(ids, pass_attention_mask_ ? real : torch::Tensor(), skip_);
    return TextEmbedding{out.hidden, mask_padding_ ? real : torch::ones_like(real), out.pooled};
  }

 private:
  ClipTokenizer tokenizer_;
  int64_t context_, pad_token_, skip_;
  bool pass_attention_mask_, mask_padding_, frozen_;
  nn::ClipTextModel model_;
};

}  // namespace
}  // namespace asg::text_encoders

ASG_PLUGIN_LIBRARY(asg::make_factory<asg::TextEncoder>(
    "clip_text", "1.0.0", "CLIP's text tower exact to transformers' CLIPTextModel, weights from init_from (default: ModelScope's 23-layer OpenCLIP-H)",
    std::vector<asg::ParamSpec>{
        asg::path_param("merges", "", "CLIP's BPE merges file (open_clip's bpe_simple_vocab_16e6.txt.gz)").must_set(),
        asg::int_param("max_merges", 48894, "merges read from the file, as OpenAI's tokenizer does; 0 = all").range(0, 1e7),
        asg::int_param("context_length", 77, "token ids per caption; longer captions are cut with <|endoftext|> last").range(2, 4096),
        asg::int_param("pad_token_id", 0, "id after <|endoftext|>: 0 (open_clip, SD 2 / ModelScope's tokenizer, '!') or 49407 (SD 1.x's)").range(0, 1e7),
        asg::int_param("vocab_size", 49408, "token embedding rows (at least the tokenizer's vocabulary)").range(2, 1e7),
        asg::int_param("hidden_size", 1024, "width (OpenCLIP-H: 1024, OpenAI ViT-L: 768)").range(1, 65536),
        asg::int_param("intermediate_size", 4096, "MLP width").range(1, 262144),
        asg::int_param("layers", 23, "transformer layers (ModelScope keeps 23 of OpenCLIP-H's 24)").range(1, 256),
        asg::int_param("heads", 16, "attention heads").range(1, 1024),
        asg::int_param("max_positions", 77, "position embeddings").range(2, 65536),
        asg::float_param("layer_norm_eps", 1e-5, "LayerNorm epsilon").range(0, 1),
        asg::string_param("activation", "gelu", "MLP activation: gelu (OpenCLIP) or quick_gelu (OpenAI)").one_of({"gelu", "quick_gelu", "gelu_new", "relu"}),
        asg::int_param("skip_last_layers", 0, "diffusers' clip_skip: this many last layers are not run").range(0, 255),
        asg::bool_param("attention_mask", false, "pass the padding mask into the tower (transformers' attention_mask); diffusers' pipelines pass none"),
        asg::bool_param("mask_padding", false, "mark the positions after <|endoftext|> as padding for the backbone's cross-attention "
                                               "(diffusers' UNets attend to all positions)"),
        asg::bool_param("frozen", true, "keep the weights fixed (a pretrained encoder); false trains them with the backbone"),
    },
    [](const asg::Params& p) { return std::make_shared<asg::text_encoders::ClipText>(p); }))
