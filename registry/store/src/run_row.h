// A run's row: the columns a RunRecord is read from, selected with their names and read back by name.
// Private to the store.
#pragma once

#include <string>

#include "asg/registry.h"
#include "sqlite_statement.h"

namespace asg::registry_store {

// Which large texts a listing leaves out ('' in their place): the config text and the environment JSON, and
// for a leaderboard (which reads it once per protocol) the protocol JSON too.
enum class RunTexts { All, WithoutLargeTexts, WithoutLargeTextsOrProtocol };

// The SELECT list of a RunRecord, every column under its field's name (`... AS config_text`).
std::string run_columns(RunTexts texts = RunTexts::All);

// Reads RunRecords from a statement whose SELECT list contains run_columns(): the column of each field is
// looked up by name once, when the reader is made.
class RunReader {
 public:
  explicit RunReader(const Statement& s);
  RunRecord read() const;

 private:
  const Statement& s_;
  int id_, name_, experiment_path_, benchmark_, rank_by_, status_, created_ms_, started_ms_, ended_ms_, config_hash_,
      config_text_, seed_, git_commit_, git_dirty_, host_json_, run_dir_, parent_run_id_, attempt_, error_, method_hash_,
      protocol_hash_, protocol_json_, resumed_from_, role_, deleted_ms_, seedless_hash_;
};

}  // namespace asg::registry_store
