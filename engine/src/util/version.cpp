// The library's version, from CMake's project() (engine/CMakeLists.txt
// defines SWITCHBOARD_VERSION for this file alone, so a new version rebuilds
// one file).
#include "switchboard/version.h"

#ifndef SWITCHBOARD_VERSION
#error "SWITCHBOARD_VERSION must be defined by the build (project() version)"
#endif

namespace switchboard {

const char* version() { return SWITCHBOARD_VERSION; }

}  // namespace switchboard
