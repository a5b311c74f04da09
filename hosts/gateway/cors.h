// CORS ([gateway] cors_origins) and the answers to OPTIONS, for every route.
//
// Off by default (cors_origins empty): no Access-Control-* header is ever
// sent, and OPTIONS gets 204 with Allow, which grants a browser nothing.
// With cors_origins set, a request whose Origin is one of them (compared
// ignoring case; "*" allows any) gets on its answer, errors and streams
// included (EditedResponse adds them to whatever the route writes):
//   Access-Control-Allow-Origin: <its Origin>
//   Access-Control-Expose-Headers: the x-switchboard-* headers, x-request-id, retry-after
//   Vary: Origin
// A request from another origin is served all the same (only a browser
// enforces CORS), without those grants. A preflight (OPTIONS with Origin and
// Access-Control-Request-Method) from an allowed origin, for a method the
// route serves, asking for headers in kCorsRequestHeaders only, gets 204 with
// Allow, the two headers above, Access-Control-Allow-Methods (the route's),
// Access-Control-Allow-Headers (the requested ones, echoed) and
// Access-Control-Max-Age; any other preflight gets 403 naming what is not
// allowed (a browser then refuses the call). Answers the server gives before
// a request is read whole (413, 431, 400 framing) carry no CORS headers.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace switchboard::gateway {

// The request headers a preflight may ask for (lower case; "x-stainless-*"
// and "x-switchboard-*" are prefixes): what the OpenAI and Anthropic SDKs
// and the gateway's own headers need.
inline constexpr std::string_view kCorsRequestHeaders[] = {
    "authorization",   "x-api-key",         "anthropic-version",   "anthropic-beta",
    "anthropic-dangerous-direct-browser-access", "openai-beta", "openai-organization", "openai-project",
    "content-type",    "x-stainless-*",     "x-switchboard-*"};

// The preflight's Access-Control-Max-Age, in seconds (Chrome caps it at 7200).
inline constexpr int kCorsMaxAgeSeconds = 7200;

// What CORS adds to the answer to a request from `origin` ("" when it sent
// none): "name: value\r\n" lines, "" when CORS is off or the origin is not allowed.
std::string cors_headers(const std::vector<std::string>& allowed_origins, std::string_view origin);

// The answer to OPTIONS on a route that serves `allow` ("GET, HEAD, OPTIONS"
// or "POST, OPTIONS"): 204 with `headers`, or 403 with `error` (a
// preflight CORS does not grant). `request_method` and `request_headers`
// are the preflight's Access-Control-Request-Method and -Headers ("" absent).
// The grants cors_headers() gives every answer are not repeated here.
struct OptionsAnswer {
  int status = 204;
  std::string headers;  // "name: value\r\n" lines: Allow, and a preflight's grants
  std::string error;    // 403: what is not allowed
};
OptionsAnswer answer_options(const std::vector<std::string>& allowed_origins, std::string_view allow,
                             std::string_view origin, std::string_view request_method,
                             std::string_view request_headers);

}  // namespace switchboard::gateway
