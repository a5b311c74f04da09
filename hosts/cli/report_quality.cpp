// switchboard report --quality: what the judged shadow calls (dispatch.h,
// "Judged shadow calls") found. Per workload, role and tier the live step was
// routed to: samples judged, the matched-or-beat rate (win + tie over win +
// tie + loss) with its Wilson 95% interval, wins / ties / losses, the
// samples with no verdict (errors: a judge or target failure, never counted
// as a loss) and those the shadow budget skipped, then what the routed calls
// cost against what the target's calls to the same requests cost, and the
// judge's own cost.
#include <cstdio>
#include <iostream>
#include <map>
#include <tuple>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "switchboard/switchboard.h"

namespace switchboard::cli {

namespace {

using Json = nlohmann::json;

struct QualityGroup {
  std::int64_t wins = 0, ties = 0, losses = 0, errors = 0, skipped = 0;
  MicroUsd routed = 0;  // the live steps' calls, over the judged samples
  MicroUsd target = 0;  // the target's calls, over the judged samples
  MicroUsd judge = 0;   // the judge's calls, over every sample
  std::string target_tier;
  std::int64_t judged() const { return wins + ties + losses; }
};

}  // namespace

int print_quality_report(const std::string& ledger, const LedgerQuery& query, const std::string& since,
                         const std::string& until, bool json) {
  auto decisions = read_ledger_decisions(ledger, query);
  if (!decisions.ok()) {
    std::cerr << decisions.status().message() << "\n";
    return 2;
  }
  using Key = std::tuple<std::string, std::string, std::string>;  // workload, role, tier
  std::map<Key, QualityGroup> groups;
  QualityGroup total;
  for (const DecisionRecord& r : *decisions) {
    if (r.kind != DecisionKind::kJudged || !r.judged) continue;
    const JudgedVerdict& v = *r.judged;
    for (QualityGroup* g : {&groups[Key{r.decision.workload, r.step.role, r.decision.tier}], &total}) {
      switch (v.outcome) {
        case JudgedVerdict::Outcome::kWin: ++g->wins; break;
        case JudgedVerdict::Outcome::kTie: ++g->ties; break;
        case JudgedVerdict::Outcome::kLoss: ++g->losses; break;
        case JudgedVerdict::Outcome::kError: ++g->errors; break;
        case JudgedVerdict::Outcome::kSkipped: ++g->skipped; break;
      }
      const bool judged = v.outcome == JudgedVerdict::Outcome::kWin || v.outcome == JudgedVerdict::Outcome::kTie ||
                          v.outcome == JudgedVerdict::Outcome::kLoss;
      if (judged) {
        g->routed += v.routed_cost;
        g->target += v.target_cost;
      }
      g->judge += v.judge_cost;
      if (g->target_tier.empty()) {
        g->target_tier = v.target_tier;
      } else if (g->target_tier != v.target_tier) {
        g->target_tier = "(several)";
      }
    }
  }

  const auto rate = [](const QualityGroup& g) {
    return g.judged() == 0 ? 0.0 : static_cast<double>(g.wins + g.ties) / static_cast<double>(g.judged());
  };
  if (json) {
    const auto group_json = [&](const QualityGroup& g) {
      const Interval ci = wilson_interval(g.wins + g.ties, g.judged());
      return Json{{"judged", g.judged()},
                  {"matched_or_beat", rate(g)},
                  {"interval95", {ci.low, ci.high}},
                  {"wins", g.wins},
                  {"ties", g.ties},
                  {"losses", g.losses},
                  {"errors", g.errors},
                  {"skipped", g.skipped},
                  {"target_tier", g.target_tier},
                  {"routed_usd", to_usd(g.routed)},
                  {"target_usd", to_usd(g.target)},
                  {"judge_usd", to_usd(g.judge)}};
    };
    Json rows = Json::array();
    for (const auto& [key, g] : groups) {
      Json j = group_json(g);
      j["workload"] = std::get<0>(key);
      j["role"] = std::get<1>(key);
      j["tier"] = std::get<2>(key);
      rows.push_back(std::move(j));
    }
    Json out{{"ledger", ledger}, {"groups", rows}, {"total", group_json(total)}};
    if (!since.empty()) out["since"] = since;
    if (!until.empty()) out["until"] = until;
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  if (groups.empty()) {
    std::printf("no judged shadow calls in %s ([workloads.X] shadow_calls)\n", ledger.c_str());
    return 0;
  }
  std::printf("judged shadow calls: how often the routed answer matched or beat the target's (win + tie), "
              "Wilson 95%% interval\n\n");
  std::printf("%-14s %-14s %-10s %-10s %6s %7s %-15s %5s %5s %5s %5s %5s %12s %12s %10s\n", "workload", "role", "tier",
              "target", "judged", "matched", "interval", "win", "tie", "loss", "error", "skip", "routed", "target",
              "judge");
  const auto row = [&](const std::string& w, const std::string& role, const std::string& tier, const QualityGroup& g) {
    const Interval ci = wilson_interval(g.wins + g.ties, g.judged());
    char interval[32];
    std::snprintf(interval, sizeof interval, "%.1f-%.1f%%", 100 * ci.low, 100 * ci.high);
    std::printf("%-14s %-14s %-10s %-10s %6lld %6.1f%% %-15s %5lld %5lld %5lld %5lld %5lld %12s %12s %10s\n",
                w.c_str(), role.c_str(), tier.c_str(), g.target_tier.c_str(), static_cast<long long>(g.judged()),
                100 * rate(g), interval, static_cast<long long>(g.wins), static_cast<long long>(g.ties),
                static_cast<long long>(g.losses), static_cast<long long>(g.errors), static_cast<long long>(g.skipped),
                format_usd(g.routed).c_str(), format_usd(g.target).c_str(), format_usd(g.judge).c_str());
  };
  for (const auto& [key, g] : groups) row(std::get<0>(key), std::get<1>(key), std::get<2>(key), g);
  row("total", "", "", total);
  std::printf("\nrouted / target: what the judged steps cost as routed, and what the target's answers to the same "
              "requests cost; judge: every sample's judge calls (both orders). error: no verdict (never a loss).\n");
  return 0;
}

}  // namespace switchboard::cli
