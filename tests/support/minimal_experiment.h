// The smallest complete experiment file over the built-in plugins, for tests that load experiments (append the
// sections a test needs; TOML forbids opening a table twice, so tables it has are extended in place).
#pragma once

namespace asg::testing {

inline constexpr const char* kMinimalExperiment = R"(
[dataset]
plugin = "synthetic_stickers"
[text_encoder]
plugin = "word_embedding"
[backbone]
plugin = "unet3d"
[temporal]
plugin = "none"
[sampler]
plugin = "ddim"
[[metrics]]
plugin = "frechet_pixel"
)";

}  // namespace asg::testing
