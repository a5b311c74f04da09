// The ledger sink a config names ([ledger] url, or a SQLite path).
#include "switchboard/config.h"
#include "switchboard/ledger.h"

namespace switchboard {

Result<std::shared_ptr<LedgerSink>> open_configured_ledger(const LedgerSettings& settings,
                                                           const std::string& sqlite_path) {
  if (settings.url.empty()) {
    SqliteLedgerOptions options;
    options.path = sqlite_path;
    options.durability = settings.durability;
    return open_sqlite_ledger(options);
  }
  PostgresLedgerOptions options;
  options.url = settings.url;
  options.spool_path = settings.spool;
  options.spool_limit_bytes = settings.spool_limit_bytes;
  options.durability = settings.durability;
  return open_postgres_ledger(options);
}

std::string ledger_location(const LedgerSettings& settings, const std::string& sqlite_path) {
  return settings.url.empty() ? sqlite_path : settings.url;
}

}  // namespace switchboard
