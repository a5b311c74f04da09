// Pairwise judging: which of two answers to one request is better, asked of a
// judge model in both orders so that a judge's taste for a position cancels
// out. Used by the dispatcher's judged shadow calls (dispatch.h).
#pragma once

#include <string>
#include <string_view>

#include "switchboard/ledger.h"
#include "switchboard/request.h"
#include "switchboard/status.h"

namespace switchboard::detail {

/// The position a judge preferred.
enum class PairwiseWinner { kA, kB, kTie };

/// One judge answer: the winner and its reason.
struct PairwiseVerdict {
  PairwiseWinner winner = PairwiseWinner::kTie;  ///< "A", "B" or "tie"
  std::string reason;                            ///< the judge's one-line reason ("" when it gave none)
};

/// The judge's request: the original request's messages, rendered as text
/// (every role, tool calls and tool results included), then answer A and
/// answer B; the judge must reply with the strict JSON object
/// {"winner": "A" | "B" | "tie", "reason": "..."} (a JSON Schema output format).
ModelRequest pairwise_judge_request(const ModelRequest& request, const ModelResponse& a, const ModelResponse& b);

/// Reads the judge's reply: one JSON object (a fenced or prefixed one is
/// tolerated: the first '{' to the last '}') whose "winner" is "A", "B" or
/// "tie" (any case). Anything else is an invalid_argument naming what came.
Result<PairwiseVerdict> parse_pairwise_verdict(std::string_view text);

/// The verdict from the first answer's point of view, from the judge's two
/// orders: `first_as_a` when the first answer was A, `first_as_b` when it was
/// B. Orders that agree give their verdict (win, tie or loss); orders that
/// disagree give a tie (a judge that prefers a position, not an answer).
JudgedVerdict::Outcome combine_pairwise(PairwiseWinner first_as_a, PairwiseWinner first_as_b);

}  // namespace switchboard::detail
