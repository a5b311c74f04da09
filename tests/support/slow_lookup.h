// A DNS server that is slow, for tests of lookups made on a loop
// (async/resolve.h): this test binary's getaddrinfo answers a name under
// ".slow-lookup.test" with 127.0.0.1 after as many milliseconds as the
// name's first label says ("300.slow-lookup.test": 0.3 s), on whatever
// thread asked; "fail.slow-lookup.test" is not found (EAI_NONAME) at once;
// "two.slow-lookup.test" is 127.0.0.2 (where the tests' servers do not
// listen), then 127.0.0.1, at once.
// Every other name goes to the C library's getaddrinfo.
// (slow_lookup.cpp defines it: the executable's definition comes first for
// every caller, hiredis and Asio alike.)
#pragma once

#include <atomic>
#include <string>

namespace switchboard::testing {

// "MS.slow-lookup.test".
std::string slow_lookup_name(int milliseconds);

// How many slow lookups have started, on any thread.
extern std::atomic<int> slow_lookups;

}  // namespace switchboard::testing
