// word_embedding: a trainable bag-of-words text encoder with hashed vocabulary.
// Words (lower-cased alphanumeric runs) map to one of `buckets` learned embeddings through FNV-1a;
// no tokenizer files or pretrained weights are needed, so it is the honest offline default. It learns
// from the captions of the training set only.
#include <torch/torch.h>

#include <cctype>

#include "asg/kinds/text_encoder.h"
#include "asg/plugin.h"

namespace asg::text {
namespace {

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

std::vector<std::string> words(const std::string& caption) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : caption) {
    if (std::isalnum(static_cast<unsigned char>(c))) {
      cur += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else if (!cur.empty()) {
      out.push_back(cur);
      cur.clear();
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

class WordEmbeddingImpl final : public TextEncoder {
 public:
  explicit WordEmbeddingImpl(const Params& p)
      : dim_(p.integer("dim")), buckets_(p.integer("buckets")), max_tokens_(p.integer("max_tokens")) {
    // Row 0 is padding; bucket b lives at row b + 1.
    embedding_ = register_module("embedding", torch::nn::Embedding(torch::nn::EmbeddingOptions(buckets_ + 1, dim_).padding_idx(0)));
    torch::nn::init::normal_(embedding_->weight, 0.0, 0.02);
    { torch::NoGradGuard g; embedding_->weight[0].zero_(); }
    null_ = register_parameter("null", torch::zeros({dim_}));
  }

  int64_t dim() const override { return dim_; }

  int64_t token_id(const std::string& word) const { return 1 + static_cast<int64_t>(fnv1a(word) % static_cast<uint64_t>(buckets_)); }

  TextEmbedding encode(const std::vector<std::string>& captions) override {
    const int64_t batch = static_cast<int64_t>(captions.size());
    std::vector<std::vector<int64_t>> ids(captions.size());
    int64_t longest = 1;
    for (size_t i = 0; i < captions.size(); ++i) {
      for (const auto& w : words(captions[i])) {
        if (static_cast<int64_t>(ids[i].size()) == max_tokens_) break;
        ids[i].push_back(token_id(w));
      }
      longest = std::max<int64_t>(longest, static_cast<int64_t>(ids[i].size()));
    }
    auto flat = torch::zeros({batch, longest}, torch::kLong);
    auto acc = flat.accessor<int64_t, 2>();
    for (int64_t i = 0; i < batch; ++i)
      for (size_t j = 0; j < ids[i].size(); ++j) acc[i][j] = ids[i][j];
    auto device = embedding_->weight.device();
    flat = flat.to(device);
    auto mask = flat.ne(0);
    auto tokens = embedding_->forward(flat);  // padding rows are zero
    auto count = mask.sum(1, true).to(tokens.dtype());
    auto mean = tokens.sum(1) / count.clamp_min(1);
    // The empty caption (no tokens) is the learned unconditional embedding.
    auto pooled = torch::where(count > 0, mean, null_.unsqueeze(0).expand({batch, dim_}));
    return TextEmbedding{tokens, mask, pooled};
  }

 private:
  int64_t dim_, buckets_, max_tokens_;
  torch::nn::Embedding embedding_{nullptr};
  torch::Tensor null_;
};

}  // namespace
}  // namespace asg::text

ASG_PLUGIN_LIBRARY(asg::make_factory<asg::TextEncoder>(
    "word_embedding", "1.0.0", "trainable hashed bag-of-words embeddings (offline, no pretrained weights)",
    std::vector<asg::ParamSpec>{
        asg::int_param("dim", 64, "embedding width D").range(1, 8192),
        asg::int_param("buckets", 4096, "hash buckets (vocabulary size); collisions merge words").range(16, 1 << 24),
        asg::int_param("max_tokens", 32, "words kept per caption").range(1, 4096),
    },
    [](const asg::Params& p) { return std::make_shared<asg::text::WordEmbeddingImpl>(p); }))
