// switchboard calibrate LEDGER: learns each stand-in-counted model's token
// factor (Claude, Gemini, OpenAI-compatible: calibration.h) from the ledger's
// answered calls (billed input ÷ the engine's own count, the 99th percentile
// of the last 1,000 calls, never below the model's calibration_floor),
// prints it per model and stores it in the ledger, where the gateway and
// `switchboard run` read it at start-up. --dry-run stores nothing.
#include <cstdio>
#include <iostream>
#include <map>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "switchboard/calibration.h"
#include "switchboard/switchboard.h"
#include "token_estimates.h"

namespace switchboard::cli {

namespace {

struct CalibrateOptions {
  std::string ledger;
  std::string config_path = "switchboard.toml";
  bool json = false;
  bool dry_run = false;
};

int run_calibrate(const CalibrateOptions& o) {
  auto config = load_config(o.config_path);
  if (!config.ok()) {
    std::cerr << config.status().message() << "\n";
    return 2;
  }
  auto records = read_ledger(o.ledger);
  if (!records.ok()) {
    std::cerr << records.status().message() << "\n";
    return 2;
  }
  const std::map<std::string, TokenCalibration> factors = calibrate_ledger(*config, *records);
  if (!o.dry_run && !factors.empty()) {
    if (Status s = store_token_factors(o.ledger, factors); !s.ok()) {
      std::cerr << s.message() << "\n";
      return 2;
    }
  }
  // What the estimates would have been with the factors now in force.
  auto stored = read_token_factors(o.ledger);
  if (!stored.ok()) {
    std::cerr << stored.status().message() << "\n";
    return 2;
  }
  std::map<std::string, TokenCalibration> in_force = *stored;
  for (const auto& [name, c] : factors) in_force[name] = c;
  apply_token_factors(*config, in_force);
  const std::vector<TokenEstimateRow> estimates = token_estimates(*config, *records);

  if (o.json) {
    nlohmann::json models = nlohmann::json::object();
    for (const auto& [name, c] : factors) {
      models[name] = {{"calls", c.calls},
                      {"p50", c.p50},
                      {"p99", c.p99},
                      {"floor", config->find_model(name)->calibration_floor},
                      {"factor", c.factor}};
    }
    std::cout << nlohmann::json{{"ledger", o.ledger},
                                {"stored", !o.dry_run && !factors.empty()},
                                {"models", models},
                                {"token_estimates", token_estimates_json(estimates)}}
                     .dump()
              << "\n";
    return 0;
  }
  if (factors.empty()) {
    std::printf("no answered calls with the engine's count for a model counted with a stand-in tokenizer "
                "(anthropic, gemini, openai-compatible) in %s: nothing to calibrate\n",
                o.ledger.c_str());
    return 0;
  }
  std::printf("%-24s %7s %9s %9s %9s %9s\n", "model", "calls", "p50", "p99", "floor", "factor");
  for (const auto& [name, c] : factors) {
    std::printf("%-24s %7lld %9.4f %9.4f %9.4f %9.4f\n", name.c_str(), static_cast<long long>(c.calls), c.p50,
                c.p99, config->find_model(name)->calibration_floor, c.factor);
  }
  std::printf("%s\n", o.dry_run ? "(dry run: nothing stored)" : ("stored in " + o.ledger).c_str());
  print_token_estimates(estimates);
  return 0;
}

}  // namespace

Command add_calibrate(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "calibrate", "Learn the token factors of models without a public tokenizer from a ledger and store them");
  auto o = std::make_shared<CalibrateOptions>();
  cmd->add_option("LEDGER", o->ledger, "SQLite ledger or postgresql:// URL")->required();
  cmd->add_option("--config", o->config_path, "Configuration file (its models and their calibration_floor)")
      ->capture_default_str();
  cmd->add_flag("--json", o->json, "One JSON object");
  cmd->add_flag("--dry-run", o->dry_run, "Print the factors without storing them");
  return [o]() { return run_calibrate(*o); };
}

}  // namespace switchboard::cli
