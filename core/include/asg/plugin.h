// The plugin ABI: what a plugin library exports and what the loader checks before using it.
//
// A plugin library (built with asg_add_plugin() in CMake) exports exactly one entry, `asg_plugin_entry`,
// through BOOST_DLL_ALIAS. It is a function returning a pointer to a PluginHeader, a plain C-layout
// struct the loader can read safely whatever the library was built with:
//
//   1. api_major/api_minor: the plugin API this library was compiled against. The loader requires an
//      equal major and a minor not newer than its own; otherwise it refuses the library, naming both.
//   2. the build fingerprint (Torch version, compiler, _GLIBCXX_USE_CXX11_ABI, C++ standard). Plugins
//      exchange C++ objects (torch::Tensor, std::string, torch::nn::Module) with the host, which is only
//      sound when both sides were built alike; any difference is refused, naming both sides.
//   3. only then does the loader call `factories()`, which returns the library's factories: kind, name,
//      version, one-line summary, parameter schema, and a typed create function.
//
// Writing a plugin: implement the interface of its kind (asg/kinds/<kind>.h), then end the .cpp with
//
//   ASG_PLUGIN_LIBRARY(
//       asg::make_factory<asg::Backbone>("unet3d", "1.0.0", "small 3D UNet", unet3d_params(),
//                                        [](const asg::Params& p, const asg::BackboneContext& ctx) {
//                                          return std::make_shared<Unet3dImpl>(p, ctx); }))
//
// Lifetime: every object a factory creates is handed out by the loader in a shared_ptr that also owns the
// library, so the code of an object can never be unmapped while the object lives. Plugins must not
// create objects with static storage duration that hold torch state.
//
// Threading: factories may be called from any thread but not concurrently for the same library.
#pragma once

#include <torch/version.h>

#include <boost/dll/alias.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "asg/error.h"
#include "asg/params.h"
#include "asg/vocabulary.h"

namespace asg {

// Bump the major on any incompatible change of this header or a kind interface; bump the minor when
// something is appended compatibly (an old plugin still works with a newer host).
// 2.0: Factory::required_vocabulary, DatasetInfo::vocabulary, TemporalContext::name and
//      TemporalModule::identity_at_init().
inline constexpr uint32_t kPluginApiMajor = 2;
inline constexpr uint32_t kPluginApiMinor = 0;

enum class PluginKind { Dataset, TextEncoder, Backbone, Temporal, Sampler, Metric };
inline constexpr PluginKind kAllPluginKinds[] = {PluginKind::Dataset, PluginKind::TextEncoder, PluginKind::Backbone,
                                                 PluginKind::Temporal, PluginKind::Sampler, PluginKind::Metric};
const char* kind_name(PluginKind kind);  // "dataset", "text_encoder", ...

// Interfaces, one header each under asg/kinds/.
class Dataset;
class TextEncoder;
class Backbone;
class TemporalModule;
class Sampler;
class Metric;
struct BackboneContext;
struct TemporalContext;
struct MetricContext;

using CreateDataset = std::function<std::shared_ptr<Dataset>(const Params&)>;
using CreateTextEncoder = std::function<std::shared_ptr<TextEncoder>(const Params&)>;
using CreateBackbone = std::function<std::shared_ptr<Backbone>(const Params&, const BackboneContext&)>;
using CreateTemporal = std::function<std::shared_ptr<TemporalModule>(const Params&, const TemporalContext&)>;
using CreateSampler = std::function<std::shared_ptr<Sampler>(const Params&)>;
using CreateMetric = std::function<std::shared_ptr<Metric>(const Params&, const MetricContext&)>;
// Alternative order matches PluginKind.
using Creator = std::variant<CreateDataset, CreateTextEncoder, CreateBackbone, CreateTemporal, CreateSampler, CreateMetric>;

struct Factory {
  std::string name;     // unique within its kind across all loaded libraries, [a-z0-9_]+
  std::string version;  // semantic version; bump when outputs change for the same parameters
  std::string summary;  // one line
  std::vector<ParamSpec> params;
  Creator create;
  // Metrics that read dataset labels: the vocabulary the labels must come from (see asg/vocabulary.h).
  // Empty name = no requirement.
  Vocabulary required_vocabulary;

  PluginKind kind() const { return static_cast<PluginKind>(create.index()); }
  // Declares the label vocabulary this plugin requires of the dataset, e.g.
  //   make_factory<Metric>(...).requires_vocabulary("sprite-vocabulary", "1.0.0")
  Factory&& requires_vocabulary(std::string name, std::string version) && {
    required_vocabulary = Vocabulary{std::move(name), std::move(version)};
    return std::move(*this);
  }
};

template <typename Interface> struct CreatorFor;
template <> struct CreatorFor<Dataset> { using type = CreateDataset; static constexpr PluginKind kind = PluginKind::Dataset; };
template <> struct CreatorFor<TextEncoder> { using type = CreateTextEncoder; static constexpr PluginKind kind = PluginKind::TextEncoder; };
template <> struct CreatorFor<Backbone> { using type = CreateBackbone; static constexpr PluginKind kind = PluginKind::Backbone; };
template <> struct CreatorFor<TemporalModule> { using type = CreateTemporal; static constexpr PluginKind kind = PluginKind::Temporal; };
template <> struct CreatorFor<Sampler> { using type = CreateSampler; static constexpr PluginKind kind = PluginKind::Sampler; };
template <> struct CreatorFor<Metric> { using type = CreateMetric; static constexpr PluginKind kind = PluginKind::Metric; };

template <typename Interface, typename Fn>
Factory make_factory(std::string name, std::string version, std::string summary, std::vector<ParamSpec> params, Fn&& fn) {
  return Factory{std::move(name), std::move(version), std::move(summary), std::move(params),
                 Creator(typename CreatorFor<Interface>::type(std::forward<Fn>(fn))), {}};
}

// What a library was built with. Strings point to static storage in the library.
struct BuildFingerprint {
  const char* torch_version;  // "1.13.0"
  const char* compiler;       // "GCC 12.2.0"
  int32_t cxx11_abi;          // _GLIBCXX_USE_CXX11_ABI
  int64_t cxx_standard;       // __cplusplus
};

// C layout, append-only. The loader reads api_major/api_minor/struct_size first.
struct PluginHeader {
  uint32_t api_major;
  uint32_t api_minor;
  uint32_t struct_size;
  BuildFingerprint fingerprint;
  std::vector<Factory> (*factories)();
};

#define ASG_STRINGIFY_IMPL(x) #x
#define ASG_STRINGIFY(x) ASG_STRINGIFY_IMPL(x)
#if defined(__clang__)
#define ASG_COMPILER_ID "Clang " __clang_version__
#elif defined(__GNUC__)
#define ASG_COMPILER_ID "GCC " ASG_STRINGIFY(__GNUC__) "." ASG_STRINGIFY(__GNUC_MINOR__) "." ASG_STRINGIFY(__GNUC_PATCHLEVEL__)
#else
#define ASG_COMPILER_ID "unknown"
#endif

// Evaluated in the translation unit that calls it, so a plugin records its own build and the host its own.
#define ASG_BUILD_FINGERPRINT                                                                     \
  ::asg::BuildFingerprint {                                                                       \
    ASG_STRINGIFY(TORCH_VERSION_MAJOR) "." ASG_STRINGIFY(TORCH_VERSION_MINOR) "." ASG_STRINGIFY(  \
        TORCH_VERSION_PATCH),                                                                     \
        ASG_COMPILER_ID, _GLIBCXX_USE_CXX11_ABI, __cplusplus                                      \
  }

using PluginEntry = const PluginHeader*();
inline constexpr const char* kPluginEntrySymbol = "asg_plugin_entry";

}  // namespace asg

// Ends a plugin library's source: lists its factories and exports the entry. Use once per library.
#define ASG_PLUGIN_LIBRARY(...)                                                                       \
  namespace {                                                                                       \
  std::vector<::asg::Factory> asg_plugin_factories_() { return {__VA_ARGS__}; }                     \
  const ::asg::PluginHeader asg_plugin_header_{::asg::kPluginApiMajor, ::asg::kPluginApiMinor,      \
                                               sizeof(::asg::PluginHeader), ASG_BUILD_FINGERPRINT,  \
                                               &asg_plugin_factories_};                             \
  const ::asg::PluginHeader* asg_plugin_entry_impl() { return &asg_plugin_header_; }                \
  }                                                                                                 \
  BOOST_DLL_ALIAS(asg_plugin_entry_impl, asg_plugin_entry)
