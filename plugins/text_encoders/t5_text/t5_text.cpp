// t5_text: T5's encoder in C++ (asg/nn/t5_encoder.h, exact to transformers' T5EncoderModel) with the
// tokenizer its checkpoint ships: SentencePiece (Google's T5 and T5 v1.1, spiece.model) or BERT's WordPiece
// (UER's Chinese T5, vocab.txt, which RDTF uses). Weights come from `init_from`. The defaults are
// uer/t5-base-chinese-cluecorpussmall's configuration (12 blocks, 768 wide, ReLU feed-forward, 21,228 ids).
//
// What the backbone sees: the encoder's last hidden state for all context_length positions (the tokenizer's
// padding mask goes into the encoder, as transformers' pipelines pass it), a mask of all true unless
// mask_padding (the paper's UNets take no encoder mask), and as the pooled vector the mean over the text's
// tokens: T5 has no pooled output of its own, so that one is ASG Lab's.
#include <torch/torch.h>

#include <fmt/format.h>

#include <variant>

#include "asg/error.h"
#include "asg/kinds/text_encoder.h"
#include "asg/nn/t5_encoder.h"
#include "asg/nn/token_batch.h"
#include "asg/nn/module_state.h"
#include "asg/plugin.h"
#include "asg/text/sentencepiece_tokenizer.h"
#include "asg/text/wordpiece_tokenizer.h"

namespace asg::text_encoders {
namespace {

// The checkpoint's tokenizer: T5's SentencePiece or BERT's WordPiece.
using AnyTokenizer = std::variant<SentencePieceTokenizer, WordPieceTokenizer>;

AnyTokenizer make_tokenizer(const Params& p) {
  if (p.str("tokenizer") == "sentencepiece") return SentencePieceTokenizer::from_model_file(p.str("vocabulary"), p.integer("extra_ids"));
  return WordPieceTokenizer::from_vocab_file(p.str("vocabulary"), p.boolean("lower_case"));
}

nn::T5EncoderOptions model_options(const Params& p, int64_t tokenizer_vocab) {
  nn::T5EncoderOptions o;
  o.vocab_size = p.integer("vocab_size");
  o.d_model = p.integer("d_model");
  o.d_kv = p.integer("d_kv");
  o.d_ff = p.integer("d_ff");
  o.layers = p.integer("layers");
  o.heads = p.integer("heads");
  o.relative_attention_num_buckets = p.integer("relative_attention_num_buckets");
  o.relative_attention_max_distance = p.integer("relative_attention_max_distance");
  o.layer_norm_epsilon = p.real("layer_norm_epsilon");
  o.gated = p.str("feed_forward_proj") == "gated-gelu";
  o.activation = o.gated ? nn::TextActivation::GeluTanh : nn::TextActivation::Relu;
  if (tokenizer_vocab > o.vocab_size)
    throw config_error(fmt::format("vocab_size = {} is smaller than the tokenizer's vocabulary ({} ids from {})", o.vocab_size,
                                   tokenizer_vocab, p.str("vocabulary")));
  return o;
}

class T5Text final : public TextEncoder {
 public:
  explicit T5Text(const Params& p)
      : tokenizer_(make_tokenizer(p)),
        context_(p.integer("context_length")),
        pass_attention_mask_(p.boolean("attention_mask")),
        mask_padding_(p.boolean("mask_padding")),
        frozen_(p.boolean("frozen")),
        model_(model_options(p, std::visit([](const auto& t) { return t.vocab_size(); }, tokenizer_))) {
    nn::adopt_children(*this, *model_);  // transformers' parameter names
    if (frozen_) nn::freeze(*this);
  }

  int64_t dim() const override { return model_->options().d_model; }
  bool frozen() const override { return frozen_; }

  TextEmbedding encode(const std::vector<std::string>& captions) override {
    auto [ids, real] = std::visit([&](const auto& t) { return nn::token_batch(t, captions, context_); }, tokenizer_);
    const auto device = model_->parameters().front().device();
    ids = ids.to(device);
    real = real.to(device);
    std::optional<torch::NoGradGuard> no_grad;
    if (frozen_) no_grad.emplace();
    auto hidden = model_->forward(ids, pass_attention_mask_ ? real : torch::Tensor());
    auto weights = real.to(hidden.scalar_type()).unsqueeze(-1);
    auto pooled = (hidden * weights).sum(1) / weights.sum(1).clamp_min(1);
    return TextEmbedding{hidden, mask_padding_ ? real : torch::ones_like(real), pooled};
  }

 private:
  AnyTokenizer tokenizer_;
  int64_t context_;
  bool pass_attention_mask_, mask_padding_, frozen_;
  nn::T5Encoder model_;
};

}  // namespace
}  // namespace asg::text_encoders

ASG_PLUGIN_LIBRARY(asg::make_factory<asg::TextEncoder>(
    "t5_text", "1.0.0", "T5's encoder exact to transformers' T5EncoderModel, SentencePiece or WordPiece tokens, weights from init_from",
    std::vector<asg::ParamSpec>{
        asg::string_param("tokenizer", "wordpiece", "sentencepiece (spiece.model: Google's T5) or wordpiece (vocab.txt: UER's Chinese T5)")
            .one_of({"sentencepiece", "wordpiece"}),
        asg::path_param("vocabulary", "", "the tokenizer's file: spiece.model or vocab.txt").must_set(),
        asg::int_param("extra_ids", 100, "sentencepiece: T5's <extra_id_N> sentinels after the model's pieces").range(0, 10000),
        asg::bool_param("lower_case", true, "wordpiece: lower-case and strip accents (BertTokenizer's do_lower_case)"),
        asg::int_param("context_length", 77, "token ids per caption, </s> or [SEP] last (RDTF's paper: 77, its code: 256)").range(2, 4096),
        asg::int_param("vocab_size", 21228, "embedding rows (at least the tokenizer's vocabulary)").range(2, 1e7),
        asg::int_param("d_model", 768, "width").range(1, 65536),
        asg::int_param("d_kv", 64, "width per head").range(1, 4096),
        asg::int_param("d_ff", 3072, "feed-forward width").range(1, 262144),
        asg::int_param("layers", 12, "encoder blocks").range(1, 256),
        asg::int_param("heads", 12, "attention heads").range(1, 1024),
        asg::int_param("relative_attention_num_buckets", 32, "relative position buckets").range(2, 4096),
        asg::int_param("relative_attention_max_distance", 128, "distance beyond which positions share the last bucket").range(2, 1e6),
        asg::float_param("layer_norm_epsilon", 1e-6, "RMS norm epsilon").range(0, 1),
        asg::string_param("feed_forward_proj", "relu", "relu (T5 1.0) or gated-gelu (T5 v1.1)").one_of({"relu", "gated-gelu"}),
        asg::bool_param("attention_mask", true, "pass the tokenizer's padding mask into the encoder (transformers' attention_mask)"),
        asg::bool_param("mask_padding", false, "mark padding for the backbone's cross-attention (the paper's UNets attend to all positions)"),
        asg::bool_param("frozen", true, "keep the weights fixed (a pretrained encoder); false trains them with the backbone"),
    },
    [](const asg::Params& p) { return std::make_shared<asg::text_encoders::T5Text>(p); }))
