// What a request needs of a model beyond text, against what the model can
// take (ModelSpec::capabilities): the dispatcher's check before it calls a
// model, so that a request never reaches a model that would drop part of it.
#pragma once

#include <string>

#include "switchboard/config.h"
#include "switchboard/request.h"

namespace switchboard {

// The first thing `request` needs that `model` cannot take, as a reason
// naming the setting ("cannot take image blocks ([models.m.capabilities]
// vision = false)"); "" when it can take it all. Needs: image, document and
// audio blocks (tool results included) -> vision, documents, audio; tools or
// a tool choice other than none -> tools; the caller's explicit reasoning
// (an effort other than none, a thinking budget above 0) -> thinking; a JSON
// schema output -> json_schema.
std::string missing_capability(const ModelSpec& model, const ModelRequest& request);

}  // namespace switchboard
