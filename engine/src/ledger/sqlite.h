// Private helpers over a SQLite ledger file, for `switchboard check` and the
// tests (which do not link SQLite themselves).
#pragma once

#include <string>

#include "switchboard/status.h"

namespace switchboard {

// The schema version this build writes (the last migration).
int sqlite_ledger_latest_schema();
// The file's `PRAGMA user_version`.
Result<int> sqlite_ledger_schema_version(const std::string& path);
// `PRAGMA integrity_check`: ok, or an error quoting what SQLite found.
Status check_sqlite_ledger(const std::string& path);

}  // namespace switchboard
