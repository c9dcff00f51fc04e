// clip_torchscript: a frozen CLIP text encoder loaded from a user-supplied TorchScript file (the weights
// cannot be downloaded here), with CLIP's BPE tokenizer (asg/text/clip_tokenizer.h) reading the user's
// merges file. The module's interface, checked when the experiment is built:
//   forward(input_ids: Tensor[B, L] int64) -> Tuple[Tensor[B, L, D] (last hidden state), Tensor[B, D] (pooled)]
// input_ids are clip.tokenize's: <|startoftext|>, the text's ids, <|endoftext|>, zeros. The mask marks
// every position up to and including <|endoftext|>. README.md shows how to export OpenAI's or open_clip's
// weights to this interface.
#include <torch/script.h>
#include <torch/torch.h>

#include <fmt/format.h>

#include "asg/error.h"
#include "asg/kinds/text_encoder.h"
#include "asg/nn/torchscript.h"
#include "asg/plugin.h"
#include "asg/text/clip_tokenizer.h"

namespace asg::text_encoders {
namespace {

constexpr const char* kInterface =
    "forward(input_ids: Tensor[B, L] int64) -> Tuple[Tensor[B, L, D] float, Tensor[B, D] float]";

class ClipTorchScript final : public TextEncoder {
 public:
  explicit ClipTorchScript(const Params& p)
      : file_(p.str("model")),
        tokenizer_(ClipTokenizer::from_merges_file(p.str("merges"), p.integer("max_merges"))),
        module_(load_torchscript(file_, p.str("sha256"), "CLIP text encoder", kInterface)),
        context_(p.integer("context_length")) {
    module_.eval();
    // The interface, on the unconditional caption: a tuple of token features and a pooled vector.
    TextEmbedding probe;
    try {
      probe = run({""});
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      throw config_error(fmt::format("{}: calling forward on [1, {}] token ids failed ({}); expected: {}", file_, context_,
                                     std::string(e.what()).substr(0, std::string(e.what()).find('\n')), kInterface));
    }
    dim_ = probe.tokens.size(2);
  }

  int64_t dim() const override { return dim_; }
  bool frozen() const override { return true; }

  TextEmbedding encode(const std::vector<std::string>& captions) override { return run(captions); }

  void to(torch::Device device, bool non_blocking = false) override {
    torch::nn::Module::to(device, non_blocking);
    module_.to(device, non_blocking);
    device_ = device;
  }

 private:
  TextEmbedding run(const std::vector<std::string>& captions) {
    const auto batch = static_cast<int64_t>(captions.size());
    auto ids = torch::zeros({batch, context_}, torch::kLong);
    auto mask = torch::zeros({batch, context_}, torch::kBool);
    auto id = ids.accessor<int64_t, 2>();
    auto m = mask.accessor<bool, 2>();
    for (int64_t b = 0; b < batch; ++b) {
      const auto tokens = tokenizer_.tokenize(captions[static_cast<size_t>(b)], context_, /*truncate=*/true);
      for (int64_t i = 0; i < context_; ++i) id[b][i] = tokens[static_cast<size_t>(i)];
      for (int64_t i = 0; i < context_; ++i) {
        m[b][i] = true;
        if (tokens[static_cast<size_t>(i)] == tokenizer_.end_token()) break;
      }
    }
    torch::NoGradGuard no_grad;
    auto out = module_.forward({ids.to(device_)});
    if (!out.isTuple() || out.toTuple()->elements().size() != 2)
      throw config_error(fmt::format("{}: forward returned {} instead of a (tokens, pooled) tuple; expected: {}", file_,
                                     out.tagKind(), kInterface));
    auto tokens = out.toTuple()->elements()[0].toTensor().to(torch::kFloat);
    auto pooled = out.toTuple()->elements()[1].toTensor().to(torch::kFloat);
    if (tokens.dim() != 3 || tokens.size(0) != batch || tokens.size(1) != context_ || pooled.dim() != 2 ||
        pooled.size(0) != batch || pooled.size(1) != tokens.size(2))
      throw config_error(fmt::format("{}: forward on [{}, {}] ids returned tokens {} and pooled {}; expected: {}", file_, batch,
                                     context_, c10::str(tokens.sizes()), c10::str(pooled.sizes()), kInterface));
    return TextEmbedding{tokens, mask.to(device_), pooled};
  }

  std::string file_;
  ClipTokenizer tokenizer_;
  torch::jit::script::Module module_;
  int64_t context_;
  int64_t dim_ = 0;
  torch::Device device_ = torch::kCPU;
};

}  // namespace
}  // namespace asg::text_encoders

ASG_PLUGIN_LIBRARY(asg::make_factory<asg::TextEncoder>(
    "clip_torchscript", "1.0.0", "frozen CLIP text encoder from a user-supplied TorchScript file, with CLIP's BPE tokenizer",
    asg::with_torchscript_model_params(
        "TorchScript file: forward(input_ids[B, L] int64) -> (tokens[B, L, D], pooled[B, D])",
        {
        asg::path_param("merges", "", "CLIP's BPE merges file (bpe_simple_vocab_16e6.txt or .txt.gz)").must_set(),
        asg::int_param("max_merges", 48894, "merges read from the file, as OpenAI's tokenizer does; 0 = all").range(0, 1e7),
        asg::int_param("context_length", 77, "token ids per caption (CLIP: 77); longer captions are cut").range(2, 4096),
    }),
    [](const asg::Params& p) { return std::make_shared<asg::text_encoders::ClipTorchScript>(p); }))
