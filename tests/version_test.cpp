// One version: the library, `switchboard --version` and
// `switchboard-gateway --version` all say CMake's project() version.
#include <doctest/doctest.h>

#include <string>

#include "switchboard/version.h"
#include "test_util.h"

TEST_SUITE("version") {

TEST_CASE("the library reports the project version") {
  CHECK(std::string(switchboard::version()) == SWITCHBOARD_PROJECT_VERSION);
}

#ifdef SWITCHBOARD_CLI
TEST_CASE("switchboard --version prints the project version and exits 0") {
  std::string out;
  CHECK(switchboard::testing::run_command(std::string("'") + SWITCHBOARD_CLI + "' --version", out) == 0);
  CHECK(out == std::string("switchboard ") + SWITCHBOARD_PROJECT_VERSION + "\n");
}
#endif

#ifdef SWITCHBOARD_GATEWAY
TEST_CASE("switchboard-gateway --version prints the project version and exits 0") {
  std::string out;
  CHECK(switchboard::testing::run_command(std::string("'") + SWITCHBOARD_GATEWAY + "' --version", out) == 0);
  CHECK(out == std::string("switchboard-gateway ") + SWITCHBOARD_PROJECT_VERSION + "\n");
}
#endif

}  // TEST_SUITE
