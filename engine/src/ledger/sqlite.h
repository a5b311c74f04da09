// Private helpers over a SQLite ledger file, for `switchboard check` and the
// tests (which do not link SQLite themselves).
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "switchboard/calibration.h"
#include "switchboard/ledger.h"
#include "switchboard/status.h"

namespace switchboard {

// The schema version this build writes (the last migration).
int sqlite_ledger_latest_schema();
// The file's `PRAGMA user_version`.
Result<int> sqlite_ledger_schema_version(const std::string& path);
// The group commits that acknowledged records so far (for tests of the group
// commit): appends to the journal, or, for a sink without one, transactions;
// 0 when it is not a SQLite sink. A flush with nothing pending makes none.
std::uint64_t sqlite_ledger_commits(const LedgerSink& sink);
// The transactions that moved records into the database so far (with a
// journal, off the flush path); 0 when it is not a SQLite sink.
std::uint64_t sqlite_ledger_transactions(const LedgerSink& sink);
// Of them, those not made by the idle-priority thread (by the background
// thread at normal priority, or by a flush without a journal).
std::uint64_t sqlite_ledger_background_transactions(const LedgerSink& sink);
// Whether `sink` acknowledges through its journal (false when another writer
// held the journal at open, or when it is not a SQLite sink).
bool sqlite_ledger_journaled(const LedgerSink& sink);
// store_token_factors and read_token_factors of a SQLite ledger.
Status store_sqlite_token_factors(const std::string& path, const std::map<std::string, TokenCalibration>& factors);
Result<std::map<std::string, TokenCalibration>> read_sqlite_token_factors(const std::string& path);
// `PRAGMA integrity_check`: ok, or an error quoting what SQLite found.
Status check_sqlite_ledger(const std::string& path);

}  // namespace switchboard
