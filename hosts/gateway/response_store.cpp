#include "response_store.h"

#include <sqlite3.h>

namespace switchboard::gateway {

namespace {

constexpr int kBusyTimeoutMs = 5000;

std::int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

Status db_error(const std::string& path, sqlite3* db, const char* doing) {
  return Status::internal(path + ": " + doing + ": " + (db != nullptr ? sqlite3_errmsg(db) : "out of memory"));
}

// A prepared statement, finalized when it goes out of scope.
struct Statement {
  sqlite3_stmt* stmt = nullptr;
  ~Statement() { sqlite3_finalize(stmt); }
};

}  // namespace

Result<std::unique_ptr<ResponseStore>> ResponseStore::open(const std::string& path, std::int64_t max_entries,
                                                          std::chrono::seconds max_age) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr) !=
      SQLITE_OK) {
    Status s = db_error(path, db, "cannot open the response store");
    sqlite3_close(db);
    return s;
  }
  sqlite3_busy_timeout(db, kBusyTimeoutMs);
  std::unique_ptr<ResponseStore> store(new ResponseStore(db, path, max_entries, max_age));
  if (Status s = store->exec("CREATE TABLE IF NOT EXISTS gateway_responses ("
                             "  id TEXT PRIMARY KEY,"
                             "  created_at INTEGER NOT NULL,"
                             "  conversation TEXT NOT NULL);"
                             "CREATE INDEX IF NOT EXISTS gateway_responses_created ON gateway_responses(created_at);",
                             "cannot create the response store's table");
      !s.ok()) {
    return s;
  }
  Result<std::int64_t> kept = store->size();
  if (!kept.ok()) return kept.status();
  store->count_ = *kept;
  return store;
}

ResponseStore::~ResponseStore() { sqlite3_close(db_); }

Status ResponseStore::exec(const char* sql, const char* doing) {
  char* message = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &message) != SQLITE_OK) {
    Status s = Status::internal(path_ + ": " + doing + ": " + (message != nullptr ? message : "unknown error"));
    sqlite3_free(message);
    return s;
  }
  return Status();
}

Status ResponseStore::put(const std::string& id, const std::string& conversation) {
  if (max_entries_ == 0) return Status();
  std::lock_guard<std::mutex> lock(mu_);
  {
    Statement insert;
    if (sqlite3_prepare_v2(db_, "INSERT OR REPLACE INTO gateway_responses(id, created_at, conversation) VALUES(?,?,?)",
                           -1, &insert.stmt, nullptr) != SQLITE_OK) {
      return db_error(path_, db_, "cannot store a response");
    }
    sqlite3_bind_text(insert.stmt, 1, id.data(), static_cast<int>(id.size()), SQLITE_TRANSIENT);
    sqlite3_bind_int64(insert.stmt, 2, now_seconds());
    sqlite3_bind_text(insert.stmt, 3, conversation.data(), static_cast<int>(conversation.size()), SQLITE_STATIC);
    if (sqlite3_step(insert.stmt) != SQLITE_DONE) return db_error(path_, db_, "cannot store a response");
  }  // (ids are unique per answer: a replace, which would not grow the table, does not happen)
  ++count_;
  // The bounds: what is too old, then the oldest beyond the count.
  Statement expired;
  if (sqlite3_prepare_v2(db_, "DELETE FROM gateway_responses WHERE created_at < ?", -1, &expired.stmt, nullptr) !=
      SQLITE_OK) {
    return db_error(path_, db_, "cannot prune the response store");
  }
  sqlite3_bind_int64(expired.stmt, 1, now_seconds() - max_age_.count());
  if (sqlite3_step(expired.stmt) != SQLITE_DONE) return db_error(path_, db_, "cannot prune the response store");
  count_ -= sqlite3_changes(db_);
  if (count_ <= max_entries_) return Status();
  Statement oldest;
  if (sqlite3_prepare_v2(db_,
                         "DELETE FROM gateway_responses WHERE id IN ("
                         "  SELECT id FROM gateway_responses ORDER BY created_at, rowid LIMIT ?)",
                         -1, &oldest.stmt, nullptr) != SQLITE_OK) {
    return db_error(path_, db_, "cannot prune the response store");
  }
  sqlite3_bind_int64(oldest.stmt, 1, count_ - max_entries_);
  if (sqlite3_step(oldest.stmt) != SQLITE_DONE) return db_error(path_, db_, "cannot prune the response store");
  count_ -= sqlite3_changes(db_);
  return Status();
}

Result<std::optional<std::string>> ResponseStore::get(const std::string& id) {
  if (max_entries_ == 0) return std::optional<std::string>();
  std::lock_guard<std::mutex> lock(mu_);
  Statement select;
  if (sqlite3_prepare_v2(db_, "SELECT conversation FROM gateway_responses WHERE id = ? AND created_at >= ?", -1,
                         &select.stmt, nullptr) != SQLITE_OK) {
    return db_error(path_, db_, "cannot read the response store");
  }
  sqlite3_bind_text(select.stmt, 1, id.data(), static_cast<int>(id.size()), SQLITE_TRANSIENT);
  sqlite3_bind_int64(select.stmt, 2, now_seconds() - max_age_.count());
  const int rc = sqlite3_step(select.stmt);
  if (rc == SQLITE_DONE) return std::optional<std::string>();
  if (rc != SQLITE_ROW) return db_error(path_, db_, "cannot read the response store");
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(select.stmt, 0));
  return std::optional<std::string>(std::string(text != nullptr ? text : "", sqlite3_column_bytes(select.stmt, 0)));
}

Result<std::int64_t> ResponseStore::size() {
  std::lock_guard<std::mutex> lock(mu_);
  Statement count;
  if (sqlite3_prepare_v2(db_, "SELECT count(*) FROM gateway_responses", -1, &count.stmt, nullptr) != SQLITE_OK ||
      sqlite3_step(count.stmt) != SQLITE_ROW) {
    return db_error(path_, db_, "cannot count the response store");
  }
  return static_cast<std::int64_t>(sqlite3_column_int64(count.stmt, 0));
}

}  // namespace switchboard::gateway
