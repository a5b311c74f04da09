// The acknowledgement journal of a SQLite ledger: an append-only file of JSON
// lines beside the database (PATH + "-acks"), where a record is durable as
// soon as flush() has appended it, before it is in the database. It knows
// nothing of SQLite: the SQLite sink (sqlite.cpp) appends to it on the
// request path and moves its lines into the database off it, and records
// there how far it got (generation and byte offset, journal_state).
//
// The file: one header line {"switchboard_journal":1,"generation":"<hex>"},
// then one record per line (cost_record_to_json / decision_record_to_json).
// A generation is started afresh (rotate) by writing a new file with a new
// header beside it and renaming it over the old one, so a reader sees either
// generation whole. A line without its newline at the end is torn (the
// process died in the middle of the write): readers leave it out.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "switchboard/ledger.h"
#include "switchboard/status.h"

namespace switchboard {

// PATH + "-acks": a name SQLite does not use (it uses -journal, -wal, -shm).
std::string journal_path_for(const std::string& db_path);

// The journal as one writer holds it: its file descriptor, locked (flock)
// against other writers for as long as this lives; its generation and size.
// Not thread-safe: the SQLite sink calls it from one thread at a time (the
// thread holding its appender role).
class JournalFile {
 public:
  // Opens (creating if missing) and locks the journal at `path`. Returns
  // nullopt, not an error, when another writer (process or sink) holds it.
  // With `sync` (durability power) appends and rotations are fdatasync'ed.
  static Result<std::optional<JournalFile>> open_locked(const std::string& path, bool sync);

  JournalFile(JournalFile&& other) noexcept;
  JournalFile& operator=(JournalFile&&) = delete;
  JournalFile(const JournalFile&) = delete;
  JournalFile& operator=(const JournalFile&) = delete;
  ~JournalFile();

  // "" when the file has no readable header (new, empty or damaged).
  const std::string& generation() const { return generation_; }
  // Bytes in the file (its end, where the next append goes).
  std::uint64_t size() const { return size_; }
  // Where the records begin: the header's length (0 without a header).
  std::uint64_t header_size() const { return header_size_; }
  const std::string& path() const { return path_; }

  // Appends `lines` (each ending in '\n') with one write() (more only when
  // the kernel takes part of it), then fdatasync when syncing. Returns the
  // offset where the first line begins. After a failed append the next one
  // begins with a newline, which ends whatever part of it reached the file
  // as a line of its own that readers skip. (Not cut back: a reader may have
  // moved past those bytes already, and offsets only grow.)
  Result<std::uint64_t> append(const std::vector<std::string_view>& lines);
  // Starts a new generation: a new file holding only a new header, renamed
  // over this one (then the directory synced when syncing); this object then
  // holds the new file. On failure nothing changed.
  Status rotate();
  // How many append() calls wrote to the file (for tests of the group commit).
  std::uint64_t appends() const { return appends_; }

 private:
  JournalFile(std::string path, int fd, bool sync) : path_(std::move(path)), fd_(fd), sync_(sync) {}
  Status read_header();

  std::string path_;
  int fd_ = -1;
  bool sync_ = false;
  std::string generation_;
  std::uint64_t size_ = 0;
  std::uint64_t header_size_ = 0;
  std::uint64_t appends_ = 0;
  bool end_line_first_ = false;  // the last append failed: start with a newline
};

// One record line of a journal and the offset just past its newline.
struct JournalLine {
  std::string text;  // without the newline
  std::uint64_t end = 0;
};

// What read_journal found past the offset it was given.
struct JournalContents {
  bool exists = false;         // false: no journal file
  std::string generation;      // "" when it has no readable header
  std::uint64_t header_size = 0;
  std::vector<JournalLine> lines;  // complete lines past the offset, in order
  std::uint64_t complete_end = 0;  // the end of the last complete line (or of the header, or the offset)
  std::uint64_t torn_bytes = 0;    // bytes after it without a newline
  bool bad_header = false;         // the file is not empty but its first line is no journal header
};

// Reads the journal at `path`: the records past `ingested` when its header
// names `generation`, else every record (another generation's offset means
// nothing in this one).
Result<JournalContents> read_journal(const std::string& path, std::string_view generation, std::uint64_t ingested);

// The record one journal line holds: a decision record when the line says so
// ({"record":"decision", ...}), else a cost record.
using JournalRecord = std::variant<CostRecord, DecisionRecord>;
Result<JournalRecord> parse_journal_line(std::string_view line);

}  // namespace switchboard
