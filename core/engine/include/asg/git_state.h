// The git commit of a folder's checkout and whether it has uncommitted changes, as a run records them.
#pragma once

#include <filesystem>
#include <string>

namespace asg {

struct GitState {
  std::string commit;  // "" outside a git checkout
  bool dirty = false;
};
GitState git_state(const std::filesystem::path& dir);

}  // namespace asg
