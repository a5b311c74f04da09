// Ledgers by location: a postgresql:// URL is the PostgreSQL ledger, anything
// else a SQLite database path. The one place that tells them apart for readers.
#include "ledger/postgres.h"
#include "ledger/sqlite.h"
#include "switchboard/calibration.h"
#include "switchboard/ledger.h"

namespace switchboard {

bool is_postgres_url(std::string_view location) {
  return location.rfind("postgresql://", 0) == 0 || location.rfind("postgres://", 0) == 0;
}

Result<std::vector<CostRecord>> read_ledger(const std::string& location, const LedgerQuery& query) {
  if (is_postgres_url(location)) return read_postgres_ledger(location, query);
  return read_sqlite_ledger(location, query);
}

Result<std::vector<DecisionRecord>> read_ledger_decisions(const std::string& location, const LedgerQuery& query) {
  if (is_postgres_url(location)) return read_postgres_decisions(location, query);
  return read_sqlite_decisions(location, query);
}

Status reprice_ledger(const std::string& location, const std::vector<std::pair<std::int64_t, MicroUsd>>& costs,
                      const std::string& catalog_version) {
  if (is_postgres_url(location)) return reprice_postgres_ledger(location, costs, catalog_version);
  return reprice_sqlite_ledger(location, costs, catalog_version);
}

Status store_token_factors(const std::string& path, const std::map<std::string, TokenCalibration>& factors) {
  if (is_postgres_url(path)) return store_postgres_token_factors(path, factors);
  return store_sqlite_token_factors(path, factors);
}

Result<std::map<std::string, TokenCalibration>> read_token_factors(const std::string& path) {
  if (is_postgres_url(path)) return read_postgres_token_factors(path);
  return read_sqlite_token_factors(path);
}

}  // namespace switchboard
