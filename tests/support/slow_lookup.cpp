// The test binary's getaddrinfo (slow_lookup.h).
#include "support/slow_lookup.h"

#include <dlfcn.h>
#include <netdb.h>

#include <chrono>
#include <cstdlib>
#include <string_view>
#include <thread>

namespace switchboard::testing {

std::atomic<int> slow_lookups{0};

std::string slow_lookup_name(int milliseconds) { return std::to_string(milliseconds) + ".slow-lookup.test"; }

}  // namespace switchboard::testing

extern "C" int getaddrinfo(const char* __restrict name, const char* __restrict service,
                           const struct addrinfo* __restrict hints, struct addrinfo** __restrict result) {
  using GetAddrInfo = int (*)(const char*, const char*, const struct addrinfo*, struct addrinfo**);
  static const auto libc = reinterpret_cast<GetAddrInfo>(dlsym(RTLD_NEXT, "getaddrinfo"));
  constexpr std::string_view kSuffix = ".slow-lookup.test";
  const std::string_view host = name != nullptr ? name : "";
  if (host.size() > kSuffix.size() && host.ends_with(kSuffix)) {
    ++switchboard::testing::slow_lookups;
    if (host == "fail.slow-lookup.test") return EAI_NONAME;
    if (host == "two.slow-lookup.test") {  // 127.0.0.2 first (nothing listens there), then 127.0.0.1
      struct addrinfo* first = nullptr;
      if (const int rc = libc("127.0.0.2", service, hints, &first); rc != 0) return rc;
      struct addrinfo* last = first;
      while (last->ai_next != nullptr) last = last->ai_next;
      if (const int rc = libc("127.0.0.1", service, hints, &last->ai_next); rc != 0) {
        freeaddrinfo(first);
        return rc;
      }
      *result = first;
      return 0;
    }
    const int ms = std::atoi(std::string(host.substr(0, host.size() - kSuffix.size())).c_str());
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return libc("127.0.0.1", service, hints, result);
  }
  return libc(name, service, hints, result);
}
