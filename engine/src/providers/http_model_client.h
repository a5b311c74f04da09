// The native adapters' one entry point: a ModelClient that speaks `model`'s
// provider wire format (openai | openai-compatible | anthropic | gemini) over
// the shared libcurl transport. Built by make_model_client (clients.cpp).
#pragma once

#include <memory>
#include <string>

#include "switchboard/client.h"
#include "switchboard/config.h"

namespace switchboard {

class HttpTransport;

// `api_key` may be empty (a keyless OpenAI-compatible server). It is sent in
// the provider's header and never appears in any error or log.
// REQUIRES: model.provider is one of the four HTTP providers.
Result<std::shared_ptr<ModelClient>> make_http_client(const ModelSpec& model, const CallSettings& calls,
                                                      std::string api_key);

// As above, over `transport`: clients built with one transport share its
// pool of kept-alive connections. REQUIRES: transport is not null.
Result<std::shared_ptr<ModelClient>> make_http_client(const ModelSpec& model, const CallSettings& calls,
                                                      std::string api_key, std::shared_ptr<HttpTransport> transport);

}  // namespace switchboard
