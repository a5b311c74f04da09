// The cost ledger: every field through the SQLite and JSONL sinks, schema
// versions and reopening, failure isolation in the sink of sinks, the bounded
// queue, concurrent writers, read filters, and a writer killed mid-burst.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>
#include <sqlite3.h>

#include "async/waits.h"
#include "ledger/record_columns.h"
#include "ledger/record_json.h"
#include "ledger/sqlite.h"
#include "switchboard/fiber_loop.h"
#include "switchboard/ledger.h"
#include "test_util.h"

using namespace switchboard;
using switchboard::testing::TempDir;
using std::chrono::milliseconds;
using std::chrono::system_clock;

namespace {

// 2026-11-01T12:34:56.789Z
constexpr std::int64_t kBaseMs = 1'793'536'496'789;

system_clock::time_point at_ms(std::int64_t ms) { return system_clock::time_point(milliseconds(ms)); }

// A record whose every field differs from its default and from record n±1.
CostRecord sample_record(int n) {
  CostRecord r;
  r.time = at_ms(kBaseMs + n);
  r.trace_id = "trace-" + std::to_string(n);
  r.parent_id = "parent-" + std::to_string(n);
  r.call_id = "call-" + std::to_string(n);
  r.workload = "contract_review";
  r.role = "summarize";
  r.tier = "premium";
  r.model = "claude-sonnet-4-5";
  r.provider = "anthropic";
  r.rules_version = std::string(64, 'a');
  r.catalog_version = "2026-11-01";
  r.latency_ms = 1200 + n;
  r.usage.input_tokens = 8000 + n;
  r.usage.cached_input_tokens = 2000 + n;
  r.usage.cache_write_5m_tokens = 300 + n;
  r.usage.cache_write_1h_tokens = 40 + n;
  r.usage.output_tokens = 1500 + n;
  r.usage.reasoning_tokens = 700 + n;
  r.cost = 123'456'789 + n;  // $123.456789: large enough to catch a 32-bit column
  r.counted_input_tokens = 9500 + n;
  r.status = CallStatus::kFallback;
  r.error = "upstream 529: overloaded, \"quoted\" \\ and unicode \xC3\xA9";
  r.budget_scopes = {"workload:w", "key:team-a", "tag:team=search \"q\""};
  r.reserved = 100'000'000 + n;
  r.output_cap = 2048 + n;
  r.output_cap_lowered = n % 2 == 1;
  return r;
}

// An attempt cut short by a client that went away, its usage the engine's estimate.
CostRecord cancelled_record(int n) {
  CostRecord r = sample_record(n);
  r.status = CallStatus::kCancelled;
  r.usage_estimated = true;
  r.usage.cached_input_tokens = 0;
  r.usage.cache_write_5m_tokens = 0;
  r.usage.cache_write_1h_tokens = 0;
  r.usage.reasoning_tokens = 0;
  r.error = "cancelled: the client disconnected";
  return r;
}

void check_same(const CostRecord& got, const CostRecord& want) {
  CHECK(got.time == want.time);
  CHECK(got.trace_id == want.trace_id);
  CHECK(got.parent_id == want.parent_id);
  CHECK(got.call_id == want.call_id);
  CHECK(got.workload == want.workload);
  CHECK(got.role == want.role);
  CHECK(got.tier == want.tier);
  CHECK(got.model == want.model);
  CHECK(got.provider == want.provider);
  CHECK(got.rules_version == want.rules_version);
  CHECK(got.catalog_version == want.catalog_version);
  CHECK(got.latency_ms == want.latency_ms);
  CHECK(got.usage == want.usage);
  CHECK(got.usage_estimated == want.usage_estimated);
  CHECK(got.counted_input_tokens == want.counted_input_tokens);
  CHECK(got.cost == want.cost);
  CHECK(got.status == want.status);
  CHECK(got.error == want.error);
  CHECK(got.budget_scopes == want.budget_scopes);
  CHECK(got.reserved == want.reserved);
  CHECK(got.output_cap == want.output_cap);
  CHECK(got.output_cap_lowered == want.output_cap_lowered);
  CHECK(got.overrun() == want.overrun());
}

std::shared_ptr<LedgerSink> open_sqlite_ok(SqliteLedgerOptions options) {
  auto sink = open_sqlite_ledger(options);
  REQUIRE_MESSAGE(sink.ok(), sink.status().message());
  return *sink;
}

std::vector<CostRecord> read_ok(const std::string& path, const LedgerQuery& query = {}) {
  auto records = read_sqlite_ledger(path, query);
  REQUIRE_MESSAGE(records.ok(), records.status().message());
  return *records;
}

std::vector<std::string> lines_of(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// A sink that refuses every record.
class RefusingSink final : public LedgerSink {
 public:
  Status write(const CostRecord&) override { return Status::io_error("disk on fire"); }
  Status flush() override { return Status::io_error("still on fire"); }
  std::string name() const override { return "refusing"; }
};

}  // namespace

TEST_CASE("the budget_scopes column is the JSON array nlohmann writes, names escaped") {
  for (const std::vector<std::string>& scopes :
       {std::vector<std::string>{}, {"global"}, {"team:a", "key:\"quoted\"", "caf\u00e9 \n", std::string("\x01\xff", 2)}}) {
    CHECK(switchboard::ledger_columns::scopes_column(scopes) ==
          nlohmann::json(scopes).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }
}

TEST_CASE("call statuses round trip through their names") {
  for (CallStatus s : {CallStatus::kOk, CallStatus::kError, CallStatus::kFallback, CallStatus::kRefusedByBudget,
                       CallStatus::kCancelled}) {
    CHECK(parse_call_status(to_string(s)) == s);
  }
  CHECK(to_string(CallStatus::kRefusedByBudget) == "refused_by_budget");
  CHECK(to_string(CallStatus::kCancelled) == "cancelled");
  CHECK_FALSE(parse_call_status("OK").has_value());
}

TEST_CASE("every field survives a round trip through the SQLite ledger") {
  TempDir dir;
  const std::string path = (dir.path() / "ledger.db").string();
  const CostRecord first = sample_record(1);
  CostRecord second = sample_record(2);
  second.status = CallStatus::kOk;
  second.error = "";
  second.parent_id = "";
  const CostRecord third = cancelled_record(3);
  {
    auto sink = open_sqlite_ok({.path = path});
    CHECK(sink->name() == "sqlite:" + path);
    REQUIRE(sink->write(first).ok());
    REQUIRE(sink->write(second).ok());
    REQUIRE(sink->write(third).ok());
    const Status flushed = sink->flush();
    REQUIRE_MESSAGE(flushed.ok(), flushed.message());
  }
  const auto records = read_ok(path);
  REQUIRE(records.size() == 3);
  check_same(records[0], first);
  check_same(records[1], second);
  check_same(records[2], third);
  CHECK(records[0].id > 0);
  CHECK(records[1].id > records[0].id);
  CHECK(records[2].status == CallStatus::kCancelled);
  CHECK(records[2].usage_estimated);
  CHECK_FALSE(records[1].usage_estimated);
}

// ctest runs each case in a process of its own, where SQLite is not
// initialized yet; a run of every case in one process may have initialized
// it before these two, and then they check only that the ledger works.
// sqlite3_config refuses (SQLITE_MISUSE) once SQLite is initialized.
namespace {

bool sqlite_fresh() { return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 1) == SQLITE_OK; }  // 1: SQLite's own default

// Writes a record through a SQLite ledger at `path`; `while_open` runs with the sink open.
template <typename WhileOpen>
void write_one(const std::string& path, WhileOpen&& while_open) {
  auto sink = open_sqlite_ok({.path = path});
  REQUIRE(sink->write(sample_record(1)).ok());
  REQUIRE(sink->flush().ok());
  while_open();
}

}  // namespace

TEST_CASE("the first SQLite ledger connection turns SQLite's memory statistics off") {
  const bool fresh = sqlite_fresh();
  TempDir dir;
  const std::string path = (dir.path() / "ledger.db").string();
  write_one(path, [&] {
    if (fresh) CHECK(sqlite3_memory_used() == 0);  // not counted, though the ledger allocated plenty
  });
  CHECK(read_ok(path).size() == 1);
  if (!fresh) MESSAGE("SQLite was initialized before this case: its statistics are not checked");
  CHECK(sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 1) == SQLITE_MISUSE);  // configured and initialized
}

TEST_CASE("a host that initialized SQLite before its ledger keeps SQLite's memory statistics") {
  const bool fresh = sqlite_fresh();
  REQUIRE(sqlite3_initialize() == SQLITE_OK);
  TempDir dir;
  const std::string path = (dir.path() / "ledger.db").string();
  write_one(path, [&] {
    if (fresh) CHECK(sqlite3_memory_used() > 0);
  });
  CHECK(read_ok(path).size() == 1);
  if (!fresh) MESSAGE("SQLite was initialized before this case: its statistics are not checked");
}

TEST_CASE("every field survives a round trip through the JSONL ledger") {
  TempDir dir;
  const std::string path = (dir.path() / "ledger.jsonl").string();
  CostRecord record = sample_record(0);
  record.error = "two\nlines";  // escaped: still one line in the file
  {
    auto sink = open_jsonl_ledger(path);
    REQUIRE_MESSAGE(sink.ok(), sink.status().message());
    CHECK((*sink)->name() == "jsonl:" + path);
    REQUIRE((*sink)->write(record).ok());
    REQUIRE((*sink)->write(sample_record(1)).ok());
    REQUIRE((*sink)->write(cancelled_record(2)).ok());
    REQUIRE((*sink)->flush().ok());
  }
  const auto lines = lines_of(path);
  REQUIRE(lines.size() == 3);
  auto back = cost_record_from_json(lines[0]);
  REQUIRE_MESSAGE(back.ok(), back.status().message());
  check_same(*back, record);
  auto second = cost_record_from_json(lines[1]);
  REQUIRE(second.ok());
  check_same(*second, sample_record(1));
  auto third = cost_record_from_json(lines[2]);
  REQUIRE_MESSAGE(third.ok(), third.status().message());
  check_same(*third, cancelled_record(2));
  CHECK(third->status == CallStatus::kCancelled);
  CHECK(third->usage_estimated);

  // The wire form: RFC 3339 UTC time with milliseconds, integers for tokens and money.
  const auto j = nlohmann::json::parse(lines[0]);
  CHECK(j["time"] == "2026-11-01T12:34:56.789Z");
  for (const char* key : {"input_tokens", "cached_input_tokens", "cache_write_5m_tokens", "cache_write_1h_tokens",
                          "output_tokens", "reasoning_tokens", "cost_micro_usd", "latency_ms", "id"}) {
    INFO(key);
    CHECK(j[key].is_number_integer());
  }
  CHECK(j["cost_micro_usd"] == 123'456'789);
  CHECK(j["status"] == "fallback");
  CHECK(j["usage_estimated"] == false);
  const auto cut = nlohmann::json::parse(lines[2]);
  CHECK(cut["status"] == "cancelled");
  CHECK(cut["usage_estimated"] == true);
}

TEST_CASE("a JSONL cost line without usage_estimated reads as the provider's usage, and a non-boolean is refused") {
  nlohmann::json j = nlohmann::json::parse(cost_record_to_json(cancelled_record(0)));
  j.erase("usage_estimated");  // a line written before the field existed
  auto old = cost_record_from_json(j.dump());
  REQUIRE_MESSAGE(old.ok(), old.status().message());
  CHECK_FALSE(old->usage_estimated);
  CHECK(old->status == CallStatus::kCancelled);

  j["usage_estimated"] = 1;
  auto bad = cost_record_from_json(j.dump());
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().message().find("'usage_estimated'") != std::string::npos);

  j["usage_estimated"] = false;
  j["status"] = "canceled";
  auto misspelt = cost_record_from_json(j.dump());
  REQUIRE_FALSE(misspelt.ok());
  CHECK(misspelt.status().message().find("'status'") != std::string::npos);
  CHECK(misspelt.status().message().find("cancelled") != std::string::npos);
}

TEST_CASE("UTC times print and parse with milliseconds and malformed ones are rejected") {
  CHECK(format_utc_ms(at_ms(0)) == "1970-01-01T00:00:00.000Z");
  CHECK(format_utc_ms(at_ms(kBaseMs) + std::chrono::microseconds(999)) == "2026-11-01T12:34:56.789Z");
  CHECK(format_utc_ms(at_ms(-1)) == "1969-12-31T23:59:59.999Z");
  CHECK(format_utc_ms(at_ms(-5'364'662'400'000)) == "1800-01-01T00:00:00.000Z");
  // Every field's digits, across leap days and centuries: the text reads back as the same instant.
  for (std::int64_t ms = 0; ms < 7'300'000'000'000; ms += 86'399'999'937) {
    const std::string text = format_utc_ms(at_ms(ms));
    const auto back = parse_utc_ms(text);
    REQUIRE_MESSAGE(back.ok(), text);
    CHECK_MESSAGE(*back == at_ms(ms), text);
  }
  auto t = parse_utc_ms("2026-11-01T12:34:56.789Z");
  REQUIRE(t.ok());
  CHECK(*t == at_ms(kBaseMs));
  for (const char* bad : {"2026-11-01T12:34:56Z", "2026-02-30T00:00:00.000Z", "2026-11-01 12:34:56.789Z",
                          "2026-11-01T24:00:00.000Z", "2026-11-01T12:34:56.789+01:00"}) {
    INFO(bad);
    CHECK_FALSE(parse_utc_ms(bad).ok());
  }
  auto wrong = cost_record_from_json(R"({"time": "2026-11-01T12:34:56.789Z"})");
  REQUIRE_FALSE(wrong.ok());
  CHECK(wrong.status().message().find("'id'") != std::string::npos);
}

TEST_CASE("a new SQLite ledger gets the schema version and reopening it migrates nothing and keeps its records") {
  TempDir dir;
  const std::string path = (dir.path() / "ledger.db").string();
  {
    // No flush: a clean shutdown commits what is queued.
    auto sink = open_sqlite_ok({.path = path, .max_delay = std::chrono::milliseconds(10'000)});
    for (int i = 0; i < 3; ++i) REQUIRE(sink->write(sample_record(i)).ok());
  }
  auto version = sqlite_ledger_schema_version(path);
  REQUIRE_MESSAGE(version.ok(), version.status().message());
  CHECK(*version == sqlite_ledger_latest_schema());
  CHECK(*version >= 1);
  CHECK(read_ok(path).size() == 3);

  for (int reopen = 0; reopen < 2; ++reopen) {
    auto sink = open_sqlite_ok({.path = path});
    REQUIRE(sink->write(sample_record(10 + reopen)).ok());
    REQUIRE(sink->flush().ok());
  }
  CHECK(*sqlite_ledger_schema_version(path) == sqlite_ledger_latest_schema());
  const auto records = read_ok(path);
  REQUIRE(records.size() == 5);
  check_same(records[4], sample_record(11));
  const Status integrity = check_sqlite_ledger(path);
  CHECK_MESSAGE(integrity.ok(), integrity.message());
}

TEST_CASE("opening or reading a ledger that cannot exist names the file") {
  TempDir dir;
  const std::string missing_dir = (dir.path() / "no-such-dir" / "ledger.db").string();
  auto sqlite = open_sqlite_ledger({.path = missing_dir});
  REQUIRE_FALSE(sqlite.ok());
  CHECK(sqlite.status().message().find(missing_dir) != std::string::npos);

  auto jsonl = open_jsonl_ledger((dir.path() / "no-such-dir" / "ledger.jsonl").string());
  REQUIRE_FALSE(jsonl.ok());
  CHECK(jsonl.status().message().find("no-such-dir/ledger.jsonl") != std::string::npos);

  auto read = read_sqlite_ledger(missing_dir);
  REQUIRE_FALSE(read.ok());
  CHECK(read.status().code() == Status::Code::kNotFound);
  CHECK(read.status().message().find(missing_dir) != std::string::npos);

  // A file that is not a database.
  const std::string junk = dir.write("junk.db", std::string(4096, 'x'));
  auto opened = open_sqlite_ledger({.path = junk});
  REQUIRE_FALSE(opened.ok());
  CHECK(opened.status().message().find(junk) != std::string::npos);
  auto read_junk = read_sqlite_ledger(junk);
  REQUIRE_FALSE(read_junk.ok());
  CHECK(read_junk.status().message().find(junk) != std::string::npos);
}

TEST_CASE("a failing sink is reported to the error handler while the other sinks still get the record") {
  std::vector<std::pair<std::string, std::string>> reported;
  std::vector<CostRecord> delivered;
  // /dev/full opens but every write fails with ENOSPC: a JSONL ledger on a full disk.
  auto full_disk = open_jsonl_ledger("/dev/full");
  REQUIRE_MESSAGE(full_disk.ok(), full_disk.status().message());
  Ledger ledger({std::make_shared<RefusingSink>(), *full_disk,
                 callback_ledger([](const CostRecord&) { throw std::runtime_error("host bug"); }),
                 callback_ledger([&](const CostRecord& r) { delivered.push_back(r); })},
                [&](const std::string& sink, const std::string& message) { reported.emplace_back(sink, message); });

  ledger.record(sample_record(7));

  REQUIRE(delivered.size() == 1);
  check_same(delivered[0], sample_record(7));
  REQUIRE(reported.size() == 3);
  CHECK(reported[0].first == "refusing");
  CHECK(reported[0].second == "disk on fire");
  CHECK(reported[1].first == "jsonl:/dev/full");
  CHECK(reported[1].second.find("/dev/full: cannot append a record") != std::string::npos);
  CHECK(reported[2].first == "callback");
  CHECK(reported[2].second.find("host bug") != std::string::npos);

  // flush() is ok only if every sink flushed, and names the ones that did not.
  const Status flushed = ledger.flush();
  REQUIRE_FALSE(flushed.ok());
  CHECK(flushed.message().find("refusing: still on fire") != std::string::npos);
  CHECK(Ledger({callback_ledger([](const CostRecord&) {})}).flush().ok());
}

TEST_CASE("durability levels round trip through their names") {
  for (const LedgerDurability d : {LedgerDurability::kProcess, LedgerDurability::kPower}) {
    CHECK(parse_ledger_durability(to_string(d)) == d);
  }
  CHECK(to_string(LedgerDurability::kPower) == "power");
  CHECK_FALSE(parse_ledger_durability("fsync").has_value());
  CHECK(SqliteLedgerOptions{}.durability == LedgerDurability::kProcess);
}

TEST_CASE("records a flush acknowledged survive a SIGKILL in the middle of a write burst") {
  LedgerDurability durability = LedgerDurability::kProcess;
  SUBCASE("durability process: a commit is a write to the WAL") {}
  SUBCASE("durability power: a commit also fsyncs the WAL") { durability = LedgerDurability::kPower; }
  TempDir dir;
  const std::string path = (dir.path() / "ledger.db").string();
  constexpr int kBurst = 200;       // records between flushes
  constexpr int kMaxBursts = 2000;  // the child stops by itself after this many
  constexpr int kKillAfterAcks = 25;
  const auto kRunFor = milliseconds(500);

  int pipe_fds[2];
  REQUIRE(::pipe(pipe_fds) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // The child: write bursts, flush, report the last acknowledged sequence
    // number. Never returns into the test runner.
    ::close(pipe_fds[0]);
    auto sink = open_sqlite_ledger(
        {.path = path, .batch_size = 64, .max_delay = milliseconds(5), .durability = durability});
    if (!sink.ok()) ::_exit(2);
    std::int64_t seq = 0;
    for (int burst = 0; burst < kMaxBursts; ++burst) {
      for (int i = 0; i < kBurst; ++i) {
        CostRecord r = sample_record(static_cast<int>(++seq));
        r.latency_ms = seq;
        if (!(*sink)->write(r).ok()) ::_exit(3);
      }
      if (!(*sink)->flush().ok()) ::_exit(4);
      if (::write(pipe_fds[1], &seq, sizeof seq) != sizeof seq) ::_exit(5);
    }
    ::_exit(0);
  }
  ::close(pipe_fds[1]);

  std::int64_t acked = 0;
  int acks = 0;
  const auto read_ack = [&](int timeout_ms) {
    pollfd p{pipe_fds[0], POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) return false;
    std::int64_t seq = 0;
    if (::read(pipe_fds[0], &seq, sizeof seq) != sizeof seq) return false;
    acked = seq;
    ++acks;
    return true;
  };
  // Let it run for a while (bounded in acknowledgements and in time), then
  // kill it a little after an acknowledgement, in the middle of the next burst.
  const auto start = std::chrono::steady_clock::now();
  while (acks < kKillAfterAcks && std::chrono::steady_clock::now() - start < kRunFor) read_ack(10);
  if (acks == 0) read_ack(5000);
  std::random_device rd;
  std::this_thread::sleep_for(std::chrono::microseconds(rd() % 3000));
  ::kill(pid, SIGKILL);
  int wstatus = 0;
  REQUIRE(::waitpid(pid, &wstatus, 0) == pid);
  // Acknowledgements already in the pipe count: the child had them committed.
  while (read_ack(0)) {
  }
  ::close(pipe_fds[0]);
  CHECK_MESSAGE(WIFSIGNALED(wstatus), "the child exited on its own with status " << WEXITSTATUS(wstatus));
  REQUIRE_MESSAGE(acked > 0, "the child acknowledged nothing");

  const Status integrity = check_sqlite_ledger(path);
  REQUIRE_MESSAGE(integrity.ok(), integrity.message());
  const auto records = read_ok(path);
  std::set<std::int64_t> present;
  for (const CostRecord& r : records) present.insert(r.latency_ms);
  CHECK(present.size() == records.size());  // nothing written twice
  std::int64_t missing = 0;
  for (std::int64_t seq = 1; seq <= acked; ++seq) missing += present.count(seq) == 0 ? 1 : 0;
  CHECK(missing == 0);
  MESSAGE("SIGKILL test: " << acks << " flushes acknowledged " << acked << " records; " << records.size()
                           << " records in the database after the kill");

  // The killed writer's database opens again and takes records.
  auto sink = open_sqlite_ok({.path = path});
  REQUIRE(sink->write(sample_record(0)).ok());
  REQUIRE(sink->flush().ok());
  CHECK(read_ok(path).size() == records.size() + 1);
}

TEST_CASE("read filters by time range and workload and returns records oldest first with ids") {
  TempDir dir;
  const std::string path = (dir.path() / "ledger.db").string();
  {
    auto sink = open_sqlite_ok({.path = path});
    // Written out of time order: reading sorts by time.
    for (int minute : {3, 0, 2, 1, 4}) {
      CostRecord r = sample_record(minute);
      r.time = at_ms(kBaseMs + minute * 60'000);
      r.workload = minute % 2 == 0 ? "even" : "odd";
      r.latency_ms = minute;
      REQUIRE(sink->write(r).ok());
    }
    REQUIRE(sink->flush().ok());
  }
  const auto minute = [](int m) { return at_ms(kBaseMs + m * 60'000); };
  struct Case {
    const char* name;
    LedgerQuery query;
    std::vector<std::int64_t> minutes;
  };
  const Case cases[] = {
      {"everything", {}, {0, 1, 2, 3, 4}},
      {"since is inclusive", {.since = minute(2)}, {2, 3, 4}},
      {"until is exclusive", {.until = minute(2)}, {0, 1}},
      {"a range", {.since = minute(1), .until = minute(4)}, {1, 2, 3}},
      {"a workload", {.workload = "even"}, {0, 2, 4}},
      {"a workload in a range", {.since = minute(1), .until = minute(4), .workload = "odd"}, {1, 3}},
      {"an unknown workload", {.workload = "nobody"}, {}},
      {"an empty range", {.since = minute(3), .until = minute(3)}, {}},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    std::vector<std::int64_t> got;
    for (const CostRecord& r : read_ok(path, c.query)) {
      CHECK(r.id > 0);
      got.push_back(r.latency_ms);
    }
    CHECK(got == c.minutes);
  }
}

TEST_SUITE("concurrency") {

TEST_CASE("the kFail policy reports a full queue and the queue takes records again once drained") {
  TempDir dir;
  const std::string path = (dir.path() / "ledger.db").string();
  // A long delay and a large batch: nothing drains the queue until flush().
  auto sink = open_sqlite_ok({.path = path,
                              .queue_capacity = 2,
                              .batch_size = 512,
                              .max_delay = milliseconds(60'000),
                              .when_full = QueueFullPolicy::kFail});
  REQUIRE(sink->write(sample_record(1)).ok());
  REQUIRE(sink->write(sample_record(2)).ok());
  const Status full = sink->write(sample_record(3));
  REQUIRE_FALSE(full.ok());
  CHECK(full.message().find(path) != std::string::npos);
  CHECK(full.message().find("queue is full") != std::string::npos);

  std::vector<std::string> reported;
  Ledger ledger({sink}, [&](const std::string& name, const std::string& message) {
    reported.push_back(name + ": " + message);
  });
  ledger.record(sample_record(4));
  REQUIRE(reported.size() == 1);
  CHECK(reported[0].find("queue is full") != std::string::npos);

  REQUIRE(sink->flush().ok());
  REQUIRE(sink->write(sample_record(5)).ok());
  REQUIRE(sink->flush().ok());
  std::vector<std::int64_t> latencies;
  for (const CostRecord& r : read_ok(path)) latencies.push_back(r.latency_ms);
  CHECK(latencies == std::vector<std::int64_t>{1201, 1202, 1205});
}

TEST_CASE("a partial batch is committed after max_delay without a flush") {
  TempDir dir;
  const std::string path = (dir.path() / "ledger.db").string();
  auto sink = open_sqlite_ok({.path = path, .batch_size = 512, .max_delay = milliseconds(20)});
  REQUIRE(sink->write(sample_record(1)).ok());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  size_t seen = 0;
  while (seen == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(10));
    seen = read_ok(path).size();
  }
  CHECK(seen == 1);
}

TEST_CASE("four threads writing through a small blocking queue lose nothing") {
  TempDir dir;
  const std::string path = (dir.path() / "ledger.db").string();
  constexpr int kThreads = 4;
  constexpr int kPerThread = 500;
  auto sink = open_sqlite_ok(
      {.path = path, .queue_capacity = 64, .batch_size = 32, .max_delay = milliseconds(2)});
  std::atomic<int> failures{0};
  std::atomic<int> delivered{0};
  // The handler and the callback run on the writing threads, concurrently.
  Ledger ledger({sink, callback_ledger([&](const CostRecord&) { ++delivered; })},
                [&](const std::string&, const std::string&) { ++failures; });
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        CostRecord r = sample_record(i);
        r.workload = "w" + std::to_string(t);
        r.cost = t * kPerThread + i + 1;
        ledger.record(r);
        // Flushes interleave with other threads' writes.
        if (i % 100 == 99 && !ledger.flush().ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  REQUIRE(sink->flush().ok());
  CHECK(failures.load() == 0);
  CHECK(delivered.load() == kThreads * kPerThread);

  const auto records = read_ok(path);
  constexpr std::int64_t n = kThreads * kPerThread;
  CHECK(records.size() == static_cast<size_t>(n));
  MicroUsd sum = 0;
  std::set<MicroUsd> costs;
  for (const CostRecord& r : records) {
    sum += r.cost;
    costs.insert(r.cost);
  }
  CHECK(sum == n * (n + 1) / 2);
  CHECK(costs.size() == static_cast<size_t>(n));
  CHECK(read_ok(path, {.workload = "w2"}).size() == static_cast<size_t>(kPerThread));
}

TEST_CASE("a flush commits what it waits for at once, never after max_delay") {
  TempDir dir;
  const std::string path = (dir.path() / "ledger.db").string();
  // Nothing but a flush (or a full batch) commits within the minute.
  auto sink = open_sqlite_ok({.path = path, .batch_size = 512, .max_delay = milliseconds(60'000)});
  for (int round = 1; round <= 3; ++round) {
    REQUIRE(sink->write(sample_record(round)).ok());
    const auto start = std::chrono::steady_clock::now();
    const Status flushed = sink->flush();
    REQUIRE_MESSAGE(flushed.ok(), flushed.message());
    // Generous: a commit on a loaded machine, far below the minute of max_delay.
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(20));
    // Another connection sees it as soon as flush() returns (reading
    // replays the journal into the database).
    CHECK(read_ok(path).size() == static_cast<size_t>(round));
  }
  // One acknowledgement per flush: a journal append (sqlite_ledger_commits).
  CHECK(sqlite_ledger_commits(*sink) == 3);
  // Nothing pending: a flush commits nothing.
  REQUIRE(sink->flush().ok());
  CHECK(sqlite_ledger_commits(*sink) == 3);
}

TEST_CASE("fibers on one loop that flush in the same turn share one journal append") {
  TempDir dir;
  const std::string path = (dir.path() / "ledger.db").string();
  constexpr int kFibers = 8;
  auto sink = open_sqlite_ok({.path = path, .batch_size = 512, .max_delay = milliseconds(60'000)});
  REQUIRE(sqlite_ledger_journaled(*sink));
  boost::asio::io_context io;
  FiberLoop loop(io);
  int flushed = 0;
  int failures = 0;
  // Eight requests whose answers arrive in the same turn of the loop: each
  // waits on it (as for its upstream call), then writes and flushes.
  for (int i = 1; i <= kFibers; ++i) {
    loop.spawn([&, i] {
      async::yield_to_ready();
      if (!sink->write(sample_record(i)).ok() || !sink->flush().ok()) ++failures;
      ++flushed;
      // Acknowledged means readable by another connection at once.
      if (read_ok(path).size() < static_cast<size_t>(i)) ++failures;
    });
  }
  CHECK(flushed == 0);  // all wait for the loop
  io.run();
  CHECK(flushed == kFibers);
  CHECK(failures == 0);
  CHECK(read_ok(path).size() == static_cast<size_t>(kFibers));
  CHECK(sqlite_ledger_commits(*sink) == 1);  // one append for the eight flushes
  // A fiber alone on its loop appends at once: nobody could share it.
  loop.spawn([&] {
    if (!sink->write(sample_record(kFibers + 1)).ok() || !sink->flush().ok()) ++failures;
    ++flushed;
  });
  CHECK(flushed == kFibers + 1);
  CHECK(sqlite_ledger_commits(*sink) == 2);
  // Off a fiber a flush appends at once, alone.
  REQUIRE(sink->write(sample_record(kFibers + 2)).ok());
  REQUIRE(sink->flush().ok());
  CHECK(sqlite_ledger_commits(*sink) == 3);
  CHECK(failures == 0);
}

TEST_CASE("concurrent flushes each return with their own records committed, sharing transactions") {
  TempDir dir;
  const std::string path = (dir.path() / "ledger.db").string();
  constexpr int kThreads = 4;
  constexpr int kSteps = 150;  // per thread: two records (a decision and a call), then a flush
  auto sink = open_sqlite_ok({.path = path, .batch_size = 512, .max_delay = milliseconds(60'000)});
  std::atomic<int> failures{0};
  std::atomic<int> unseen{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string workload = "w" + std::to_string(t);
      for (int i = 0; i < kSteps; ++i) {
        DecisionRecord d;
        d.trace_id = workload + "-" + std::to_string(i);
        d.decision.workload = workload;
        d.step.role = "format";
        CostRecord c = sample_record(i);
        c.workload = workload;
        c.trace_id = d.trace_id;
        if (!sink->write(d).ok() || !sink->write(c).ok() || !sink->flush().ok()) ++failures;
        // What a flush returned for is readable by another connection at once.
        if (i % 30 == 29) {
          auto mine = read_sqlite_ledger(path, {.workload = workload});
          if (!mine.ok() || mine->size() != static_cast<size_t>(i + 1)) ++unseen;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(failures.load() == 0);
  CHECK(unseen.load() == 0);
  CHECK(read_ok(path).size() == static_cast<size_t>(kThreads * kSteps));
  auto decisions = read_sqlite_decisions(path);
  REQUIRE_MESSAGE(decisions.ok(), decisions.status().message());
  CHECK(decisions->size() == static_cast<size_t>(kThreads * kSteps));
  // No max_delay append can have happened: every journal append (what
  // sqlite_ledger_commits counts) was a flush's, and a flush makes at most
  // one. Fewer when flushes overlapped and shared one.
  const std::uint64_t commits = sqlite_ledger_commits(*sink);
  CHECK(commits >= 1);
  CHECK(commits <= static_cast<std::uint64_t>(kThreads * kSteps));
  MESSAGE("group commit: " << kThreads * kSteps << " flushes, " << commits << " transactions");
}

}  // TEST_SUITE("concurrency")
