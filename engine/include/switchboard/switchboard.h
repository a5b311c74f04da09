/// @file
/// The whole public API of the Switchboard engine.
#pragma once

#include "switchboard/budget.h"
#include "switchboard/cancel.h"
#include "switchboard/client.h"
#include "switchboard/config.h"
#include "switchboard/decision.h"
#include "switchboard/derive_step.h"
#include "switchboard/embedding.h"
#include "switchboard/dispatch.h"
#include "switchboard/engine.h"
#include "switchboard/eval.h"
#include "switchboard/fiber_loop.h"
#include "switchboard/json_text.h"
#include "switchboard/ledger.h"
#include "switchboard/money.h"
#include "switchboard/pricing.h"
#include "switchboard/replay.h"
#include "switchboard/rule_tests.h"
#include "switchboard/rules_api.h"
#include "switchboard/status.h"
#include "switchboard/step.h"
#include "switchboard/tokens.h"
#include "switchboard/trace_id.h"
#include "switchboard/usage.h"
#include "switchboard/version.h"

/// @namespace switchboard
/// Everything the Switchboard engine declares in its public headers.
