// chinese_clip_text: Chinese-CLIP's text tower in C++ (asg/nn/bert_model.h, exact to transformers'
// ChineseCLIPModel text side: BERT's architecture) with BERT's WordPiece tokenizer (CJK characters split,
// lower-cased) on the model's vocab.txt. Weights come from `init_from`. The defaults are the RoBERTa-wwm-ext-
// large tower of Chinese-CLIP ViT-H/14 (24 layers, 1024 wide, 21,128 ids), the text tokens RDTF conditions on.
//
// What the backbone sees: the last hidden state for all context_length positions ([CLS] ... [SEP], [PAD];
// the padding mask goes into BERT, as Chinese-CLIP's processor returns it), a mask of all true unless
// mask_padding, and the [CLS] state as the pooled vector (what Chinese-CLIP projects into its joint space).
#include <torch/torch.h>

#include <fmt/format.h>

#include "asg/error.h"
#include "asg/kinds/text_encoder.h"
#include "asg/nn/bert_model.h"
#include "asg/nn/token_batch.h"
#include "asg/nn/module_state.h"
#include "asg/plugin.h"
#include "asg/text/wordpiece_tokenizer.h"

namespace asg::text_encoders {
namespace {

nn::BertOptions model_options(const Params& p, const WordPieceTokenizer& tokenizer) {
  nn::BertOptions o;
  o.vocab_size = p.integer("vocab_size");
  o.hidden_size = p.integer("hidden_size");
  o.intermediate_size = p.integer("intermediate_size");
  o.layers = p.integer("layers");
  o.heads = p.integer("heads");
  o.max_positions = p.integer("max_positions");
  o.type_vocab_size = p.integer("type_vocab_size");
  o.layer_norm_eps = p.real("layer_norm_eps");
  o.activation = nn::text_activation_from_name(p.str("activation"));
  if (tokenizer.vocab_size() > o.vocab_size)
    throw config_error(fmt::format("vocab_size = {} is smaller than the tokenizer's vocabulary ({} ids from {})", o.vocab_size,
                                   tokenizer.vocab_size(), p.str("vocabulary")));
  if (p.integer("context_length") > o.max_positions)
    throw config_error(fmt::format("context_length = {} exceeds max_positions = {}", p.integer("context_length"), o.max_positions));
  if (o.hidden_size % o.heads != 0)
    throw config_error(fmt::format("hidden_size = {} is not divisible by heads = {}", o.hidden_size, o.heads));
  return o;
}

class ChineseClipText final : public TextEncoder {
 public:
  explicit ChineseClipText(const Params& p)
      : tokenizer_(WordPieceTokenizer::from_vocab_file(p.str("vocabulary"), p.boolean("lower_case"))),
        context_(p.integer("context_length")),
        pass_attention_mask_(p.boolean("attention_mask")),
        mask_padding_(p.boolean("mask_padding")),
        frozen_(p.boolean("frozen")),
        model_(model_options(p, tokenizer_)) {
    nn::adopt_children(*this, *model_);  // transformers' parameter names
    if (frozen_) nn::freeze(*this);
  }

  int64_t dim() const override { return model_->options().hidden_size; }
  bool frozen() const override { return frozen_; }

  TextEmbedding encode(const std::vector<std::string>& captions) override {
    auto [ids, real] = nn::token_batch(tokenizer_, captions, context_);
    const auto device = model_->parameters().front().device();
    ids = ids.to(device);
    real = real.to(device);
    std::optional<torch::NoGradGuard> no_grad;
    if (frozen_) no_grad.emplace();
    auto out = model_->forward(ids, pass_attention_mask_ ? real : torch::Tensor());
    return TextEmbedding{out.hidden, mask_padding_ ? real : torch::ones_like(real), out.cls};
  }

 private:
  WordPieceTokenizer tokenizer_;
  int64_t context_;
  bool pass_attention_mask_, mask_padding_, frozen_;
  nn::BertModel model_;
};

}  // namespace
}  // namespace asg::text_encoders

ASG_PLUGIN_LIBRARY(asg::make_factory<asg::TextEncoder>(
    "chinese_clip_text", "1.0.0", "Chinese-CLIP's BERT text tower exact to transformers' ChineseCLIPModel, WordPiece tokens, weights from init_from",
    std::vector<asg::ParamSpec>{
        asg::path_param("vocabulary", "", "the model's vocab.txt (BERT WordPiece, one token per line)").must_set(),
        asg::bool_param("lower_case", true, "lower-case and strip accents (BertTokenizer's do_lower_case; Chinese-CLIP: true)"),
        asg::int_param("context_length", 52, "token ids per caption, [SEP] last (Chinese-CLIP: 52; RDTF's paper: 77)").range(3, 4096),
        asg::int_param("vocab_size", 21128, "embedding rows (at least the tokenizer's vocabulary)").range(2, 1e7),
        asg::int_param("hidden_size", 1024, "width (RoBERTa-wwm-ext-large: 1024, -base: 768)").range(1, 65536),
        asg::int_param("intermediate_size", 4096, "feed-forward width").range(1, 262144),
        asg::int_param("layers", 24, "encoder layers").range(1, 256),
        asg::int_param("heads", 16, "attention heads").range(1, 1024),
        asg::int_param("max_positions", 512, "position embeddings").range(3, 65536),
        asg::int_param("type_vocab_size", 2, "token-type embeddings (all tokens are type 0)").range(1, 64),
        asg::float_param("layer_norm_eps", 1e-12, "LayerNorm epsilon").range(0, 1),
        asg::string_param("activation", "gelu", "feed-forward activation").one_of({"gelu", "gelu_new", "quick_gelu", "relu"}),
        asg::bool_param("attention_mask", true, "pass the tokenizer's padding mask into BERT (transformers' attention_mask)"),
        asg::bool_param("mask_padding", false, "mark padding for the backbone's cross-attention (the paper's UNets attend to all positions)"),
        asg::bool_param("frozen", true, "keep the weights fixed (a pretrained encoder); false trains them with the backbone"),
    },
    [](const asg::Params& p) { return std::make_shared<asg::text_encoders::ChineseClipText>(p); }))
