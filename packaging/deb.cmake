# The Debian package: `cpack -G DEB` in a build folder configured with
# -DCMAKE_INSTALL_PREFIX=/usr gives switchboard_<version>_<arch>.deb with
# everything `cmake --install` puts in place, the gateway's systemd unit, and
# maintainer scripts (packaging/debian/) that add the `switchboard` user and
# /etc/switchboard. `Depends` comes from dpkg-shlibdeps over the binaries
# and the library, so it names the real shared-library dependencies.
set(CPACK_PACKAGE_NAME switchboard)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
set(CPACK_PACKAGE_CONTACT "Switchboard maintainers <maintainers@switchboard.invalid>")
set(CPACK_STRIP_FILES ON)
set(CPACK_GENERATOR DEB)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)   # switchboard_0.2.0_amd64.deb
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION "Switchboard: a model router for AI agents
 Switchboard decides, for every step of an AI agent, which model should handle
 it, through a Lua function you write (sandboxed, hot-reloaded), calls that
 model (OpenAI, Anthropic, Gemini, any OpenAI-compatible server, or an offline
 simulator), and records what every call cost in a ledger.
 .
 This package has the `switchboard` command, the `switchboard-gateway` HTTP
 server (an OpenAI/Anthropic-compatible endpoint, with a systemd unit), the
 embeddable C++ library with its headers, CMake package and pkg-config file,
 and the example configuration and rules in /usr/share/switchboard.")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${CMAKE_CURRENT_SOURCE_DIR}/debian/postinst
  ${CMAKE_CURRENT_SOURCE_DIR}/debian/prerm
  ${CMAKE_CURRENT_SOURCE_DIR}/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
