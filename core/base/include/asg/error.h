// asg::Error: the one exception type ASG Lab throws for expected failures.
//
// The kind decides the process exit code and who is at fault:
//   Config      the experiment file, an override or a CLI flag is wrong  -> exit 2, nothing recorded
//   PluginLoad  a plugin library cannot be loaded or is incompatible       -> exit 2, nothing recorded
//   Data        a dataset/media file is malformed                          -> exit 1, run marked FAILED
//   Registry    the SQLite registry cannot be opened or is too new         -> exit 1
//   Interrupted SIGINT/SIGTERM arrived                                     -> exit 130, run marked KILLED
//   Internal    a bug (a broken invariant)                                 -> exit 1
// Messages are complete sentences that name the file/line/key, the bad value and what would be valid;
// callers print what() as is.
#pragma once

#include <stdexcept>
#include <string>

namespace asg {

enum class ErrorKind { Config, PluginLoad, Data, Registry, Interrupted, Internal };

// Its destructor is defined in the SDK library (the class's key function), so its vtable and typeinfo
// live there and not in each plugin: an Error thrown by plugin code stays valid after that plugin's
// library is unloaded, e.g. while the exception unwinds past the last object the plugin created.
class __attribute__((visibility("default"))) Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  ~Error() override;
  ErrorKind kind() const noexcept { return kind_; }

 private:
  ErrorKind kind_;
};

inline Error config_error(const std::string& message) { return Error(ErrorKind::Config, message); }
inline Error plugin_error(const std::string& message) { return Error(ErrorKind::PluginLoad, message); }
inline Error data_error(const std::string& message) { return Error(ErrorKind::Data, message); }
inline Error registry_error(const std::string& message) { return Error(ErrorKind::Registry, message); }
inline Error internal_error(const std::string& message) { return Error(ErrorKind::Internal, message); }

// Exit code the CLI uses for an error of this kind.
inline int exit_code_for(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::Config:
    case ErrorKind::PluginLoad: return 2;
    case ErrorKind::Interrupted: return 130;
    default: return 1;
  }
}

}  // namespace asg
