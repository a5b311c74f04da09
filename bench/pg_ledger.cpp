// bench_pg_ledger: what the PostgreSQL ledger costs a request and a record,
// against the SQLite ledger (its journal) measured in the same run.
//
//  1. Flush: one step per flush, as the gateway does per request (a decision
//     record and a cost record, then flush()). Per step: flush latency (mean,
//     p50, p99), CPU on the request's thread and in the whole process.
//  2. Bulk: N cost records written, then one flush. Per record: wall time
//     and this process's CPU (the server's own CPU is not counted).
// Then the ratio PostgreSQL / SQLite of each figure.
//
// Measured 2026-12-05 on a shared 2-core VM (load 6-8: two compilers
// running), PostgreSQL 15 on 127.0.0.1 with fsync on, 3,000 steps / 20,000 records:
//   flush, per step            mean    p50     p99     thread CPU  process CPU (us)
//     process: sqlite journal  46.7    3.1     31.2    27.8        47.0
//              postgresql      2172    316     15999   61.9        79.5   (p50 x101, CPU x2.2)
//     power:   sqlite journal  584     232     11694   131         175
//              postgresql      7447    7522    24001   94.5        116    (p50 x32, CPU x0.7)
//   bulk, per record (one flush of 20,000): wall 97 vs 120 us (x1.24), CPU 22.1 vs 5.6 us (x0.25)
// The flush is round trips to another process (scheduled behind the compilers
// here): sent through COPY (5 round trips: begin, two COPYs, insert + commit)
// its p50 was 12-16 ms and its thread CPU 160-240 us; as one multi-row INSERT,
// one round trip. With power the server flushes its WAL on every commit.
//
// It needs a server: bench/pg_ledger.sh starts one of its own (initdb on a
// temporary directory) and passes --url; it appends to the ledger tables of
// that database, so give it a scratch one.
//
// --power runs both sinks with durability "power" (SQLite: fdatasync of the
// journal per flush; PostgreSQL: synchronous commit, the WAL flushed).
//
//   bench_pg_ledger --url postgresql://USER@HOST:PORT/DB [--steps N] [--records N] [--power]
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "bench_util.h"
#include "ledger_records.h"
#include "switchboard/ledger.h"

namespace {

using switchboard::bench::call_record;
using switchboard::bench::Clock;
using switchboard::bench::cpu_seconds;
using switchboard::bench::decision_record;
using namespace switchboard;

template <typename T>
T or_die(Result<T> r) {
  if (!r.ok()) {
    std::fprintf(stderr, "bench_pg_ledger: %s\n", r.status().message().c_str());
    std::exit(1);
  }
  return std::move(r).value();
}

void check(const Status& s) {
  if (!s.ok()) {
    std::fprintf(stderr, "bench_pg_ledger: %s\n", s.message().c_str());
    std::exit(1);
  }
}

struct Row {
  double mean_us = 0, p50_us = 0, p99_us = 0;  // flush latency per step
  double thread_cpu_us = 0, process_cpu_us = 0;  // per step
  double bulk_wall_us = 0, bulk_cpu_us = 0;      // per record
};

Row measure(const std::function<std::shared_ptr<LedgerSink>()>& open, int steps, int records) {
  Row row;
  {
    auto sink = open();
    for (int i = 0; i < 200; ++i) {  // warm up: connections, statements, pages
      check(sink->write(decision_record(i)));
      check(sink->write(call_record(i)));
      check(sink->flush());
    }
    std::vector<double> latencies;
    latencies.reserve(static_cast<size_t>(steps));
    const double thread0 = cpu_seconds(CLOCK_THREAD_CPUTIME_ID);
    const double process0 = cpu_seconds(CLOCK_PROCESS_CPUTIME_ID);
    for (int i = 0; i < steps; ++i) {
      check(sink->write(decision_record(i)));
      check(sink->write(call_record(i)));
      const auto t0 = Clock::now();
      check(sink->flush());
      latencies.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    }
    row.thread_cpu_us = (cpu_seconds(CLOCK_THREAD_CPUTIME_ID) - thread0) * 1e6 / steps;
    sink.reset();  // the SQLite ingester's share counted once it is done
    row.process_cpu_us = (cpu_seconds(CLOCK_PROCESS_CPUTIME_ID) - process0) * 1e6 / steps;
    std::sort(latencies.begin(), latencies.end());
    double sum = 0;
    for (double l : latencies) sum += l;
    const auto at = [&](double q) { return latencies[static_cast<size_t>(q * (latencies.size() - 1))]; };
    row.mean_us = sum / steps;
    row.p50_us = at(0.5);
    row.p99_us = at(0.99);
  }
  {
    auto sink = open();
    const auto t0 = Clock::now();
    const double cpu0 = cpu_seconds(CLOCK_PROCESS_CPUTIME_ID);
    for (int i = 0; i < records; ++i) check(sink->write(call_record(i)));
    check(sink->flush());
    sink.reset();  // SQLite: moved into the database; PostgreSQL: committed already
    row.bulk_wall_us = switchboard::bench::seconds_since(t0) * 1e6 / records;
    row.bulk_cpu_us = (cpu_seconds(CLOCK_PROCESS_CPUTIME_ID) - cpu0) * 1e6 / records;
  }
  return row;
}

std::string string_arg(int argc, char** argv, const std::string& flag, const std::string& fallback) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (argv[i] == flag) return argv[i + 1];
  }
  return fallback;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string url = string_arg(argc, argv, "--url", "");
  if (!is_postgres_url(url)) {
    std::fprintf(stderr, "usage: bench_pg_ledger --url postgresql://... [--steps N] [--records N]\n");
    return 2;
  }
  const int steps = std::atoi(string_arg(argc, argv, "--steps", "5000").c_str());
  const int records = std::atoi(string_arg(argc, argv, "--records", "20000").c_str());
  const LedgerDurability durability =
      switchboard::bench::has_flag(argc, argv, "--power") ? LedgerDurability::kPower : LedgerDurability::kProcess;
  const std::string dir =
      (std::filesystem::temp_directory_path() / ("bench-pg-ledger-" + std::to_string(std::random_device{}())))
          .string();
  std::filesystem::create_directories(dir);
  int opened = 0;
  const Row sqlite = measure(
      [&] {
        SqliteLedgerOptions o;
        o.path = dir + "/ledger-" + std::to_string(opened++) + ".db";
        o.durability = durability;
        return or_die(open_sqlite_ledger(o));
      },
      steps, records);
  const Row pg = measure(
      [&] {
        PostgresLedgerOptions o;
        o.url = url;
        o.spool_path = dir + "/spool.jsonl";
        o.durability = durability;
        return or_die(open_postgres_ledger(o));
      },
      steps, records);
  std::printf("durability %s\n", std::string(to_string(durability)).c_str());
  std::printf("flush: %d steps (a decision and a call record, then flush), one thread\n", steps);
  std::printf("%-22s %9s %9s %9s %14s %15s\n", "", "mean us", "p50 us", "p99 us", "thread cpu us",
              "process cpu us");
  for (const auto& [name, r] : {std::pair<const char*, const Row&>{"sqlite (journal)", sqlite}, {"postgresql", pg}}) {
    std::printf("%-22s %9.1f %9.1f %9.1f %14.1f %15.1f\n", name, r.mean_us, r.p50_us, r.p99_us, r.thread_cpu_us,
                r.process_cpu_us);
  }
  std::printf("%-22s %8.2fx %8.2fx %8.2fx %13.2fx %14.2fx\n", "ratio pg/sqlite", pg.mean_us / sqlite.mean_us,
              pg.p50_us / sqlite.p50_us, pg.p99_us / sqlite.p99_us, pg.thread_cpu_us / sqlite.thread_cpu_us,
              pg.process_cpu_us / sqlite.process_cpu_us);
  std::printf("\nbulk: %d cost records, one flush\n", records);
  std::printf("%-22s %14s %14s\n", "", "wall us/record", "cpu us/record");
  std::printf("%-22s %14.2f %14.2f\n", "sqlite (journal)", sqlite.bulk_wall_us, sqlite.bulk_cpu_us);
  std::printf("%-22s %14.2f %14.2f\n", "postgresql", pg.bulk_wall_us, pg.bulk_cpu_us);
  std::printf("%-22s %13.2fx %13.2fx\n", "ratio pg/sqlite", pg.bulk_wall_us / sqlite.bulk_wall_us,
              pg.bulk_cpu_us / sqlite.bulk_cpu_us);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return 0;
}
