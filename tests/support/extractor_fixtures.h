// The extractor fixtures of the FVD/FID tests: TorchScript files with the reference interfaces and random
// weights, written once per test process by scripts/fixtures/write_extractor_torchscript.py.
#pragma once

#include <filesystem>
#include <stdexcept>
#include <string>

#include "test_paths.h"

namespace asg::testing {

// kind: "i3d" or "inception" (write_extractor_torchscript.py; variant "", "wrong-interface" or "nan"), or
// "clip" (write_clip_torchscript.py; variant "", "probe" or "wrong-interface"), or "dover"
// (write_dover_torchscript.py; variant "" or "wrong-interface").
inline std::filesystem::path extractor_fixture(const std::string& kind, const std::string& variant = "") {
  static const std::filesystem::path dir = make_temp_dir("extractors");
  const auto file = dir / (kind + (variant.empty() ? "" : "-" + variant) + ".pt");
  const bool own_script = kind == "clip" || kind == "dover";
  const std::string script = own_script ? "write_" + kind + "_torchscript.py" : "write_extractor_torchscript.py";
  const std::string args = (own_script ? std::string() : "--kind " + kind) + (variant.empty() ? "" : " --" + variant);
  if (!std::filesystem::exists(file) && !write_fixture(script, file, args))
    throw std::runtime_error(script + " failed (torch: the reference environment, scripts/setup.sh)");
  return file;
}

}  // namespace asg::testing
