// The paper's systems (experiments/vsd2m/) at their full size: each builds and runs its backbone once at
// batch 1 through the real binary (`asg validate --build`). What the repository cannot hold is stood in for:
// a two-sticker VSD2M manifest (one train, one test), random-weight extractor files with the references' interfaces, the tokenizer
// test fixtures, and no pretrained weights (the init_from keys cleared: the networks are built at random
// initialisation, which exercises everything but the load, tested in init_from_test.cpp).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>

#include "asg/hash.h"
#include "asg/media/gif.h"
#include "cli_fixture.h"
#include "extractor_fixtures.h"
#include "test_animation.h"

namespace fs = std::filesystem;
using asg::testing::CliTest;
using asg::testing::run_asg;

namespace {

// The systems: every experiments/vsd2m file but the shared base.
std::vector<std::string> vsd2m_systems() {
  std::vector<std::string> out;
  for (const auto& entry : fs::directory_iterator(asg::testing::source_dir() / "experiments/vsd2m"))
    if (entry.path().extension() == ".toml" && entry.path().filename() != "base.toml") out.push_back(entry.path().stem().string());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST(Vsd2mSystems, EveryRowOfThePaperHasAFile) {
  EXPECT_EQ(vsd2m_systems(), (std::vector<std::string>{"dit", "dit_sti", "i2vgen_xl", "i2vgen_xl_sti", "rdtf_dfgn_sti", "rdtf_dfgn_sti_dcl",
                                                       "videofactory", "videofactory_sti", "videoldm", "videoldm_sti"}));
}

// One process for all (the extractor fixtures are written once per process: about 40 s).
TEST_F(CliTest, EveryVsd2mSystemBuildsAtThePapersScaleWithStandInsForItsFiles) {
  fs::create_directories(dir_ / "vsd2m");
  std::ofstream(dir_ / "vsd2m/records.jsonl")
      << R"({"md5": "m1", "fmt": "gif", "nframes": 2, "visual_path": "a.gif", "eng_cap": "a cat", "split": "train"})" "\n"
      << R"({"md5": "m2", "fmt": "gif", "nframes": 2, "visual_path": "a.gif", "eng_cap": "a dog", "split": "test"})" "\n";
  asg::write_gif(dir_ / "vsd2m/a.gif", asg::testing::test_animation(8, 8, 2, true));
  const fs::path i3d = asg::testing::extractor_fixture("i3d"), clip = asg::testing::extractor_fixture("clip"),
                 dover = asg::testing::extractor_fixture("dover");
  const std::string merges = (asg::testing::source_dir() / "tests/fixtures/clip_bpe_merges.txt").string();
  const std::string vocabulary = (asg::testing::source_dir() / "tests/fixtures/wordpiece_vocab.txt").string();
  auto metric = [](const std::string& plugin, const fs::path& path) {
    return fmt::format("[[metrics]]\nplugin = \"{}\"\nmodel = \"{}\"\nsha256 = \"{}\"\n", plugin, path.string(), asg::sha256_file(path));
  };
  for (const std::string& system : vsd2m_systems()) {
    SCOPED_TRACE(system);
    const fs::path file = asg::testing::source_dir() / "experiments/vsd2m" / (system + ".toml");
    const bool rdtf = system.rfind("rdtf", 0) == 0, i2vgen_xl = system.rfind("i2vgen_xl", 0) == 0;
    const std::string text_encoder = rdtf ? fmt::format("clip_vocabulary = \"{0}\"\nt5_vocabulary = \"{0}\"\n", vocabulary)
                                          : fmt::format("merges = \"{}\"\n", merges);
    std::ofstream(dir_ / "standins.toml") << fmt::format(
        "base = [\"{}\"]\n[dataset]\nmanifest = \"vsd2m/records.jsonl\"\nroot = \"vsd2m\"\n"
        "[autoencoder]\ninit_from = \"\"\n[text_encoder]\ninit_from = \"\"\ninit_allow_missing = []\n{}"
        "[backbone]\ninit_from = \"\"\ninit_allow_missing = []\n{}{}{}"
        "[[metrics]]\nplugin = \"clip_score\"\nmodel = \"{}\"\nsha256 = \"{}\"\nmerges = \"{}\"\n"
        "[eval]\nnum_samples = 2048\n",
        file.string(), text_encoder, i2vgen_xl ? "[image_encoder]\ninit_from = \"\"\n" : "", metric("fvd", i3d), metric("dover", dover),
        clip.string(), asg::sha256_file(clip), merges);
    auto r = run_asg("validate --build standins.toml", dir_);
    EXPECT_EQ(r.code, 0) << r.output;
    EXPECT_NE(r.output.find("# built: backbone '"), std::string::npos) << r.output;
    // Unchanged, the file says what it still needs: its data and pretrained files.
    auto bare = run_asg("validate " + file.string(), dir_);
    EXPECT_EQ(bare.code, 2) << bare.output;
    EXPECT_NE(bare.output.find("error: "), std::string::npos) << bare.output;
  }
}
