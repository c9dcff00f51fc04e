// The registry's schema: the SQL that migrates each version to the next. Private to the store.
#pragma once

#include <span>

namespace asg::registry_store {

// Entry i migrates schema version i to i + 1; there are Registry::kSchemaVersion of them. Append only:
// never edit a shipped migration (registry files of every earlier version are opened and migrated).
std::span<const char* const> schema_migrations();

}  // namespace asg::registry_store
