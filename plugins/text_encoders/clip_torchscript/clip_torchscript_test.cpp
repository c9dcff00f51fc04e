// The TorchScript loading path, with CLIP-shaped text encoders that scripts/fixtures/
// write_clip_text_torchscript.py writes with random weights (the reference environment's torch), and the BPE merges
// fixture of the tokenizer's tests.
#include <gtest/gtest.h>
#include <torch/script.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "asg/error.h"
#include "asg/hash.h"
#include "asg/kinds/text_encoder.h"
#include "asg/text/clip_tokenizer.h"
#include "plugin_under_test.h"
#include "test_paths.h"

namespace fs = std::filesystem;
using asg::testing::make_under_test;

namespace {

class ClipTorchScriptTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / ("asg-clip-ts-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    for (const auto& [name, extra] : {std::pair<std::string, std::string>{"clip.pt", ""}, {"wrong.pt", " --wrong-interface"}})
      ASSERT_TRUE(asg::testing::write_fixture("write_clip_text_torchscript.py", dir_ / name, "--context 16" + extra))
          << name << " (torch: the reference environment, scripts/setup.sh)";
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }

  static std::map<std::string, asg::ParamValue> params(const std::string& model, const std::string& sha256 = "") {
    return {{"model", (dir_ / model).string()},
            {"sha256", sha256.empty() ? asg::sha256_file(dir_ / model) : sha256},
            {"merges", (asg::testing::source_dir() / "tests/fixtures/clip_bpe_merges.txt").string()},
            {"context_length", int64_t{16}}};
  }
  static std::string config_error_of(const std::map<std::string, asg::ParamValue>& p) {
    return asg::testing::config_error_of<asg::TextEncoder>("clip_torchscript", p);
  }
  static fs::path dir_;
};
fs::path ClipTorchScriptTest::dir_;

TEST_F(ClipTorchScriptTest, EncodesCaptionsThroughTheModuleWithClipsTokenIds) {
  auto encoder = make_under_test<asg::TextEncoder>("clip_torchscript", params("clip.pt"));
  EXPECT_EQ(encoder->dim(), 32);
  EXPECT_TRUE(encoder->frozen());
  const auto e = encoder->encode({"a red star moves left to right", ""});
  ASSERT_EQ(e.tokens.sizes(), (std::vector<int64_t>{2, 16, 32}));
  ASSERT_EQ(e.pooled.sizes(), (std::vector<int64_t>{2, 32}));
  EXPECT_TRUE(torch::isfinite(e.tokens).all().item<bool>());
  // The mask covers <|startoftext|>, the ids and <|endoftext|>: 7 BPE ids for that caption, none for "".
  EXPECT_EQ(e.mask.sum(1)[0].item<int64_t>(), 9);
  EXPECT_EQ(e.mask.sum(1)[1].item<int64_t>(), 2);
  // What the module itself gives for clip.tokenize's ids.
  const auto tokenizer = asg::ClipTokenizer::from_merges_file(asg::testing::source_dir() / "tests/fixtures/clip_bpe_merges.txt");
  auto ids = torch::tensor(tokenizer.tokenize("a red star moves left to right", 16)).view({1, 16});
  auto module = torch::jit::load((dir_ / "clip.pt").string());
  auto expected = module.forward({ids}).toTuple()->elements();
  // (A batch of two and a batch of one may round differently inside the module.)
  EXPECT_TRUE(torch::allclose(e.tokens[0], expected[0].toTensor()[0], 1e-4, 1e-5))
      << (e.tokens[0] - expected[0].toTensor()[0]).abs().max().item<double>();
  EXPECT_TRUE(torch::allclose(e.pooled[0], expected[1].toTensor()[0], 1e-4, 1e-5));
  // The unconditional caption does not depend on its batch.
  EXPECT_TRUE(torch::allclose(encoder->encode({""}).pooled[0], e.pooled[1], 1e-4, 1e-5));
}

TEST_F(ClipTorchScriptTest, RefusesAnotherFileAWrongInterfaceAndNonTorchScript) {
  const std::string other(64, 'a');
  const std::string actual = asg::sha256_file(dir_ / "clip.pt");
  EXPECT_EQ(config_error_of(params("clip.pt", other)),
            (dir_ / "clip.pt").string() + ": sha256 is " + actual + " but the experiment expects " + other +
                ": not the CLIP text encoder it names (replace the file, or set the sha256 key to the new file's hash if the "
                "change is intended)");
  const std::string wrong = config_error_of(params("wrong.pt"));
  EXPECT_NE(wrong.find((dir_ / "wrong.pt").string() + ": forward returned Tensor instead of a (tokens, pooled) tuple; expected: "
                                                      "forward(input_ids: Tensor[B, L] int64) -> Tuple[Tensor[B, L, D] float, "
                                                      "Tensor[B, D] float]"),
            std::string::npos)
      << wrong;
  std::ofstream(dir_ / "text.pt") << "not a zip archive";
  const std::string text = config_error_of(params("text.pt"));
  EXPECT_NE(text.find((dir_ / "text.pt").string() + ": not a TorchScript archive the CLIP text encoder can load"), std::string::npos)
      << text;
}

}  // namespace
