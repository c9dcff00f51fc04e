// The name and factory context of a plugin kind, specialised once in each kind header (asg/kinds/):
//
//   template <> struct PluginKindTraits<Dataset> {
//     static constexpr const char* name = "dataset";  // how the ABI, CMake and messages name the kind
//     using Context = NoContext;                      // what its factories receive besides Params
//   };
//
// See asg/plugin.h for how factories use it.
#pragma once

namespace asg {

template <typename Interface> struct PluginKindTraits;

// The context of kinds whose factories take only their parameters.
struct NoContext {};

}  // namespace asg
