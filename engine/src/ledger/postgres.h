// The PostgreSQL ledger's readers and writers other than the sink, for
// location.cpp (ledgers by location) and the tests.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "switchboard/calibration.h"
#include "switchboard/ledger.h"
#include "switchboard/status.h"

namespace switchboard {

// read_ledger, read_ledger_decisions and reprice_ledger of a PostgreSQL ledger.
Result<std::vector<CostRecord>> read_postgres_ledger(const std::string& url, const LedgerQuery& query);
Result<std::vector<DecisionRecord>> read_postgres_decisions(const std::string& url, const LedgerQuery& query);
Status reprice_postgres_ledger(const std::string& url, const std::vector<std::pair<std::int64_t, MicroUsd>>& costs,
                               const std::string& catalog_version);
// store_token_factors and read_token_factors of a PostgreSQL ledger.
Status store_postgres_token_factors(const std::string& url, const std::map<std::string, TokenCalibration>& factors);
Result<std::map<std::string, TokenCalibration>> read_postgres_token_factors(const std::string& url);

// The schema version this build writes, and the one the database at `url`
// holds (0 when it has no Switchboard schema).
int postgres_ledger_latest_schema();
Result<int> postgres_ledger_schema_version(const std::string& url);
// `url` without its password, for messages and the sink's name.
std::string redact_postgres_url(const std::string& url);
// The records the spool holds (for tests): lines appended and not yet replayed.
std::uint64_t postgres_ledger_spooled(const LedgerSink& sink);
// Transactions committed to PostgreSQL so far; 0 when it is not a PostgreSQL sink.
std::uint64_t postgres_ledger_transactions(const LedgerSink& sink);

}  // namespace switchboard
