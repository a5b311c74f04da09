/// @file
/// The version of the Switchboard library a program is linked with.
#pragma once

namespace switchboard {

/// "MAJOR.MINOR.PATCH" of the library linked in, e.g. "0.2.0": the version of
/// CMake's project(), the one place it is written. A program built against
/// the installed package can compare it with the version it asked
/// find_package for.
const char* version();

}  // namespace switchboard
