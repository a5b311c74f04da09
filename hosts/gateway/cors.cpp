#include "cors.h"

#include <algorithm>

namespace switchboard::gateway {

namespace {

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool origin_allowed(const std::vector<std::string>& allowed, std::string_view origin) {
  if (origin.empty()) return false;
  for (const std::string& a : allowed) {
    if (a == "*" || iequals(a, origin)) return true;
  }
  return false;
}

bool header_allowed(std::string_view name) {
  for (std::string_view allowed : kCorsRequestHeaders) {
    if (allowed.ends_with('*')) {
      allowed.remove_suffix(1);
      if (name.size() > allowed.size() && iequals(name.substr(0, allowed.size()), allowed)) return true;
    } else if (iequals(name, allowed)) {
      return true;
    }
  }
  return false;
}

// A header value from a request: no line breaks reach the answer.
std::string header_value(std::string_view value) {
  std::string out;
  for (const char c : value) out += (c == '\r' || c == '\n') ? ' ' : c;
  return out;
}

}  // namespace

std::string cors_headers(const std::vector<std::string>& allowed_origins, std::string_view origin) {
  if (allowed_origins.empty() || origin.empty()) return {};
  std::string out = "Vary: Origin\r\n";
  if (!origin_allowed(allowed_origins, origin)) return out;  // caches must not serve it to an allowed origin
  out += "Access-Control-Allow-Origin: " + header_value(origin) + "\r\n";
  out +=
      "Access-Control-Expose-Headers: x-switchboard-model, x-switchboard-tier, x-switchboard-cost-usd, "
      "x-switchboard-trace-id, x-switchboard-token-count, x-request-id, retry-after\r\n";
  return out;
}

OptionsAnswer answer_options(const std::vector<std::string>& allowed_origins, std::string_view allow,
                             std::string_view origin, std::string_view request_method,
                             std::string_view request_headers) {
  OptionsAnswer a;
  a.headers = "Allow: " + std::string(allow) + "\r\n";
  if (allowed_origins.empty() || origin.empty() || request_method.empty()) return a;  // not a preflight CORS answers

  if (!origin_allowed(allowed_origins, origin)) {
    a.status = 403;
    a.error = "CORS: origin '" + header_value(origin) + "' is not in [gateway] cors_origins";
    return a;
  }
  bool method_ok = false;
  for (std::size_t at = 0; at < allow.size();) {
    const std::size_t comma = std::min(allow.find(',', at), allow.size());
    method_ok = method_ok || trim(allow.substr(at, comma - at)) == trim(request_method);
    at = comma + 1;
  }
  if (!method_ok) {
    a.status = 403;
    a.error = "CORS: method " + header_value(request_method) + " is not served here; this route serves " +
              std::string(allow);
    return a;
  }
  std::string echoed;
  for (std::size_t at = 0; at <= request_headers.size();) {
    const std::size_t comma = std::min(request_headers.find(',', at), request_headers.size());
    const std::string_view name = trim(request_headers.substr(at, comma - at));
    at = comma + 1;
    if (name.empty()) continue;
    if (!header_allowed(name)) {
      a.status = 403;
      a.error = "CORS: request header '" + header_value(name) +
                "' is not allowed; allowed: authorization, x-api-key, anthropic-version, anthropic-beta, "
                "anthropic-dangerous-direct-browser-access, openai-beta, openai-organization, openai-project, "
                "content-type, x-stainless-*, x-switchboard-*";
      return a;
    }
    echoed += (echoed.empty() ? "" : ", ") + header_value(name);
  }
  a.headers += "Access-Control-Allow-Methods: " + std::string(allow) + "\r\n";
  if (!echoed.empty()) a.headers += "Access-Control-Allow-Headers: " + echoed + "\r\n";
  a.headers += "Access-Control-Max-Age: " + std::to_string(kCorsMaxAgeSeconds) + "\r\n";
  return a;
}

}  // namespace switchboard::gateway
