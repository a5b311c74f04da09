// ResponseStore: the answers of POST /v1/responses kept for a later
// previous_response_id ([gateway] stored_responses, stored_response_max_age_s).
//
// Each entry is a response id and the whole conversation up to and including
// that answer (api.h stored_conversation), so a chain of responses needs one
// lookup. The entries live in the ledger's SQLite file, in a table of their
// own (gateway_responses), so they survive a restart; the ledger's records
// are untouched. Bounded in count and age: a put removes what is past either
// bound, oldest first, and a get never returns an entry past its age.
// Thread-safe (one connection behind a mutex; the calls are short).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "switchboard/status.h"

struct sqlite3;

namespace switchboard::gateway {

class ResponseStore {
 public:
  // Opens (creating the table when needed) the store in the SQLite file at
  // `path`. `max_entries` 0 keeps nothing: put does nothing, get finds nothing.
  static Result<std::unique_ptr<ResponseStore>> open(const std::string& path, std::int64_t max_entries,
                                                     std::chrono::seconds max_age);
  ~ResponseStore();
  ResponseStore(const ResponseStore&) = delete;
  ResponseStore& operator=(const ResponseStore&) = delete;

  // Keeps `conversation` (a JSON array text) under `id`, replacing an entry
  // of the same id, then drops what is past the bounds.
  Status put(const std::string& id, const std::string& conversation);
  // The conversation kept under `id`; nullopt when there is none or it is
  // older than max_age. A failed read is logged by the caller as a miss.
  Result<std::optional<std::string>> get(const std::string& id);
  // Entries kept now (for tests and /metrics).
  Result<std::int64_t> size();

 private:
  ResponseStore(sqlite3* db, std::string path, std::int64_t max_entries, std::chrono::seconds max_age)
      : db_(db), path_(std::move(path)), max_entries_(max_entries), max_age_(max_age) {}
  Status exec(const char* sql, const char* doing);

  std::mutex mu_;
  sqlite3* db_;
  std::string path_;
  std::int64_t max_entries_;
  std::chrono::seconds max_age_;
  std::int64_t count_ = 0;  // entries in the table (this process is its only writer)
};

}  // namespace switchboard::gateway
