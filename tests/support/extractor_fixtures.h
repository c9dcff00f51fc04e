// The extractor fixtures of the FVD/FID tests: TorchScript files with the reference interfaces and random
// weights, written once per test process by scripts/fixtures/write_extractor_torchscript.py.
#pragma once

#include <filesystem>
#include <stdexcept>
#include <string>

#include "test_paths.h"

namespace asg::testing {

// kind: "i3d" or "inception"; variant: "" (the interface), "wrong-interface" or "nan".
inline std::filesystem::path extractor_fixture(const std::string& kind, const std::string& variant = "") {
  static const std::filesystem::path dir = make_temp_dir("extractors");
  const auto file = dir / (kind + (variant.empty() ? "" : "-" + variant) + ".pt");
  if (!std::filesystem::exists(file) &&
      !write_fixture("write_extractor_torchscript.py", file, "--kind " + kind + (variant.empty() ? "" : " --" + variant)))
    throw std::runtime_error("write_extractor_torchscript.py failed (python3-torch is installed by scripts/setup.sh)");
  return file;
}

}  // namespace asg::testing
