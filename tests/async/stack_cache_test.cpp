// StackCache: a stack used deeper than the part kept resident goes back with
// its deep pages released; the kept part stays, and the stack is reused.
#include <doctest/doctest.h>

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>

#include "async/fiber.h"

using switchboard::async::StackCache;

namespace {

// Whether the page holding `at` is resident.
bool resident(const void* at) {
  const auto page = static_cast<std::uintptr_t>(sysconf(_SC_PAGESIZE));
  void* start = reinterpret_cast<void*>(reinterpret_cast<std::uintptr_t>(at) & ~(page - 1));
  unsigned char vec = 0;
  REQUIRE(mincore(start, page, &vec) == 0);
  return (vec & 1) != 0;
}

}  // namespace

TEST_CASE("a stack used deep goes back with its deep pages released, and is handed out again") {
  StackCache cache(8 * 1024 * 1024, 4);
  boost::context::stack_context stack = cache.allocate();
  char* const top = static_cast<char*>(stack.sp);
  char* const shallow = top - 16 * 1024;        // where every fiber's frames are
  char* const deep = top - 2 * 1024 * 1024;     // a deep recursion's
  std::memset(deep, 1, static_cast<std::size_t>(top - deep));  // from the top down, as a deep recursion writes
  CHECK(resident(deep));
  cache.deallocate(stack);
  CHECK_FALSE(resident(deep));  // released
  CHECK(resident(shallow));     // kept: the next fiber's frames fault nothing in

  boost::context::stack_context again = cache.allocate();
  CHECK(again.sp == stack.sp);  // the same stack, reused
  std::memset(shallow, 2, 4096);
  cache.deallocate(again);
  CHECK(resident(shallow));
}
