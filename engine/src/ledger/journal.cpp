// The acknowledgement journal's file: open and lock, append, rotate, read
// back. Every system call failure becomes a Status naming the file.
#include "ledger/journal.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>

#include <nlohmann/json.hpp>

#include "ledger/record_json.h"

namespace switchboard {

namespace {

constexpr int kJournalFormat = 1;
// How many times open_locked looks again when a rotation replaced the file
// between its open() and its flock().
constexpr int kOpenAttempts = 8;
// A header line is far shorter than this.
constexpr size_t kMaxHeader = 256;

Status sys_error(const std::string& path, std::string_view doing) {
  return Status::io_error(path + ": " + std::string(doing) + ": " + std::strerror(errno));
}

// 128 random bits in hex: two journals never share a generation.
std::string new_generation() {
  std::random_device rd;
  std::string id;
  char buf[9];
  for (int i = 0; i < 4; ++i) {
    std::snprintf(buf, sizeof buf, "%08x", static_cast<unsigned>(rd()));
    id += buf;
  }
  return id;
}

std::string header_line(const std::string& generation) {
  nlohmann::json j = nlohmann::json::object();
  j["switchboard_journal"] = kJournalFormat;
  j["generation"] = generation;
  return j.dump() + "\n";
}

// The generation a header line names; nullopt when `line` is no header.
std::optional<std::string> parse_header(std::string_view line) {
  const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return std::nullopt;
  const auto format = j.find("switchboard_journal");
  const auto generation = j.find("generation");
  if (format == j.end() || *format != kJournalFormat || generation == j.end() || !generation->is_string()) {
    return std::nullopt;
  }
  return generation->get<std::string>();
}

// Writes all of `data` (write() may take less than asked).
bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// Reads up to `n` bytes at `offset`; fewer at the end of the file.
bool read_at(int fd, std::uint64_t offset, size_t n, std::string& out) {
  out.resize(n);
  size_t got = 0;
  while (got < n) {
    const ssize_t r = ::pread(fd, out.data() + got, n - got, static_cast<off_t>(offset + got));
    if (r < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  out.resize(got);
  return true;
}

bool sync_data(int fd) {
  while (::fdatasync(fd) != 0) {
    if (errno != EINTR) return false;
  }
  return true;
}

// The header at the start of the file `fd`: its generation and length; a
// generation of nullopt when the first line is no header (or not complete).
struct Header {
  std::optional<std::string> generation;
  std::uint64_t size = 0;
};
bool read_header_of(int fd, Header& header) {
  std::string head;
  if (!read_at(fd, 0, kMaxHeader, head)) return false;
  const size_t newline = head.find('\n');
  if (newline == std::string::npos) return true;
  header.generation = parse_header(std::string_view(head).substr(0, newline));
  if (header.generation) header.size = newline + 1;
  return true;
}

}  // namespace

std::string journal_path_for(const std::string& db_path) { return db_path + "-acks"; }

std::string sqlite_ledger_journal_path(const std::string& db_path) { return journal_path_for(db_path); }

Result<std::optional<JournalFile>> JournalFile::open_locked(const std::string& path, bool sync) {
  for (int attempt = 0; attempt < kOpenAttempts; ++attempt) {
    const int fd = ::open(path.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return sys_error(path, "cannot open the ledger journal");
    JournalFile journal(path, fd, sync);
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      if (errno == EWOULDBLOCK) return std::optional<JournalFile>();
      return sys_error(path, "cannot lock the ledger journal");
    }
    // A writer that rotated between our open() and flock() renamed another
    // file over this one: the lock we hold is on a file nobody reads.
    struct stat held{}, named{};
    if (::fstat(fd, &held) != 0) return sys_error(path, "cannot stat the ledger journal");
    if (::stat(path.c_str(), &named) != 0 || held.st_ino != named.st_ino || held.st_dev != named.st_dev) continue;
    journal.size_ = static_cast<std::uint64_t>(held.st_size);
    if (Status s = journal.read_header(); !s.ok()) return s;
    return std::optional<JournalFile>(std::move(journal));
  }
  return Status::io_error(path + ": cannot lock the ledger journal: it keeps being replaced");
}

JournalFile::JournalFile(JournalFile&& other) noexcept
    : path_(std::move(other.path_)),
      fd_(other.fd_),
      sync_(other.sync_),
      generation_(std::move(other.generation_)),
      size_(other.size_),
      header_size_(other.header_size_),
      appends_(other.appends_),
      end_line_first_(other.end_line_first_) {
  other.fd_ = -1;
}

JournalFile::~JournalFile() {
  if (fd_ >= 0) ::close(fd_);  // releases the lock
}

Status JournalFile::read_header() {
  Header header;
  if (!read_header_of(fd_, header)) return sys_error(path_, "cannot read the ledger journal");
  generation_ = header.generation.value_or("");
  header_size_ = header.size;
  return Status();
}

Result<std::uint64_t> JournalFile::append(const std::vector<std::string_view>& lines) {
  std::string buffer;
  size_t bytes = end_line_first_ ? 1 : 0;
  for (std::string_view line : lines) bytes += line.size();
  buffer.reserve(bytes);
  if (end_line_first_) buffer += '\n';
  for (std::string_view line : lines) buffer += line;
  if (!write_all(fd_, buffer) || (sync_ && !sync_data(fd_))) {
    Status s = sys_error(path_, "cannot append to the ledger journal");
    end_line_first_ = true;
    struct stat st{};
    if (::fstat(fd_, &st) == 0) size_ = static_cast<std::uint64_t>(st.st_size);
    return s;
  }
  const std::uint64_t start = size_ + (end_line_first_ ? 1 : 0);
  end_line_first_ = false;
  size_ += bytes;
  ++appends_;
  return start;
}

Status JournalFile::rotate() {
  const std::string fresh = path_ + ".new";
  const int fd = ::open(fresh.c_str(), O_RDWR | O_APPEND | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return sys_error(fresh, "cannot create the next ledger journal");
  JournalFile next(path_, fd, sync_);
  const auto fail = [&](std::string_view doing) {
    Status s = sys_error(fresh, doing);
    ::unlink(fresh.c_str());
    return s;
  };
  // Locked before it is visible under the journal's name.
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) return fail("cannot lock the next ledger journal");
  const std::string generation = new_generation();
  const std::string header = header_line(generation);
  if (!write_all(fd, header)) return fail("cannot write the next ledger journal");
  if (sync_ && !sync_data(fd)) return fail("cannot sync the next ledger journal");
  if (::rename(fresh.c_str(), path_.c_str()) != 0) return fail("cannot rename the next ledger journal");
  if (sync_) {
    // The rename is durable once the directory is.
    std::string dir = std::filesystem::path(path_).parent_path().string();
    if (dir.empty()) dir = ".";
    const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd >= 0) {
      ::fsync(dir_fd);
      ::close(dir_fd);
    }
  }
  std::swap(fd_, next.fd_);  // `next` closes the old file
  end_line_first_ = false;
  generation_ = generation;
  size_ = header_size_ = header.size();
  return Status();
}

Result<JournalContents> read_journal(const std::string& path, std::string_view generation, std::uint64_t ingested) {
  JournalContents contents;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return contents;
    return sys_error(path, "cannot open the ledger journal");
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  contents.exists = true;
  struct stat st{};
  if (::fstat(fd, &st) != 0) return sys_error(path, "cannot stat the ledger journal");
  const auto size = static_cast<std::uint64_t>(st.st_size);
  Header header;
  if (!read_header_of(fd, header)) return sys_error(path, "cannot read the ledger journal");
  if (!header.generation) {
    contents.bad_header = size > 0;
    return contents;
  }
  contents.generation = *header.generation;
  contents.header_size = header.size;
  std::uint64_t from = header.size;
  if (contents.generation == generation) from = std::max(from, std::min(ingested, size));
  contents.complete_end = from;
  std::string rest;
  if (!read_at(fd, from, static_cast<size_t>(size - from), rest)) {
    return sys_error(path, "cannot read the ledger journal");
  }
  size_t at = 0;
  for (size_t newline; (newline = rest.find('\n', at)) != std::string::npos; at = newline + 1) {
    contents.lines.push_back({rest.substr(at, newline - at), from + newline + 1});
  }
  contents.complete_end = from + at;
  contents.torn_bytes = rest.size() - at;
  return contents;
}

Result<JournalRecord> parse_journal_line(std::string_view line) {
  if (line.starts_with(R"({"record":"decision")")) {
    auto decision = decision_record_from_json(line);
    if (!decision.ok()) return decision.status();
    return JournalRecord(std::move(decision).value());
  }
  auto cost = cost_record_from_json(line);
  if (!cost.ok()) return cost.status();
  return JournalRecord(std::move(cost).value());
}

}  // namespace switchboard
