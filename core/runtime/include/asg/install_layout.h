// Where the installed (or built) ASG Lab keeps its plugins and benchmark definitions, found from where its
// runtime library is, so that a moved install prefix still works. Host-only.
//
//   installed:  <prefix>/lib/libasg_runtime.so  ->  <prefix>/lib/asg/plugins, <prefix>/share/asg/benchmarks
//   build tree: the build's plugins/ folder and the source tree's experiments/benchmarks (compiled in)
#pragma once

#include <filesystem>
#include <optional>

namespace asg {

// The install prefix this process's libasg_runtime.so belongs to, or nothing when it runs from a build tree.
std::optional<std::filesystem::path> installed_prefix();

// The folder of the plugins that come with this ASG Lab: <prefix>/lib/asg/plugins, or the build tree's.
std::filesystem::path bundled_plugin_dir();

// The folder of the benchmark definitions that come with it: <prefix>/share/asg/benchmarks, or the source tree's.
std::filesystem::path bundled_benchmark_dir();

// The conformance suite `asg plugins test` runs: <prefix>/lib/asg/asg_conformance, or the build tree's test binary.
std::filesystem::path bundled_conformance_binary();

// The files the suite gives plugins that need one (vocabularies): <prefix>/share/asg/conformance, or "" in a build
// tree (the suite then reads the source tree's fixtures).
std::filesystem::path bundled_conformance_fixtures();

// The templates of `asg new plugin`: <prefix>/share/asg/templates, or the source tree's core/cli/templates.
std::filesystem::path bundled_plugin_templates();

}  // namespace asg
