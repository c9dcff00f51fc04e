// rdtf_text: RDTF's text conditioning (RDTF, Sec. "text conditioning"; its released code): Chinese-CLIP's
// RoBERTa-wwm-ext-large tokens (1024-d) followed, along the sequence, by UER's Chinese T5 tokens (768-d) mapped
// by an MLP 768 -> 2048 -> 1024, one sequence of context_clip + context_t5 tokens for the backbone's
// cross-attention. The two towers are asg/nn's (exact to transformers: bert_model.h, t5_encoder.h) and stay
// frozen; the MLP trains with the backbone. Weights: `[text_encoder] init_from` a file `asg weights merge`
// made from the two imported towers (names chinese_clip.* and t5.*), with init_allow_missing = ["t5_mlp.*"]
// when the MLP starts from scratch.
//
// Assumed, as the paper and code do not say: the MLP's activation (GELU), and that both towers get their
// tokenizer's padding mask. The pooled vector is Chinese-CLIP's [CLS] state.
#include <torch/torch.h>

#include <fmt/format.h>

#include "asg/error.h"
#include "asg/kinds/text_encoder.h"
#include "asg/nn/bert_model.h"
#include "asg/nn/t5_encoder.h"
#include "asg/nn/token_batch.h"
#include "asg/nn/module_state.h"
#include "asg/plugin.h"
#include "asg/text/wordpiece_tokenizer.h"

namespace asg::text_encoders {
namespace {

nn::BertOptions clip_options(const Params& p) {
  nn::BertOptions o;
  o.vocab_size = p.integer("clip_vocab_size");
  o.hidden_size = p.integer("clip_hidden_size");
  o.intermediate_size = p.integer("clip_intermediate_size");
  o.layers = p.integer("clip_layers");
  o.heads = p.integer("clip_heads");
  o.max_positions = p.integer("clip_max_positions");
  if (p.integer("clip_context_length") > o.max_positions)
    throw config_error(fmt::format("clip_context_length = {} exceeds clip_max_positions = {}", p.integer("clip_context_length"), o.max_positions));
  return o;
}

nn::T5EncoderOptions t5_options(const Params& p) {
  nn::T5EncoderOptions o;
  o.vocab_size = p.integer("t5_vocab_size");
  o.d_model = p.integer("t5_d_model");
  o.d_kv = p.integer("t5_d_kv");
  o.d_ff = p.integer("t5_d_ff");
  o.layers = p.integer("t5_layers");
  o.heads = p.integer("t5_heads");
  o.gated = p.str("t5_feed_forward_proj") == "gated-gelu";
  o.activation = o.gated ? nn::TextActivation::GeluTanh : nn::TextActivation::Relu;
  return o;
}

class RdtfText final : public TextEncoder {
 public:
  explicit RdtfText(const Params& p)
      : clip_tokenizer_(WordPieceTokenizer::from_vocab_file(p.str("clip_vocabulary"))),
        t5_tokenizer_(WordPieceTokenizer::from_vocab_file(p.str("t5_vocabulary"))),
        clip_context_(p.integer("clip_context_length")),
        t5_context_(p.integer("t5_context_length")),
        mask_padding_(p.boolean("mask_padding")),
        clip_(register_module("chinese_clip", nn::BertModel(clip_options(p)))),
        t5_(register_module("t5", nn::T5Encoder(t5_options(p)))) {
    for (const auto& [tokenizer, vocab, key] : {std::tuple{&clip_tokenizer_, clip_->options().vocab_size, "clip"},
                                                std::tuple{&t5_tokenizer_, t5_->options().vocab_size, "t5"}})
      if (tokenizer->vocab_size() > vocab)
        throw config_error(fmt::format("{}_vocab_size = {} is smaller than the tokenizer's vocabulary ({} ids from {})", key, vocab,
                                       tokenizer->vocab_size(), p.str(std::string(key) + "_vocabulary")));
    const int64_t dim = clip_->options().hidden_size;
    t5_mlp_ = register_module("t5_mlp", torch::nn::Sequential(torch::nn::Linear(t5_->options().d_model, p.integer("mlp_hidden")),
                                                              torch::nn::GELU(), torch::nn::Linear(p.integer("mlp_hidden"), dim)));
    nn::freeze(*clip_);
    nn::freeze(*t5_);
  }

  int64_t dim() const override { return clip_->options().hidden_size; }
  bool frozen() const override { return false; }  // the MLP trains; the towers' parameters do not ask for gradients

  TextEmbedding encode(const std::vector<std::string>& captions) override {
    const auto device = t5_mlp_->parameters().front().device();
    auto [clip_ids, clip_real] = nn::token_batch(clip_tokenizer_, captions, clip_context_);
    auto [t5_ids, t5_real] = nn::token_batch(t5_tokenizer_, captions, t5_context_);
    clip_real = clip_real.to(device);
    t5_real = t5_real.to(device);
    torch::Tensor clip_out, t5_out;
    {
      torch::NoGradGuard no_grad;
      clip_out = clip_->forward(clip_ids.to(device), clip_real).hidden;
      t5_out = t5_->forward(t5_ids.to(device), t5_real);
    }
    auto tokens = torch::cat({clip_out, t5_mlp_->forward(t5_out)}, 1);
    auto real = torch::cat({clip_real, t5_real}, 1);
    return TextEmbedding{tokens, mask_padding_ ? real : torch::ones_like(real), clip_out.select(1, 0)};
  }

 private:
  WordPieceTokenizer clip_tokenizer_, t5_tokenizer_;
  int64_t clip_context_, t5_context_;
  bool mask_padding_;
  nn::BertModel clip_;
  nn::T5Encoder t5_;
  torch::nn::Sequential t5_mlp_{nullptr};
};

}  // namespace
}  // namespace asg::text_encoders

ASG_PLUGIN_LIBRARY(asg::make_factory<asg::TextEncoder>(
    "rdtf_text", "1.0.0", "RDTF's dual text encoder: Chinese-CLIP tokens followed by MLP(T5 tokens), frozen towers exact to transformers",
    std::vector<asg::ParamSpec>{
        asg::path_param("clip_vocabulary", "", "Chinese-CLIP's vocab.txt (BERT WordPiece)").must_set(),
        asg::path_param("t5_vocabulary", "", "UER's Chinese T5 vocab.txt (BERT WordPiece)").must_set(),
        asg::int_param("clip_context_length", 77, "Chinese-CLIP tokens per caption (RDTF's paper: 77; its code: 256)").range(3, 4096),
        asg::int_param("t5_context_length", 77, "T5 tokens per caption (RDTF's paper: 77; its code: 256)").range(3, 4096),
        asg::int_param("clip_vocab_size", 21128, "Chinese-CLIP's embedding rows").range(2, 1e7),
        asg::int_param("clip_hidden_size", 1024, "Chinese-CLIP's width: the output dimension").range(1, 65536),
        asg::int_param("clip_intermediate_size", 4096, "Chinese-CLIP's feed-forward width").range(1, 262144),
        asg::int_param("clip_layers", 24, "Chinese-CLIP's layers").range(1, 256),
        asg::int_param("clip_heads", 16, "Chinese-CLIP's heads").range(1, 1024),
        asg::int_param("clip_max_positions", 512, "Chinese-CLIP's position embeddings").range(3, 65536),
        asg::int_param("t5_vocab_size", 21228, "T5's embedding rows").range(2, 1e7),
        asg::int_param("t5_d_model", 768, "T5's width (the MLP's input)").range(1, 65536),
        asg::int_param("t5_d_kv", 64, "T5's width per head").range(1, 4096),
        asg::int_param("t5_d_ff", 3072, "T5's feed-forward width").range(1, 262144),
        asg::int_param("t5_layers", 12, "T5's blocks").range(1, 256),
        asg::int_param("t5_heads", 12, "T5's heads").range(1, 1024),
        asg::string_param("t5_feed_forward_proj", "relu", "T5's feed-forward: relu or gated-gelu").one_of({"relu", "gated-gelu"}),
        asg::int_param("mlp_hidden", 2048, "the T5 MLP's hidden width (RDTF: 768 -> 2048 -> 1024)").range(1, 262144),
        asg::bool_param("mask_padding", false, "mark both towers' padding for the backbone's cross-attention (RDTF's UNet takes no encoder mask)"),
    },
    [](const asg::Params& p) { return std::make_shared<asg::text_encoders::RdtfText>(p); }))
