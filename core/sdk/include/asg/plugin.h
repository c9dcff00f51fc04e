// The plugin ABI: what a plugin library exports and what the loader checks before using it.
//
// A plugin library (built with asg_add_plugin() in CMake) exports exactly one symbol, `asg_plugin_entry`
// (plugins are compiled with hidden visibility and linked with a version script that keeps only it). It
// is a function returning a pointer to a PluginHeader, a plain C-layout struct the loader can read
// safely whatever the library was built with:
//
//   1. api_major/api_minor/struct_size: the plugin API this library was compiled against and the size of
//      its header. The loader requires an equal major and a minor not newer than its own. Fields are only
//      ever appended to PluginHeader (a minor bump); the loader reads a field only if struct_size covers
//      it, so a plugin built against an older minor still loads.
//   2. the build fingerprint: Torch version, compiler, _GLIBCXX_USE_CXX11_ABI, C++ standard, and the
//      sha256 of the SDK's public headers. Plugins exchange C++ objects (torch::Tensor, std::string,
//      torch::nn::Module) with the host, which is only sound when both sides were built alike; any
//      difference is refused, naming both sides. The header hash catches an SDK header edited without
//      a version bump; it is compared when both sides claim the same API minor (an older minor's
//      headers differ by construction and are covered by the append-only rule).
//   3. only then does the loader call `factories()`, which returns the library's factories: kind,
//      name, version, one-line summary, parameter schema, what the plugin requires of the others, and
//      a type-erased create function. An exception thrown while listing is a load error naming the
//      library.
//
// Kinds are named by strings ("dataset", "backbone", ...). Each kind's interface header (asg/kinds/)
// specialises PluginKindTraits with its name and the context its factories receive, so adding a kind
// is one new header plus its name in the core's list of known kinds; nothing here changes.
//
// Writing a plugin: implement the interface of its kind (asg/kinds/<kind>.h), then end the .cpp with
//
//   ASG_PLUGIN_LIBRARY(
//       asg::make_factory<asg::Backbone>("unet3d", "1.0.0", "small 3D UNet", unet3d_params(),
//                                        [](const asg::Params& p, const asg::BackboneContext& ctx) {
//                                          return std::make_shared<Unet3dImpl>(p, ctx); }))
//
// Requirements: a factory may declare what it needs from the other plugins of an experiment, e.g.
//   make_factory<Metric>(...).requires_label_keys({"colour", "shape"}).requires_vocabulary("sprite-vocabulary", "1.0.0")
// The core checks them before anything is recorded and writes the error, prefixed with file, section
// and plugin; plugins do not repeat these checks.
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
#include <type_traits>
#include <vector>

#include "asg/error.h"
#include "asg/params.h"
#include "asg/plugin_kind.h"
#include "asg/version.h"
#include "asg/vocabulary.h"

namespace asg {

// Bump the major on any incompatible change of this header or a kind interface; bump the minor when
// something is appended compatibly (an old plugin still works with a newer host).
// 3.0: kinds named by strings, type-erased factories, declared requirements, SDK header hash.
// 3.1: PluginHeader::sdk_version appended.
// 4.0: the metric contract: real set and its cached state, streamed generated side, state() and merge().
// 4.1: the image_encoder kind (asg/kinds/image_encoder.h).
inline constexpr uint32_t kPluginApiMajor = 4;
inline constexpr uint32_t kPluginApiMinor = 1;

// The create function as the loader sees it: parameters and a pointer to the kind's context (a
// NoContext for kinds without one) in, the object as its interface type out.
using ErasedCreate = std::function<std::shared_ptr<void>(const Params&, const void* context)>;

// What a plugin needs from the others of its experiment. The core checks every field before anything
// is recorded.
struct Requirements {
  std::vector<std::string> label_keys;  // the dataset must announce each in DatasetInfo::label_keys
  Vocabulary vocabulary;                // labels from this vocabulary (same major, minor >=); empty = any
  int64_t min_frames = 0;               // the dataset's clips have at least this many frames

  bool empty() const { return label_keys.empty() && vocabulary.name.empty() && min_frames == 0; }
};

struct Factory {
  std::string kind;     // PluginKindTraits<Interface>::name
  std::string name;     // unique within its kind across all loaded libraries, [a-z0-9_]+
  std::string version;  // semantic version; bump when outputs change for the same parameters
  std::string summary;  // one line
  std::vector<ParamSpec> params;
  ErasedCreate create;
  Requirements requirements;

  Factory&& requires_label_keys(std::vector<std::string> keys) && {
    requirements.label_keys = std::move(keys);
    return std::move(*this);
  }
  Factory&& requires_vocabulary(std::string vocabulary, std::string vocabulary_version) && {
    requirements.vocabulary = Vocabulary{std::move(vocabulary), std::move(vocabulary_version)};
    return std::move(*this);
  }
  Factory&& requires_min_frames(int64_t frames) && {
    requirements.min_frames = frames;
    return std::move(*this);
  }
};

// `fn` is called as fn(params) for kinds without a context, fn(params, context) otherwise, and returns
// a shared_ptr to (a class derived from) Interface.
template <typename Interface, typename Fn>
Factory make_factory(std::string name, std::string version, std::string summary, std::vector<ParamSpec> params, Fn&& fn) {
  using Context = typename PluginKindTraits<Interface>::Context;
  ErasedCreate create = [fn = std::forward<Fn>(fn)](const Params& p, const void* context) -> std::shared_ptr<void> {
    std::shared_ptr<Interface> object;
    // A factory that needs nothing from its context may leave it out.
    if constexpr (std::is_same_v<Context, NoContext> || !std::is_invocable_v<const std::decay_t<Fn>&, const Params&, const Context&>)
      object = fn(p);
    else
      object = fn(p, *static_cast<const Context*>(context));
    return object;  // points at the Interface subobject; the loader casts back to Interface
  };
  return Factory{PluginKindTraits<Interface>::name, std::move(name), std::move(version), std::move(summary),
                 std::move(params), std::move(create), {}};
}

// What a library was built with. Strings point to static storage in the library.
struct BuildFingerprint {
  const char* torch_version;       // "1.13.0"
  const char* compiler;            // "GCC 12.2.0"
  int32_t cxx11_abi;               // _GLIBCXX_USE_CXX11_ABI
  int64_t cxx_standard;            // __cplusplus
  const char* sdk_headers_sha256;  // ASG_SDK_HEADERS_SHA256: the SDK's public headers it was compiled with
};

// C layout, append-only. The loader reads api_major/api_minor/struct_size first, and a later field
// only when struct_size covers it.
struct PluginHeader {
  uint32_t api_major;
  uint32_t api_minor;
  uint32_t struct_size;
  BuildFingerprint fingerprint;
  std::vector<Factory> (*factories)();
  // 3.1
  const char* sdk_version;  // ASG_VERSION of the SDK the plugin was built against
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

#define ASG_TORCH_VERSION_STRING \
  ASG_STRINGIFY(TORCH_VERSION_MAJOR) "." ASG_STRINGIFY(TORCH_VERSION_MINOR) "." ASG_STRINGIFY(TORCH_VERSION_PATCH)

// Evaluated in the translation unit that calls it, so a plugin records its own build and the host its own.
#define ASG_BUILD_FINGERPRINT                                                                       \
  ::asg::BuildFingerprint {                                                                         \
    ASG_TORCH_VERSION_STRING, ASG_COMPILER_ID, _GLIBCXX_USE_CXX11_ABI, __cplusplus, ASG_SDK_HEADERS_SHA256 \
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
                                               &asg_plugin_factories_, ASG_VERSION};                \
  const ::asg::PluginHeader* asg_plugin_entry_impl() { return &asg_plugin_header_; }                \
  }                                                                                                 \
  BOOST_DLL_ALIAS(asg_plugin_entry_impl, asg_plugin_entry)
