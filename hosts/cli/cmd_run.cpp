// switchboard run: the main job. Routes every step of an agent trace through
// the rules, calls the chosen model (the offline sim provider where no key is
// set), records every call in the ledger (and, when the workload has shadow
// rules, their decisions), and ends with the report tables.
//
// Sessions: the steps of one session_id run in trace order, one after the
// other, and each re-sends the session's conversation as an agent does: the
// request is the conversation so far (every earlier step's message and the
// answer it got), then the step's own message (its prompt, or as many
// tokens of text as its input_tokens), and the rules see the whole
// request's tokens as step.input_tokens, as a gateway derives them. An
// answer joins the conversation as text of its output tokens' length. When
// the conversation would pass kMaxConversationTokens, the agent compacts
// it: the oldest turns after the opening message go (so the prompt caches
// miss from there on). Steps without a session run alone, in parallel.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "commands.h"
#include "switchboard/calibration.h"
#include "switchboard/switchboard.h"

namespace switchboard::cli {

namespace {

struct RunOptions {
  std::string config_path = "switchboard.toml";
  std::string workload = "default";
  std::string ledger = "switchboard.db";
  bool ledger_given = false;  // --ledger was on the command line (it overrides [ledger] url)
  std::string trace;
  int parallel = 4;
  bool no_progress = false;
};

// Progress on stderr: a bar redrawn in place on a terminal, a plain line per
// tenth of the trace otherwise.
class Progress {
 public:
  Progress(size_t total, bool enabled) : total_(total), tty_(enabled && isatty(STDERR_FILENO) == 1), enabled_(enabled) {}

  void step_done(MicroUsd cost, bool failed) {
    std::lock_guard<std::mutex> lock(mu_);
    ++done_;
    spent_ += cost;
    if (failed) ++failed_;
    if (!enabled_) return;
    if (tty_) {
      const size_t width = 30;
      const size_t filled = total_ == 0 ? width : done_ * width / total_;
      std::fprintf(stderr, "\r[%s%s] %zu/%zu steps  %s  %zu failed ", std::string(filled, '#').c_str(),
                   std::string(width - filled, '.').c_str(), done_, total_, format_usd(spent_).c_str(), failed_);
      if (done_ == total_) std::fprintf(stderr, "\n");
    } else if (done_ == total_ || (total_ >= 10 && done_ % (total_ / 10) == 0)) {
      std::fprintf(stderr, "%zu/%zu steps  %s  %zu failed\n", done_, total_, format_usd(spent_).c_str(), failed_);
    }
  }

 private:
  std::mutex mu_;
  size_t total_;
  bool tty_;
  bool enabled_;
  size_t done_ = 0;
  size_t failed_ = 0;
  MicroUsd spent_ = 0;
};

// The most a session's request re-sends before the agent compacts it (under
// every demo model's context window, with room for the answer).
constexpr std::int64_t kMaxConversationTokens = 120'000;

// `tokens` tokens of text (3 bytes each, as the engine and the sim count
// text), made of `label` repeated.
std::string text_of_tokens(const std::string& label, std::int64_t tokens) {
  const std::size_t bytes = static_cast<std::size_t>(std::max<std::int64_t>(tokens, 1) * 3);
  std::string out;
  out.reserve(bytes);
  while (out.size() < bytes) out += label;
  out.resize(bytes);
  return out;
}

// One session's conversation as its agent re-sends it.
class Conversation {
 public:
  // The step's call: the conversation so far, then the step's own message.
  StepCall call_for(const Step& step, std::size_t line) {
    const std::string label = "[" + step.session_id + " line " + std::to_string(line) + " " + step.role + "] ";
    const bool counted = step.input_tokens.has_value();
    std::string own = !counted && step.prompt ? *step.prompt
                                              : text_of_tokens(label, step.input_tokens.value_or(1));
    const std::int64_t own_tokens = estimate_tokens(own);
    // Compaction: the oldest turns after the opening go first.
    while (tokens_ + own_tokens > kMaxConversationTokens && messages_.size() > 2) {
      tokens_ -= estimate_tokens(messages_[1].text());
      messages_.erase(messages_.begin() + 1);
    }
    StepCall call;
    call.step = step;
    call.step.input_tokens = tokens_ + own_tokens;
    call.request.messages = messages_;
    call.request.messages.push_back(Message::of_text("user", std::move(own)));
    return call;
  }

  // The call's message, and the answer `r` gave (when it answered), join the conversation.
  void add(const StepCall& call, const StepResult& r) {
    const Message& sent = call.request.messages.back();
    tokens_ += estimate_tokens(sent.text());
    messages_.push_back(sent);
    if (!r.status.ok()) return;
    const std::int64_t out = std::max<std::int64_t>(1, r.response.usage.output_tokens);
    std::string answer = r.response.text();
    answer.resize(static_cast<std::size_t>(out * 3), '.');  // the sim's text is short; a real answer is this long
    tokens_ += estimate_tokens(answer);
    messages_.push_back(Message::of_text("assistant", std::move(answer)));
  }

 private:
  std::vector<Message> messages_;
  std::int64_t tokens_ = 0;  // estimate_tokens of every message's text
};

Result<std::vector<Step>> read_trace(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::io_error(path + ": cannot open the trace");
  std::vector<Step> steps;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto step = parse_step_json(line);
    if (!step.ok()) return Status::invalid_argument(path + ":" + std::to_string(n) + ": " + step.status().message());
    steps.push_back(std::move(step).value());
  }
  return steps;
}

int run_trace(const RunOptions& o) {
  if (o.parallel < 1 || o.parallel > 256) {
    std::cerr << "--parallel must be 1 to 256\n";
    return 2;
  }
  auto loaded_config = load_config(o.config_path);
  if (!loaded_config.ok()) {
    std::cerr << loaded_config.status().message() << "\n";
    return 2;
  }
  if (loaded_config->find_workload(o.workload) == nullptr) {
    std::cerr << o.config_path << ": unknown workload '" << o.workload << "'\n";
    return 2;
  }
  auto steps = read_trace(o.trace);
  if (!steps.ok()) {
    std::cerr << steps.status().message() << "\n";
    return 2;
  }
  // The ledger before the engine: the engine writes its shadow records there
  // too. --ledger (a SQLite path or a PostgreSQL URL), else [ledger] url
  // when the config sets one, else the default SQLite file.
  LedgerSettings ledger_settings = loaded_config->ledger;
  if (o.ledger_given) ledger_settings.url = is_postgres_url(o.ledger) ? o.ledger : "";
  const std::string ledger = ledger_location(ledger_settings, o.ledger);
  const bool postgres = is_postgres_url(ledger);
  const bool ledger_existed = postgres || std::filesystem::exists(ledger);
  auto sink = open_configured_ledger(ledger_settings, o.ledger);
  if (!sink.ok()) {
    std::cerr << sink.status().message() << "\n";
    return 2;
  }
  // The token factors `switchboard calibrate` stored in this ledger (calibration.h).
  auto factors = read_token_factors(ledger);
  if (!factors.ok()) {
    std::cerr << factors.status().message() << "\n";
    return 2;
  }
  apply_token_factors(*loaded_config, *factors);
  std::mutex records_mu;
  std::vector<CostRecord> records;  // this run's steps' calls, for the closing report
  auto collect = callback_ledger([&](const CostRecord& r) {
    if (r.workload != o.workload) return;  // a judged shadow call's ("shadow:W"): not live spend
    std::lock_guard<std::mutex> lock(records_mu);
    records.push_back(r);
  });
  DispatcherOptions options;
  options.ledger = std::make_shared<Ledger>(std::vector<std::shared_ptr<LedgerSink>>{*sink, collect});
  EngineOptions engine_options;
  engine_options.shadow_ledger = options.ledger;
  auto engine = Engine::open(std::move(loaded_config).value(), std::move(engine_options));
  if (!engine.ok()) {
    std::cerr << engine.status().message() << "\n";
    if (!ledger_existed) {  // nothing was written: leave no empty ledger behind
      options.ledger.reset();
      sink->reset();  // the last owner: closes the database
      for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(o.ledger + suffix);
      std::filesystem::remove(sqlite_ledger_journal_path(o.ledger));
    }
    return 2;
  }
  const Config& config = (*engine)->config();
  auto clients = ModelClients::from_config(config);
  if (!clients.ok()) {
    std::cerr << clients.status().message() << "\n";
    return 2;
  }
  // Budgets continue from what this period already spent.
  if (ledger_existed) {
    auto loaded = load_budget_spend(**engine, ledger);
    if (!loaded.ok()) {
      std::cerr << loaded.status().message() << "\n";
      return 2;
    }
  }
  Dispatcher dispatcher(**engine, std::move(clients).value(), options);

  std::printf("running %zu steps of %s through workload '%s' (%d in parallel)\n", steps->size(), o.trace.c_str(),
              o.workload.c_str(), o.parallel);
  std::map<std::string, std::string> keyless;  // key variable -> the models it leaves to the sim provider
  for (const auto& [name, model] : config.models) {
    if (config.effective_provider(model) == "sim" && model.provider != "sim" && !model.api_key_env.empty()) {
      std::string& models = keyless[model.api_key_env];
      models += (models.empty() ? "" : ", ") + name;
    }
  }
  for (const auto& [variable, models] : keyless) {
    std::printf("  %s is not set: %s served by the offline sim provider\n", variable.c_str(), models.c_str());
  }
  std::fflush(stdout);

  // The units of work: a step without a session alone, a session's steps together in trace order.
  std::vector<std::vector<size_t>> units;
  std::map<std::string, size_t> unit_of_session;
  for (size_t i = 0; i < steps->size(); ++i) {
    const std::string& session = (*steps)[i].session_id;
    if (session.empty()) {
      units.push_back({i});
      continue;
    }
    auto [it, added] = unit_of_session.emplace(session, units.size());
    if (added) units.emplace_back();
    units[it->second].push_back(i);
  }

  Progress progress(steps->size(), !o.no_progress);
  std::atomic<size_t> next{0};
  std::atomic<int> failed{0};
  std::mutex errors_mu;
  std::vector<std::string> first_errors;
  const auto start = std::chrono::steady_clock::now();
  auto worker = [&] {
    for (size_t u = next++; u < units.size(); u = next++) {
      Conversation conversation;
      for (size_t i : units[u]) {
        const Step& step = (*steps)[i];
        StepCall call;
        if (step.session_id.empty()) {
          call.step = step;
        } else {
          call = conversation.call_for(step, i + 1);
        }
        // Lent, not copied: run() gives the call's messages back before it returns.
        StepResult r = dispatcher.run(o.workload, std::move(call));
        if (!step.session_id.empty()) conversation.add(call, r);  // NOLINT(bugprone-use-after-move)
        progress.step_done(r.cost, !r.status.ok());
        if (!r.status.ok()) {
          failed++;
          std::lock_guard<std::mutex> lock(errors_mu);
          if (first_errors.size() < 5) {
            first_errors.push_back(o.trace + ":" + std::to_string(i + 1) + ": " + r.status.message());
          }
        }
      }
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < o.parallel; ++t) threads.emplace_back(worker);
  for (std::thread& t : threads) t.join();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // The shadow records of the last steps, and the judged shadow calls still
  // under way (after the steps' own timing), before the flush that makes them durable.
  (*engine)->wait_for_shadow(config.shadow.drain_timeout);
  const bool shadow_calls_done = dispatcher.wait_for_shadow_calls(config.shadow.drain_timeout);
  const Status flushed = options.ledger->flush();
  const std::string ledger_name = postgres ? (*sink)->name() : o.ledger;  // a URL's password left out

  std::printf("\n%zu steps in %.2f s: %zu answered, %d failed; %zu calls recorded in %s\n\n", steps->size(), seconds,
              steps->size() - static_cast<size_t>(failed.load()), failed.load(), records.size(), ledger_name.c_str());
  const Status printed = print_report(config, records, {"role", "model"});
  for (const WorkloadStatus& s : (*engine)->status()) {
    if (s.workload != o.workload || s.shadow_rules_path.empty()) continue;
    const ShadowCounts& c = s.shadow;
    std::printf("\nshadow rules %s: %llu evaluated, %llu agree (%.1f%%), %llu failed, %llu dropped\n",
                s.shadow_rules_path.c_str(), static_cast<unsigned long long>(c.evaluated),
                static_cast<unsigned long long>(c.agreed),
                c.evaluated == 0 ? 0.0 : 100.0 * static_cast<double>(c.agreed) / static_cast<double>(c.evaluated),
                static_cast<unsigned long long>(c.errors), static_cast<unsigned long long>(c.dropped));
    if (s.shadow_error) std::printf("  not evaluated: %s\n", s.shadow_error->c_str());
  }
  if (const Workload* w = config.find_workload(o.workload); w != nullptr && w->shadow_calls) {
    const ShadowCallCounts c = dispatcher.shadow_calls();
    const std::uint64_t judged = c.wins + c.ties + c.losses;
    std::printf("\nshadow calls to %s, judged by %s (sample %g): %llu of %llu eligible steps drawn (%llu on the "
                "target itself, not drawn); %llu judged: %llu win, %llu tie, %llu loss; %llu error, %llu skipped by "
                "the budget, %llu dropped; spent $%.6f of $%.2f per %s\n",
                w->shadow_calls->target.c_str(), w->shadow_calls->judge.c_str(), w->shadow_calls->sample,
                static_cast<unsigned long long>(c.sampled), static_cast<unsigned long long>(c.eligible),
                static_cast<unsigned long long>(c.on_target), static_cast<unsigned long long>(judged),
                static_cast<unsigned long long>(c.wins), static_cast<unsigned long long>(c.ties),
                static_cast<unsigned long long>(c.losses), static_cast<unsigned long long>(c.errors),
                static_cast<unsigned long long>(c.skipped), static_cast<unsigned long long>(c.dropped),
                static_cast<double>(c.spent) / 1e6, static_cast<double>(w->shadow_calls->budget) / 1e6,
                w->shadow_calls->period == BudgetPeriod::kDay ? "day" : "month");
    if (!shadow_calls_done) std::printf("  still under way when the wait ended: not recorded\n");
  }
  for (const std::string& e : first_errors) std::fprintf(stderr, "failed: %s\n", e.c_str());
  if (!printed.ok()) {
    std::cerr << printed.message() << "\n";
    return 2;
  }
  if (!flushed.ok()) {
    std::cerr << "the ledger did not flush: " << flushed.message() << "\n";
    return 2;
  }
  return failed.load() == 0 ? 0 : 1;
}

}  // namespace

Command add_run(CLI::App& app) {
  auto o = std::make_shared<RunOptions>();
  CLI::App* cmd = app.add_subcommand("run", "Route every step of a trace, call the chosen models, record the costs");
  cmd->add_option("--config", o->config_path, "Configuration file")->capture_default_str();
  cmd->add_option("--workload", o->workload, "Workload whose rules decide")->capture_default_str();
  CLI::Option* ledger = cmd->add_option("--ledger", o->ledger,
                                        "Ledger to append every call to: a SQLite file or a postgresql:// URL "
                                        "(default: [ledger] url when the config sets one)")
                            ->capture_default_str();
  cmd->add_option("--parallel", o->parallel, "Steps (sessions) in flight at once")->capture_default_str();
  cmd->add_flag("--no-progress", o->no_progress, "No progress output on stderr");
  cmd->add_option("TRACE", o->trace, "Agent trace: one step as a JSON object per line")->required();
  return [o, ledger] {
    o->ledger_given = ledger->count() > 0;
    return run_trace(*o);
  };
}

}  // namespace switchboard::cli
