// The SQLite ledger's acknowledgement journal: what a flush acknowledged
// survives a crash before it reached the database and is replayed exactly
// once (by the next writer or by a reader), a torn last line is ignored, the
// journal starts afresh past its limit and at a clean close, concurrent
// flushers share one write, and a second writer works without the journal.
// A crash is a child process that ends with _exit right after flush()
// returned: no destructor runs, nothing is moved into the database.
#include <doctest/doctest.h>

#include <pthread.h>
#include <sched.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "ledger/journal.h"
#include "ledger/record_json.h"
#include "ledger/sqlite.h"
#include "switchboard/ledger.h"
#include "test_util.h"

using namespace switchboard;
using switchboard::testing::TempDir;
using std::chrono::milliseconds;

namespace {

constexpr std::int64_t kBaseMs = 1'793'536'496'789;  // 2026-11-01T12:34:56.789Z

std::chrono::system_clock::time_point at_ms(std::int64_t ms) {
  return std::chrono::system_clock::time_point(milliseconds(ms));
}

// A cost record told apart by its latency (`n`) and workload.
CostRecord cost(int n, const std::string& workload = "w") {
  CostRecord r;
  r.time = at_ms(kBaseMs + n);
  r.trace_id = "trace-" + std::to_string(n);
  r.call_id = "call-" + std::to_string(n);
  r.workload = workload;
  r.role = "plan";
  r.tier = "cheap";
  r.model = "m";
  r.provider = "sim";
  r.rules_version = "v";
  r.catalog_version = "c";
  r.latency_ms = n;
  r.usage.input_tokens = 100 + n;
  r.usage.output_tokens = 10;
  r.cost = 1000 + n;
  r.budget_scopes = {"workload:" + workload};
  return r;
}

// A decision record with every field set, `n` in its trace id.
DecisionRecord decision(int n) {
  DecisionRecord r;
  r.time = at_ms(kBaseMs + n);
  r.trace_id = "trace-" + std::to_string(n);
  r.kind = DecisionKind::kShadow;
  r.step.role = "plan";
  r.step.input_tokens = 3327 + n;
  r.step.prompt = "a prompt, \"quoted\"\nover two lines";
  r.step.needs_chain_of_thought = true;
  r.step.tool_depth = 2;
  r.step.meta = {{"z_first", std::string("kept in order")}, {"a_second", std::int64_t{7}}, {"score", 0.25},
                 {"web", true}};
  Decision& d = r.decision;
  d.workload = "code_fix";
  d.rules_version = std::string(64, 'b');
  d.tier = "premium";
  d.model = "claude-opus-4-1";
  d.reasoning = Reasoning::kHigh;
  d.reasoning_pinned = true;
  d.max_output_tokens = 4000 + n;
  d.fanout = 3;
  d.aggregate = "balanced";
  d.reason = "needs chain of thought";
  d.error = "rules/code_fix.lua:12: boom";
  d.requested = true;
  d.context_spent = 1'500'000 + n;
  d.context_budget_left = 98'500'000 - n;
  d.estimated_input_tokens = 3327 + n;
  d.estimated_output_tokens = 518;
  d.estimated_cost = 77'000 + n;
  r.admission = AdmissionOutcome::kNotAdmitted;
  Decision active = d;
  active.tier = "balanced";
  active.reasoning = Reasoning::kDefault;
  active.reasoning_pinned = false;
  active.max_output_tokens.reset();
  active.error.reset();
  active.context_budget_left.reset();
  r.active = active;
  r.agrees = true;
  return r;
}

SqliteLedgerOptions quiet(const std::string& path, LedgerDurability durability = LedgerDurability::kProcess) {
  // Nothing moves into the database unless a batch fills, a close, or a reader.
  return {.path = path, .batch_size = 100'000, .max_delay = milliseconds(60'000), .durability = durability};
}

std::shared_ptr<LedgerSink> open_ok(const SqliteLedgerOptions& options) {
  auto sink = open_sqlite_ledger(options);
  REQUIRE_MESSAGE(sink.ok(), sink.status().message());
  return *sink;
}

// Runs `body` in a child process, which ends with _exit (from `body`): a
// crash, as far as the ledger is concerned. Returns its exit status.
int crash_after(const std::function<void()>& body) {
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    body();
    ::_exit(100);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  return WEXITSTATUS(status);
}

// In a child: opens the ledger, writes `costs` (and a decision for each),
// flushes and _exits with the sink still open (no destructor runs); status 0
// when the flush acknowledged them without moving anything into the database.
void write_flush_crash(const SqliteLedgerOptions& options, const std::vector<int>& costs) {
  auto sink = open_sqlite_ledger(options);
  if (!sink.ok()) ::_exit(2);
  if (!sqlite_ledger_journaled(**sink)) ::_exit(3);
  for (int n : costs) {
    if (!(*sink)->write(cost(n)).ok() || !(*sink)->write(decision(n)).ok()) ::_exit(4);
  }
  if (!(*sink)->flush().ok()) ::_exit(5);
  ::_exit(sqlite_ledger_transactions(**sink) == 0 ? 0 : 6);
}

// Rows in `table`, as SQLite holds them (no journal replay).
std::int64_t rows_in(const std::string& path, const char* table) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  const std::string sql = std::string("SELECT COUNT(*) FROM ") + table;
  REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(st) == SQLITE_ROW);
  const std::int64_t n = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return n;
}

// The latency of each cost record the ledger holds, counted (readers replay).
std::map<std::int64_t, int> latencies(const std::string& path) {
  auto records = read_sqlite_ledger(path);
  REQUIRE_MESSAGE(records.ok(), records.status().message());
  std::map<std::int64_t, int> seen;
  for (const CostRecord& r : *records) ++seen[r.latency_ms];
  return seen;
}

std::map<std::int64_t, int> each_once(std::initializer_list<int> ns) {
  std::map<std::int64_t, int> m;
  for (int n : ns) m[n] = 1;
  return m;
}

std::vector<std::string> lines_of(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// The id of this process's thread named `name`, waiting up to a second for
// it to name itself; 0 when there is none.
pid_t thread_named(const std::string& name) {
  for (int tries = 0; tries < 200; ++tries) {
    for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
      std::ifstream comm(task.path() / "comm");
      std::string line;
      if (std::getline(comm, line) && line == name) return static_cast<pid_t>(std::stol(task.path().filename()));
    }
    std::this_thread::sleep_for(milliseconds(5));
  }
  return 0;
}

// Waits up to `limit` for `path` to hold `n` call rows; true when it does.
bool wait_for_rows(const std::string& path, std::int64_t n, std::chrono::seconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (rows_in(path, "calls") < n) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(milliseconds(5));
  }
  return true;
}

}  // namespace

TEST_SUITE("ledger journal") {

TEST_CASE("a decision record survives a round trip through its JSON line, every field") {
  const DecisionRecord want = decision(4);
  const std::string line = decision_record_to_json(want);
  auto got = decision_record_from_json(line);
  REQUIRE_MESSAGE(got.ok(), got.status().message());
  CHECK(decision_record_to_json(*got) == line);
  CHECK(got->time == want.time);
  CHECK(got->kind == DecisionKind::kShadow);
  CHECK(got->admission == AdmissionOutcome::kNotAdmitted);
  CHECK(step_to_json(got->step) == step_to_json(want.step));  // meta in its order
  CHECK(got->decision.reasoning == Reasoning::kHigh);
  CHECK(got->decision.reasoning_pinned);
  CHECK(got->decision.requested);
  CHECK(got->decision.max_output_tokens == 4004);
  CHECK(got->decision.error == want.decision.error);
  CHECK(got->decision.context_budget_left == want.decision.context_budget_left);
  CHECK(got->decision.estimated_cost == want.decision.estimated_cost);
  REQUIRE(got->active.has_value());
  CHECK(got->active->tier == "balanced");
  CHECK(got->active->reasoning == Reasoning::kDefault);
  CHECK_FALSE(got->active->max_output_tokens.has_value());
  CHECK_FALSE(got->active->error.has_value());
  CHECK(got->agrees);

  DecisionRecord plain = decision(5);
  plain.active.reset();
  plain.agrees = false;
  plain.decision.reasoning_pinned = false;
  auto back = decision_record_from_json(decision_record_to_json(plain));
  REQUIRE(back.ok());
  CHECK_FALSE(back->active.has_value());
  CHECK_FALSE(back->decision.reasoning_pinned);
  CHECK(decision_record_to_json(plain).find("reasoning_pinned") == std::string::npos);

  auto wrong = decision_record_from_json(R"({"record":"decision","id":0,"time":"2026-11-01T12:34:56.789Z",)"
                                         R"("trace_id":"t","kind":"rules","admission":"admitted","step":{"role":"p"},)"
                                         R"("decision":{"workload":"w"}})");
  REQUIRE_FALSE(wrong.ok());
  CHECK(wrong.status().message().find("'decision.rules_version'") != std::string::npos);
}

TEST_CASE("what a flush acknowledged before a crash is replayed into the database exactly once") {
  LedgerDurability durability = LedgerDurability::kProcess;
  SUBCASE("durability process") {}
  SUBCASE("durability power") { durability = LedgerDurability::kPower; }
  TempDir dir;
  const std::string path = (dir.path() / "ledger.db").string();
  REQUIRE(crash_after([&] { write_flush_crash(quiet(path, durability), {1, 2, 3}); }) == 0);
  // Acknowledged, in the journal only.
  CHECK(rows_in(path, "calls") == 0);
  CHECK(lines_of(sqlite_ledger_journal_path(path)).size() == 1 + 6);

  for (int reopen = 0; reopen < 2; ++reopen) {
    auto sink = open_ok(quiet(path, durability));
    CHECK(rows_in(path, "calls") == 3);
    CHECK(rows_in(path, "decisions") == 3);
  }
  CHECK(latencies(path) == each_once({1, 2, 3}));
  auto decisions = read_sqlite_decisions(path);
  REQUIRE(decisions.ok());
  REQUIRE(decisions->size() == 3);
  CHECK((*decisions)[0].decision.model == "claude-opus-4-1");
  CHECK((*decisions)[0].active.has_value());
  // A clean close leaves the journal with its header alone.
  CHECK(lines_of(sqlite_ledger_journal_path(path)).size() == 1);
  CHECK(check_sqlite_ledger(path).ok());
}

TEST_CASE("replay is idempotent across two crashes, readers replaying in between, and a live writer") {
  TempDir dir;
  const std::string path = (dir.path() / "ledger.db").string();
  REQUIRE(crash_after([&] { write_flush_crash(quiet(path), {1, 2}); }) == 0);
  // A reader replays what the crashed writer acknowledged ...
  CHECK(latencies(path) == each_once({1, 2}));
  CHECK(latencies(path) == each_once({1, 2}));
  // ... and the next writer, opening on the same journal, replays nothing twice.
  REQUIRE(crash_after([&] { write_flush_crash(quiet(path), {3}); }) == 0);
  CHECK(rows_in(path, "calls") == 2);
  CHECK(latencies(path) == each_once({1, 2, 3}));

  // A reader replays a live writer's acknowledged records; the writer then
  // moves its own batch in and leaves those out.
  {
    auto sink = open_ok(quiet(path));
    REQUIRE(sink->write(cost(4)).ok());
    REQUIRE(sink->flush().ok());
    CHECK(latencies(path) == each_once({1, 2, 3, 4}));
    REQUIRE(sink->write(cost(5)).ok());
    REQUIRE(sink->flush().ok());
  }
  CHECK(latencies(path) == each_once({1, 2, 3, 4, 5}));
  CHECK(rows_in(path, "decisions") == 3);
}

TEST_CASE("a torn last line in the journal is ignored and the acknowledged records kept") {
  TempDir dir;
  const std::string path = (dir.path() / "ledger.db").string();
  const std::string journal = sqlite_ledger_journal_path(path);
  REQUIRE(crash_after([&] { write_flush_crash(quiet(path), {1, 2}); }) == 0);
  // A power loss in the middle of the next append: part of a line, no newline.
  const std::string torn = cost_record_to_json(cost(3)).substr(0, 40);
  std::ofstream(journal, std::ios::app | std::ios::binary) << torn;

  CHECK(latencies(path) == each_once({1, 2}));  // a reader leaves it out
  {
    auto sink = open_ok(quiet(path));  // warns on stderr, starts afresh without it
    REQUIRE(sink->write(cost(4)).ok());
    REQUIRE(sink->flush().ok());
    const auto lines = lines_of(journal);
    REQUIRE(lines.size() == 2);  // the header and record 4: the torn bytes are gone
    CHECK(lines[1] == cost_record_to_json(cost(4)));
  }
  CHECK(latencies(path) == each_once({1, 2, 4}));
}

TEST_CASE("a journal past its limit starts a new generation once everything is in the database") {
  TempDir dir;
  const std::string path = (dir.path() / "ledger.db").string();
  const std::string journal = sqlite_ledger_journal_path(path);
  auto sink = open_ok({.path = path, .batch_size = 8, .max_delay = milliseconds(1), .journal_limit_bytes = 4096});
  const std::string first_header = lines_of(journal).at(0);
  constexpr int kRecords = 300;
  for (int n = 1; n <= kRecords; ++n) {
    REQUIRE(sink->write(cost(n)).ok());
    if (n % 10 == 0) REQUIRE(sink->flush().ok());
  }
  REQUIRE(sink->flush().ok());
  // Everything moves in within max_delay; the journal rotates after the
  // last ingest commits, so the rows can all be in before the new header.
  const auto rotated = [&] {
    const auto head = lines_of(journal);
    return !head.empty() && head[0] != first_header;
  };
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while ((rows_in(path, "calls") < kRecords || !rotated()) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  CHECK(rows_in(path, "calls") == kRecords);
  const auto lines = lines_of(journal);
  REQUIRE_FALSE(lines.empty());
  CHECK(lines[0] != first_header);  // a new generation
  CHECK(std::filesystem::file_size(journal) < 4096 + 8 * 400);  // never far past the limit
  std::map<std::int64_t, int> want;
  for (int n = 1; n <= kRecords; ++n) want[n] = 1;
  CHECK(latencies(path) == want);
  sink.reset();
  CHECK(lines_of(journal).size() == 1);
  CHECK(latencies(path) == want);
}

TEST_CASE("concurrent flushers share one journal write") {
  TempDir dir;
  const std::string path = (dir.path() / "ledger.db").string();
  constexpr int kThreads = 6;
  constexpr int kRounds = 20;
  auto sink = open_ok(quiet(path));
  REQUIRE(sqlite_ledger_journaled(*sink));
  // Each round every thread writes, then all flush together: the first flush
  // appends every record of the round in one write, the others find theirs
  // acknowledged already.
  std::atomic<int> failures{0};
  for (int round = 0; round < kRounds; ++round) {
    std::atomic<int> written{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        if (!sink->write(cost(round * kThreads + t)).ok()) ++failures;
        ++written;
        while (written.load() < kThreads) std::this_thread::yield();
        if (!sink->flush().ok()) ++failures;
      });
    }
    for (auto& th : threads) th.join();
  }
  CHECK(failures.load() == 0);
  CHECK(sqlite_ledger_commits(*sink) == kRounds);
  CHECK(lines_of(sqlite_ledger_journal_path(path)).size() == 1 + kThreads * kRounds);
  CHECK(sqlite_ledger_transactions(*sink) == 0);  // nothing moved in: a quiet sink

  // Flushes that race their writes share writes too, or at worst take one each.
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        if (!sink->write(cost(10'000 + t * 100 + i)).ok() || !sink->flush().ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(failures.load() == 0);
  CHECK(sqlite_ledger_commits(*sink) <= static_cast<std::uint64_t>(kRounds + kThreads * 50));
  CHECK(latencies(path).size() == static_cast<size_t>(kThreads * kRounds + kThreads * 50));
}

TEST_CASE("a second writer on a ledger whose journal is held commits each flush to the database") {
  TempDir dir;
  const std::string path = (dir.path() / "ledger.db").string();
  auto first = open_ok(quiet(path));
  auto second = open_ok(quiet(path));
  CHECK(sqlite_ledger_journaled(*first));
  CHECK_FALSE(sqlite_ledger_journaled(*second));
  REQUIRE(first->write(cost(1)).ok());
  REQUIRE(second->write(cost(2)).ok());
  REQUIRE(first->flush().ok());
  REQUIRE(second->flush().ok());
  CHECK(sqlite_ledger_transactions(*second) == 1);
  CHECK(rows_in(path, "calls") == 1);  // the second's; the first's is in the journal
  CHECK(latencies(path) == each_once({1, 2}));
  second.reset();
  first.reset();
  // The journal is free again: the next writer takes it.
  auto third = open_ok(quiet(path));
  CHECK(sqlite_ledger_journaled(*third));
  CHECK(latencies(path) == each_once({1, 2}));
}

TEST_CASE("journaled records move into the database on a thread at idle priority") {
  TempDir dir;
  const std::string path = (dir.path() / "ledger.db").string();
  // Never late: every batch is the idle thread's, however busy the machine.
  auto sink = open_ok({.path = path, .max_delay = milliseconds(1), .idle_late_after = milliseconds(600'000)});
  REQUIRE(sqlite_ledger_journaled(*sink));
  const pid_t idle = thread_named("sb-ledger-idle");
  const pid_t writer = thread_named("sb-ledger");
  REQUIRE(idle != 0);
  REQUIRE(writer != 0);
  CHECK(sched_getscheduler(idle) == SCHED_IDLE);
  CHECK(sched_getscheduler(writer) == SCHED_OTHER);
  // Requests' pace: a flush every 8 records, a pause every 64.
  constexpr int kRecords = 2000;
  for (int n = 1; n <= kRecords; ++n) {
    REQUIRE(sink->write(cost(n)).ok());
    if (n % 8 == 0) REQUIRE(sink->flush().ok());
    if (n % 64 == 0) std::this_thread::sleep_for(milliseconds(1));
  }
  REQUIRE(sink->flush().ok());
  CHECK(wait_for_rows(path, kRecords, std::chrono::seconds(30)));
  CHECK(sqlite_ledger_background_transactions(*sink) == 0);
  sink.reset();
  CHECK(rows_in(path, "calls") == kRecords);
}

TEST_CASE("a starved idle ingester leaves late batches to the background writer") {
  TempDir dir;
  const std::string path = (dir.path() / "ledger.db").string();
  auto sink = open_ok({.path = path, .batch_size = 64, .max_delay = milliseconds(1)});
  const pid_t idle = thread_named("sb-ledger-idle");
  const pid_t writer = thread_named("sb-ledger");
  REQUIRE(idle != 0);
  REQUIRE(writer != 0);
  // Both threads and a busy one on one core: the idle ingester gets next to
  // nothing of it, the writer half.
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  REQUIRE(sched_getaffinity(0, sizeof allowed, &allowed) == 0);
  int core = 0;
  while (!CPU_ISSET(core, &allowed)) ++core;
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(core, &one);
  REQUIRE(sched_setaffinity(idle, sizeof one, &one) == 0);
  REQUIRE(sched_setaffinity(writer, sizeof one, &one) == 0);
  std::atomic<bool> spin{true};
  std::thread busy([&] {
    while (spin.load(std::memory_order_relaxed)) {
    }
  });
  CHECK(pthread_setaffinity_np(busy.native_handle(), sizeof one, &one) == 0);
  std::this_thread::sleep_for(milliseconds(20));
  constexpr int kRecords = 6000;
  for (int n = 1; n <= kRecords; ++n) {
    REQUIRE(sink->write(cost(n)).ok());
    if (n % 50 == 0) REQUIRE(sink->flush().ok());
  }
  REQUIRE(sink->flush().ok());
  // Starved, the idle ingester alone would take tens of seconds.
  const auto start = std::chrono::steady_clock::now();
  const bool in = wait_for_rows(path, kRecords, std::chrono::seconds(8));
  const auto waited = std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - start).count();
  spin = false;
  busy.join();
  CAPTURE(waited);
  CHECK(in);
  CHECK(sqlite_ledger_background_transactions(*sink) > 0);
  sink.reset();
  CHECK(latencies(path).size() == static_cast<size_t>(kRecords));
}

TEST_CASE("journal lines read back past an offset of their generation, a torn tail left out") {
  TempDir dir;
  const std::string path = dir.write("j-acks", "");
  auto opened = JournalFile::open_locked(path, false);
  REQUIRE(opened.ok());
  REQUIRE(opened->has_value());
  JournalFile& journal = **opened;
  CHECK(journal.generation().empty());  // a new, empty file
  REQUIRE(journal.rotate().ok());
  const std::string generation = journal.generation();
  CHECK(generation.size() == 32);
  auto start = journal.append({"{\"a\":1}\n", "{\"b\":2}\n"});
  REQUIRE(start.ok());
  CHECK(*start == journal.header_size());
  // Another writer cannot take it meanwhile.
  auto other = JournalFile::open_locked(path, false);
  REQUIRE(other.ok());
  CHECK_FALSE(other->has_value());

  std::ofstream(path, std::ios::app) << "{\"c\":";
  auto all = read_journal(path, "another generation", 1'000'000);  // not ours: every line
  REQUIRE(all.ok());
  CHECK(all->generation == generation);
  REQUIRE(all->lines.size() == 2);
  CHECK(all->lines[1].text == "{\"b\":2}");
  CHECK(all->torn_bytes == 5);
  auto rest = read_journal(path, generation, all->lines[0].end);
  REQUIRE(rest.ok());
  REQUIRE(rest->lines.size() == 1);
  CHECK(rest->lines[0].text == "{\"b\":2}");
  CHECK(rest->complete_end == all->complete_end);
  auto missing = read_journal((dir.path() / "none").string(), "", 0);
  REQUIRE(missing.ok());
  CHECK_FALSE(missing->exists);
}

}  // TEST_SUITE("ledger journal")
