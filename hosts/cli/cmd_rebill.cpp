// switchboard rebill LEDGER --prices NEW.toml: re-prices every stored call
// from its tokens under another catalog and prints old against new totals
// per model and per workload. The ledger changes only with --write.
#include <cstdio>
#include <iostream>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "switchboard/switchboard.h"

namespace switchboard::cli {

namespace {

struct RebillOptions {
  std::string ledger;
  std::string prices;
  bool json = false;
  bool write = false;
};

struct Totals {
  std::int64_t calls = 0;
  MicroUsd old_cost = 0;
  MicroUsd new_cost = 0;
};

double percent(MicroUsd from, MicroUsd to) {
  return from == 0 ? 0.0 : 100.0 * static_cast<double>(to - from) / static_cast<double>(from);
}

nlohmann::json totals_json(const std::map<std::string, Totals>& by) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [key, t] : by) {
    out[key] = {{"calls", t.calls}, {"old_usd", to_usd(t.old_cost)}, {"new_usd", to_usd(t.new_cost)},
                {"old_micro_usd", t.old_cost}, {"new_micro_usd", t.new_cost}};
  }
  return out;
}

void print_table(const char* title, const std::map<std::string, Totals>& by) {
  std::printf("\n%-24s %8s %14s %14s %14s %8s\n", title, "calls", "old", "new", "change", "");
  for (const auto& [key, t] : by) {
    std::printf("%-24s %8lld %14s %14s %14s %7.1f%%\n", key.c_str(), static_cast<long long>(t.calls),
                format_usd(t.old_cost).c_str(), format_usd(t.new_cost).c_str(),
                format_usd(t.new_cost - t.old_cost).c_str(), percent(t.old_cost, t.new_cost));
  }
}

int run_rebill(const RebillOptions& o) {
  auto catalog = PriceCatalog::load(o.prices);
  if (!catalog.ok()) {
    std::cerr << catalog.status().message() << "\n";
    return 2;
  }
  auto records = read_ledger(o.ledger);
  if (!records.ok()) {
    std::cerr << records.status().message() << "\n";
    return 2;
  }
  std::map<std::string, Totals> by_model, by_workload;
  std::map<std::string, std::int64_t> unpriced;  // model -> calls
  std::vector<std::pair<std::int64_t, MicroUsd>> repriced;
  std::set<std::string> old_versions;
  Totals all;
  for (const CostRecord& r : *records) {
    auto cost = catalog->cost(r.model, r.usage);
    if (!cost.ok()) {
      unpriced[r.model]++;
      continue;
    }
    old_versions.insert(r.catalog_version);
    for (Totals* t : {&by_model[r.model], &by_workload[r.workload], &all}) {
      t->calls++;
      t->old_cost += r.cost;
      t->new_cost += *cost;
    }
    repriced.emplace_back(r.id, *cost);
  }
  if (!unpriced.empty()) {
    for (const auto& [model, calls] : unpriced) {
      std::cerr << o.prices << ": no price for model '" << model << "' (" << calls
                << " calls); nothing is re-priced at $0\n";
    }
    return 1;
  }
  if (o.write) {
    Status s = reprice_ledger(o.ledger, repriced, catalog->version());
    if (!s.ok()) {
      std::cerr << s.message() << "\n";
      return 2;
    }
  }
  if (o.json) {
    nlohmann::json j = {{"ledger", o.ledger},
                        {"catalog_version", catalog->version()},
                        {"old_catalog_versions", old_versions},
                        {"calls", all.calls},
                        {"old_usd", to_usd(all.old_cost)},
                        {"new_usd", to_usd(all.new_cost)},
                        {"old_micro_usd", all.old_cost},
                        {"new_micro_usd", all.new_cost},
                        {"written", o.write},
                        {"by_model", totals_json(by_model)},
                        {"by_workload", totals_json(by_workload)}};
    std::cout << j.dump() << "\n";
    return 0;
  }
  std::string from;
  for (const std::string& v : old_versions) from += (from.empty() ? "" : ", ") + v;
  std::printf("re-priced %lld calls from catalog %s to %s%s\n", static_cast<long long>(all.calls),
              from.empty() ? "(none)" : from.c_str(), catalog->version().c_str(),
              o.write ? " (written to the ledger)" : " (ledger unchanged; --write to record)");
  print_table("model", by_model);
  print_table("workload", by_workload);
  std::printf("\n%-24s %8lld %14s %14s %14s %7.1f%%\n", "total", static_cast<long long>(all.calls),
              format_usd(all.old_cost).c_str(), format_usd(all.new_cost).c_str(),
              format_usd(all.new_cost - all.old_cost).c_str(), percent(all.old_cost, all.new_cost));
  return 0;
}

}  // namespace

Command add_rebill(CLI::App& app) {
  auto* cmd = app.add_subcommand("rebill", "Re-price a ledger's calls from their tokens under another price catalog");
  auto o = std::make_shared<RebillOptions>();
  cmd->add_option("LEDGER", o->ledger, "SQLite ledger or postgresql:// URL")->required();
  cmd->add_option("--prices", o->prices, "The price catalog to re-price with")->required();
  cmd->add_flag("--json", o->json, "One JSON object");
  cmd->add_flag("--write", o->write, "Store the new costs and catalog version in the ledger");
  return [o]() { return run_rebill(*o); };
}

}  // namespace switchboard::cli
