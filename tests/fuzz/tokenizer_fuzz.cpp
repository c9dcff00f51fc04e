// A seeded mutation fuzzer for CLIP's BPE tokenizer (asg/text/clip_tokenizer.h): captions with HTML
// entities, contractions, special tokens, non-ASCII letters and emoji are mutated byte by byte (so most
// become invalid UTF-8) and tokenized. Every id must be inside the vocabulary and tokenize() must keep
// its length; anything thrown is a bug (captions are never refused). Deterministic for a given --seed.
//
//   asg_tokenizer_fuzz [--iterations N] [--seed S]
// ctest runs it briefly (label fuzz); run it longer by hand in the sanitizer build.
#include <fmt/format.h>

#include <random>
#include <string>

#include "asg/text/clip_tokenizer.h"
#include "test_paths.h"

int main(int argc, char** argv) {
  long iterations = 5000;
  unsigned long seed = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--iterations" && i + 1 < argc) iterations = std::stol(argv[++i]);
    else if (a == "--seed" && i + 1 < argc) seed = std::stoul(argv[++i]);
    else {
      fmt::print(stderr, "usage: {} [--iterations N] [--seed S]\n", argv[0]);
      return 2;
    }
  }
  const auto tok = asg::ClipTokenizer::from_merges_file(asg::testing::source_dir() / "tests/fixtures/clip_bpe_merges.txt");
  const char* seeds[] = {"a red star moves left to right", "Café ÜBER naïve 汉字 hearts", "snake_case-word 🙂!",
                         "&amp;&#39;&#x1F642;&#99999999;&;&#;", "<|startoftext|>it's<|endoftext|>", "   \t\n  ",
                         "'s't're've'm'll'd 2024"};
  std::mt19937_64 rng(seed);
  long ids = 0;
  for (long i = 0; i < iterations; ++i) {
    std::string s = seeds[rng() % std::size(seeds)];
    for (int e = static_cast<int>(rng() % 6); e > 0; --e) {
      const size_t at = s.empty() ? 0 : rng() % s.size();
      switch (rng() % 4) {
        case 0: if (!s.empty()) s[at] = static_cast<char>(rng()); break;
        case 1: s.insert(s.begin() + static_cast<std::ptrdiff_t>(at), static_cast<char>(rng())); break;
        case 2: if (!s.empty()) s.erase(s.begin() + static_cast<std::ptrdiff_t>(at)); break;
        default: s += s.substr(0, rng() % (s.size() + 1));
      }
    }
    try {
      for (int64_t id : tok.encode(s)) {
        if (id < 0 || id >= tok.vocab_size()) {
          fmt::print(stderr, "iteration {}: id {} outside the vocabulary of {}\n", i, id, tok.vocab_size());
          return 1;
        }
        ++ids;
      }
      const auto padded = tok.tokenize(s, 16);
      if (padded.size() != 16 || padded.front() != tok.start_token()) {
        fmt::print(stderr, "iteration {}: tokenize() returned {} ids\n", i, padded.size());
        return 1;
      }
      (void)tok.decode(padded);
    } catch (const std::exception& e) {
      fmt::print(stderr, "iteration {} (seed {}): {}\n", i, seed, e.what());
      return 1;
    }
  }
  fmt::print("{} captions, {} ids, none outside the vocabulary, nothing thrown\n", iterations, ids);
  return 0;
}
