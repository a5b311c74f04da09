// new_trace_id: 32 hex digits, ordered by the millisecond they were made in,
// and unique.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "switchboard/trace_id.h"

using switchboard::new_trace_id;

TEST_CASE("a trace id is 32 lowercase hex digits led by the milliseconds since 1970") {
  const auto before = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  const std::string id = new_trace_id();
  const auto after = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
  REQUIRE(id.size() == 32);
  CHECK(std::all_of(id.begin(), id.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }));
  const long long ms = std::stoll(id.substr(0, 12), nullptr, 16);
  CHECK(ms >= before);
  CHECK(ms <= after);
}

TEST_CASE("trace ids made later sort later, and 200,000 from four threads are all different") {
  const std::string first = new_trace_id();
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  const std::string second = new_trace_id();
  CHECK(first < second);

  std::vector<std::vector<std::string>> made(4);
  std::vector<std::thread> threads;
  for (auto& ids : made) {
    threads.emplace_back([&ids] {
      for (int i = 0; i < 50'000; ++i) ids.push_back(new_trace_id());
    });
  }
  for (auto& t : threads) t.join();
  std::set<std::string> all;
  for (const auto& ids : made) {
    // Within a thread, in the order made, by the millisecond.
    bool ordered = true;
    for (std::size_t i = 1; i < ids.size(); ++i) ordered = ordered && ids[i - 1].substr(0, 12) <= ids[i].substr(0, 12);
    CHECK(ordered);
    all.insert(ids.begin(), ids.end());
  }
  CHECK(all.size() == 200'000);
}
