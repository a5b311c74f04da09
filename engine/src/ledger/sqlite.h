// Private helpers over a SQLite ledger file, for `switchboard check` and the
// tests (which do not link SQLite themselves).
#pragma once

#include <cstdint>
#include <string>

#include "switchboard/ledger.h"
#include "switchboard/status.h"

namespace switchboard {

// The schema version this build writes (the last migration).
int sqlite_ledger_latest_schema();
// The file's `PRAGMA user_version`.
Result<int> sqlite_ledger_schema_version(const std::string& path);
// The transactions `sink` has committed so far (for tests of the group
// commit); 0 when it is not a SQLite sink.
std::uint64_t sqlite_ledger_commits(const LedgerSink& sink);
// `PRAGMA integrity_check`: ok, or an error quoting what SQLite found.
Status check_sqlite_ledger(const std::string& path);

}  // namespace switchboard
