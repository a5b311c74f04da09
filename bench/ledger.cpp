// bench_ledger: what the SQLite ledger costs a request, and what a batch of
// records costs the database.
//
//  1. Ingest: records moved into the database in transactions of 1, 8, 64,
//     512 and 4096 records (a sink without its journal, flushed once: the
//     flush commits the queue batch by batch on its thread). Per record: wall
//     time and CPU. This is what chose batch_size.
//  2. Flush: one step per flush, as the gateway does per request (a decision
//     record and a cost record, then flush()), before (a sink without its
//     journal: every flush a SQLite transaction) and after (the journal: every
//     flush one append). Per step: flush latency (mean, p50, p99), CPU on the
//     request's thread, and the process's CPU in all (the background ingester
//     included), with the ratio after/before.
//
// Measured 2026-12-05 on a shared 2-core VM (ext4, load ~8), durability process:
//   ingest, CPU us/record by batch: 1: 56.5, 8: 16.5, 64: 8.9, 512: 7.0, 4096: 7.0
//     (wall us/record: 174, 48, 32, 29, 44): flat past 512, the default batch_size.
//   flush, per step:       mean    p50     p99      thread CPU  process CPU
//     before (commit)      305     72      9486     94.9        107.1
//     after (journal)      21.5    3.0     24.4     24.3        40.6
//   with --power (an fsync per flush): p50 294 -> 190 us, thread CPU 159 -> 107 us.
//
// A sink opened while another holds the ledger's journal runs without one
// (ledger.h): that is how "before" is measured, on the same build.
//
//   bench_ledger [--steps N] [--records N] [--power] [--dir DIR]
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
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

std::shared_ptr<LedgerSink> open_or_die(const SqliteLedgerOptions& options) {
  auto sink = open_sqlite_ledger(options);
  if (!sink.ok()) {
    std::fprintf(stderr, "bench_ledger: %s\n", sink.status().message().c_str());
    std::exit(1);
  }
  return *sink;
}

void check(const Status& s) {
  if (!s.ok()) {
    std::fprintf(stderr, "bench_ledger: %s\n", s.message().c_str());
    std::exit(1);
  }
}

struct IngestRow {
  size_t batch;
  double us_per_record;
  double cpu_us_per_record;
};

// `records` records through a journal-less sink, committed `batch` at a time.
IngestRow measure_ingest(const std::string& dir, size_t batch, int records, LedgerDurability durability) {
  const std::string path = dir + "/ingest-" + std::to_string(batch) + ".db";
  // The holder takes the journal; `direct` then commits to the database.
  auto holder = open_or_die({.path = path, .durability = durability});
  auto direct = open_or_die({.path = path,
                             .queue_capacity = static_cast<size_t>(records) + 1,
                             .batch_size = batch,
                             .max_delay = std::chrono::milliseconds(600'000),
                             .durability = durability});
  // Queued first (the background writer takes full batches meanwhile only
  // when a batch fills: process CPU counts it either way).
  const auto t0 = Clock::now();
  const double cpu0 = cpu_seconds(CLOCK_PROCESS_CPUTIME_ID);
  for (int i = 0; i < records; ++i) check(direct->write(call_record(i)));
  check(direct->flush());
  const double wall = switchboard::bench::seconds_since(t0);
  const double cpu = cpu_seconds(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
  direct.reset();
  holder.reset();
  return {batch, wall * 1e6 / records, cpu * 1e6 / records};
}

struct FlushRow {
  const char* name;
  double mean_us, p50_us, p99_us;
  double thread_cpu_us;   // the request's thread, per step
  double process_cpu_us;  // everything, per step (the ingester included)
};

// `steps` steps (a decision, a call, a flush) on one thread.
FlushRow measure_flush(const char* name, const std::string& path, bool journal, int steps,
                       LedgerDurability durability) {
  std::shared_ptr<LedgerSink> holder;
  if (!journal) holder = open_or_die({.path = path, .durability = durability});
  auto sink = open_or_die({.path = path, .durability = durability});
  // Warm up: the statements, the file's first pages.
  for (int i = 0; i < 200; ++i) {
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
  const double thread_cpu = cpu_seconds(CLOCK_THREAD_CPUTIME_ID) - thread0;
  // The ingester's share: what moving these steps in costs, counted once it is done.
  sink.reset();
  const double process_cpu = cpu_seconds(CLOCK_PROCESS_CPUTIME_ID) - process0;
  holder.reset();
  std::sort(latencies.begin(), latencies.end());
  double sum = 0;
  for (double l : latencies) sum += l;
  const auto at = [&](double q) { return latencies[static_cast<size_t>(q * (latencies.size() - 1))]; };
  return {name, sum / steps, at(0.5), at(0.99), thread_cpu * 1e6 / steps, process_cpu * 1e6 / steps};
}

int int_arg(int argc, char** argv, const std::string& flag, int fallback) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (argv[i] == flag) return std::atoi(argv[i + 1]);
  }
  return fallback;
}

}  // namespace

int main(int argc, char** argv) {
  const int steps = int_arg(argc, argv, "--steps", 20'000);
  const int records = int_arg(argc, argv, "--records", 20'000);
  const LedgerDurability durability =
      switchboard::bench::has_flag(argc, argv, "--power") ? LedgerDurability::kPower : LedgerDurability::kProcess;
  std::string dir;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::string(argv[i]) == "--dir") dir = argv[i + 1];
  }
  if (dir.empty()) {
    dir = (std::filesystem::temp_directory_path() / ("bench-ledger-" + std::to_string(std::random_device{}())))
              .string();
  }
  std::filesystem::create_directories(dir);
  std::printf("durability %s, files in %s\n\n", std::string(to_string(durability)).c_str(), dir.c_str());

  std::printf("ingest: %d cost records into the database, by records per transaction\n", records);
  std::printf("%8s %14s %14s %10s\n", "batch", "us/record", "cpu us/record", "ratio");
  double base = 0;
  for (size_t batch : {1, 8, 64, 512, 4096}) {
    // Fewer records for batch 1: each is a transaction (and an fsync with --power).
    const int n = batch == 1 ? std::max(1, records / 4) : records;
    const IngestRow row = measure_ingest(dir, batch, n, durability);
    if (base == 0) base = row.cpu_us_per_record;
    std::printf("%8zu %14.2f %14.2f %9.3fx\n", row.batch, row.us_per_record, row.cpu_us_per_record,
                row.cpu_us_per_record / base);
  }

  std::printf("\nflush: %d steps (a decision and a call record, then flush), one thread\n", steps);
  std::printf("%-26s %9s %9s %9s %14s %15s\n", "", "mean us", "p50 us", "p99 us", "thread cpu us", "process cpu us");
  const FlushRow before = measure_flush("before (SQLite commit)", dir + "/before.db", false, steps, durability);
  const FlushRow after = measure_flush("after (journal append)", dir + "/after.db", true, steps, durability);
  for (const FlushRow& r : {before, after}) {
    std::printf("%-26s %9.2f %9.2f %9.2f %14.2f %15.2f\n", r.name, r.mean_us, r.p50_us, r.p99_us, r.thread_cpu_us,
                r.process_cpu_us);
  }
  std::printf("%-26s %8.3fx %8.3fx %8.3fx %13.3fx %14.3fx\n", "ratio after/before", after.mean_us / before.mean_us,
              after.p50_us / before.p50_us, after.p99_us / before.p99_us, after.thread_cpu_us / before.thread_cpu_us,
              after.process_cpu_us / before.process_cpu_us);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return 0;
}
