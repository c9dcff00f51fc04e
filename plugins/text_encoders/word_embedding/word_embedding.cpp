// word_embedding: a trainable hashed bag-of-n-grams text encoder (fastText-style features).
// Words (lower-cased alphanumeric runs) and runs of up to `ngrams` consecutive words map to one of
// `buckets` learned embeddings through FNV-1a. Word n-grams matter: "from left to right" and "from
// right to left" are the same bag of words, and only their bigrams tell them apart. No tokenizer files
// or pretrained weights are needed, so it is the honest offline default; it learns from the training
// captions only.
#include <torch/torch.h>

#include <cctype>

#include "asg/hash.h"
#include "asg/kinds/text_encoder.h"
#include "asg/plugin.h"

namespace asg::text {
namespace {

// Bucket of a word: FNV-1a from ASG Lab's historical basis (asg/hash.h), which fixes the token ids of
// every recorded run.
uint64_t fnv1a(const std::string& s) { return asg::fnv1a64(s, asg::kAsgSeedFnvBasis); }

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
      : dim_(p.integer("dim")), buckets_(p.integer("buckets")), max_tokens_(p.integer("max_tokens")), ngrams_(p.integer("ngrams")) {
    // Row 0 is padding; bucket b lives at row b + 1.
    embedding_ = register_module("embedding", torch::nn::Embedding(torch::nn::EmbeddingOptions(buckets_ + 1, dim_).padding_idx(0)));
    // Unit-variance rows (nn.Embedding's default): the caption must be loud next to the timestep
    // embedding from the first step, or the backbone learns to ignore it (and samples lose direction).
    torch::nn::init::normal_(embedding_->weight, 0.0, 1.0);
    { torch::NoGradGuard g; embedding_->weight[0].zero_(); }
    null_ = register_parameter("null", torch::zeros({dim_}));
  }

  int64_t dim() const override { return dim_; }

  // The words of a caption, then its bigrams ("left to"), trigrams, ... up to ngrams_.
  std::vector<std::string> terms(const std::string& caption) const {
    auto w = words(caption);
    std::vector<std::string> out(w);
    for (int64_t n = 2; n <= ngrams_; ++n)
      for (size_t i = 0; i + n <= w.size(); ++i) {
        std::string gram = w[i];
        for (int64_t k = 1; k < n; ++k) gram += " " + w[i + k];
        out.push_back(gram);
      }
    return out;
  }

  int64_t token_id(const std::string& word) const { return 1 + static_cast<int64_t>(fnv1a(word) % static_cast<uint64_t>(buckets_)); }

  TextEmbedding encode(const std::vector<std::string>& captions) override {
    const int64_t batch = static_cast<int64_t>(captions.size());
    std::vector<std::vector<int64_t>> ids(captions.size());
    int64_t longest = 1;
    for (size_t i = 0; i < captions.size(); ++i) {
      for (const auto& term : terms(captions[i])) {
        if (static_cast<int64_t>(ids[i].size()) == max_tokens_) break;
        ids[i].push_back(token_id(term));
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
  int64_t dim_, buckets_, max_tokens_, ngrams_;
  torch::nn::Embedding embedding_{nullptr};
  torch::Tensor null_;
};

}  // namespace
}  // namespace asg::text

ASG_PLUGIN_LIBRARY(asg::make_factory<asg::TextEncoder>(
    "word_embedding", "1.0.0", "trainable hashed bag of word n-grams (offline, no pretrained weights)",
    std::vector<asg::ParamSpec>{
        asg::int_param("dim", 64, "embedding width D").range(1, 8192),
        asg::int_param("buckets", 4096, "hash buckets (vocabulary size); collisions merge words").range(16, 1 << 24),
        asg::int_param("max_tokens", 32, "terms (words, then n-grams) kept per caption").range(1, 4096),
        asg::int_param("ngrams", 2, "longest word n-gram embedded; 1 = bag of words (blind to word order)").range(1, 8),
    },
    [](const asg::Params& p) { return std::make_shared<asg::text::WordEmbeddingImpl>(p); }))
