// Pieces of a rig of several gateway processes sharing one Redis (the
// replicas tests: budgets, health): the [state] section, a chat request, and
// a figure read from one replica's SQLite ledger.
#pragma once

#include <doctest/doctest.h>
#include <sqlite3.h>

#include <cstdint>
#include <string>

namespace switchboard::testing {

// The [state] section of a replica sharing `redis_url` with `replicas` processes (fail_closed).
inline std::string shared_state_section(const std::string& redis_url, int replicas = 3) {
  return R"toml(
[state]
backend = "redis"
redis_url = ")toml" + redis_url + R"toml("
timeout_ms = 300
on_unavailable = "fail_closed"
replicas = )toml" + std::to_string(replicas) + "\n";
}

// An OpenAI chat request for model "auto" (the rules choose).
inline std::string replica_chat_body(const std::string& text = "Format this as a list: a, b") {
  return R"({"model":"auto","messages":[{"role":"user","content":")" + text + R"("}],"max_tokens":200})";
}

// The integer `sql` (one row, one column) answers in the SQLite ledger at `path`.
inline std::int64_t ledger_figure(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  REQUIRE_MESSAGE(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK, sqlite3_errmsg(db));
  REQUIRE(sqlite3_step(stmt) == SQLITE_ROW);
  const std::int64_t figure = sqlite3_column_int64(stmt, 0);
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return figure;
}

}  // namespace switchboard::testing
