// bench_decide: the cost of a decision.
//  1. ns per Engine::decide for the shipped default.lua, against a bare
//     lua_pcall of the same classify on a plain lua_State with the same step
//     table built from C (goal: ratio <= 1.5); and for bench/rules/reads_ctx.lua,
//     the same decisions after reading the candidates' health, prices,
//     costs and the session's warm cache from ctx, against the same bare
//     call (goal: ratio <= 2).
//  2. decisions per second on 1 and 2 threads, and the scaling factor
//     (goal: >= 1.8x on 2 threads).
//  3. µs to count an 8,000-token prompt with o200k_base on one thread
//     (count_request_tokens of one user message; goal: < 1,000 µs), against
//     a copy of the same text (memcpy) as the baseline. Timed in the thread's
//     CPU time, so other processes on a shared machine do not count; once
//     with the thread's piece cache warm from counting similar text, and once
//     on a fresh thread (cache empty); each time a text no count has seen.
//     Then the same text again: remembered by its SHA-256, as an agent's
//     re-sent history is.
// Usage: bench_decide [--json] [--iterations N] [--profile engine|reads-ctx|bare]
// (--profile runs only that loop, once, for callgrind or perf.)
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <iostream>
#include <thread>

extern "C" {
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
}

#include "bench_util.h"

using namespace switchboard;
using namespace switchboard::bench;

namespace {

// Seconds of CPU time this thread has used.
double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// The baseline: what the engine does at its core, with nothing around it.
class BareLua {
 public:
  explicit BareLua(const std::string& rules_file) {
    L_ = luaL_newstate();
    luaL_openlibs(L_);
    if (luaL_dofile(L_, rules_file.c_str()) != LUA_OK) {
      std::cerr << lua_tostring(L_, -1) << "\n";
      std::exit(1);
    }
    lua_getglobal(L_, "classify");
    classify_ref_ = luaL_ref(L_, LUA_REGISTRYINDEX);
    lua_newtable(L_);
    empty_list_ref_ = luaL_ref(L_, LUA_REGISTRYINDEX);
    for (int i = 0; i < kKeys; ++i) {
      lua_pushstring(L_, kKeyNames[i]);
      key_refs_[i] = luaL_ref(L_, LUA_REGISTRYINDEX);
    }
  }
  ~BareLua() { lua_close(L_); }

  // Same table shape as the sandbox builds, the same way (keys interned
  // once, in the registry); reads the tier back.
  size_t classify(const Step& step) {
    lua_rawgeti(L_, LUA_REGISTRYINDEX, classify_ref_);
    lua_createtable(L_, 0, kKeys);
    const auto key = [&](int k) { lua_rawgeti(L_, LUA_REGISTRYINDEX, key_refs_[k]); };
    key(0);
    lua_pushlstring(L_, step.role.data(), step.role.size());
    lua_rawset(L_, -3);
    key(1);
    lua_pushinteger(L_, step.input_tokens.value_or(0));
    lua_rawset(L_, -3);
    if (step.expected_output_tokens) {
      key(2);
      lua_pushinteger(L_, *step.expected_output_tokens);
      lua_rawset(L_, -3);
    }
    key(3);
    lua_pushboolean(L_, step.needs_chain_of_thought);
    lua_rawset(L_, -3);
    key(4);
    lua_pushboolean(L_, step.output_must_be_json);
    lua_rawset(L_, -3);
    key(5);
    lua_pushboolean(L_, step.untrusted_input);
    lua_rawset(L_, -3);
    key(6);
    lua_pushinteger(L_, step.tool_depth);
    lua_rawset(L_, -3);
    key(7);
    lua_pushinteger(L_, step.turns);
    lua_rawset(L_, -3);
    key(8);
    lua_pushboolean(L_, step.has_tools);
    lua_rawset(L_, -3);
    key(9);
    lua_pushboolean(L_, step.has_images);
    lua_rawset(L_, -3);
    key(10);
    lua_pushboolean(L_, step.has_documents);
    lua_rawset(L_, -3);
    if (!step.last_tool.empty()) {
      key(11);
      lua_pushlstring(L_, step.last_tool.data(), step.last_tool.size());
      lua_rawset(L_, -3);
    }
    if (!step.agent.empty()) {
      key(12);
      lua_pushlstring(L_, step.agent.data(), step.agent.size());
      lua_rawset(L_, -3);
    }
    key(13);
    if (step.tool_names.empty()) {
      lua_rawgeti(L_, LUA_REGISTRYINDEX, empty_list_ref_);  // one shared empty list, as the sandbox does
    } else {
      lua_createtable(L_, static_cast<int>(step.tool_names.size()), 0);
      for (size_t i = 0; i < step.tool_names.size(); ++i) {
        lua_pushlstring(L_, step.tool_names[i].data(), step.tool_names[i].size());
        lua_rawseti(L_, -2, static_cast<lua_Integer>(i + 1));
      }
    }
    lua_rawset(L_, -3);
    key(14);
    lua_createtable(L_, 0, static_cast<int>(step.meta.size()));
    for (const auto& [name, value] : step.meta) {
      if (const auto* s = std::get_if<std::string>(&value)) lua_pushlstring(L_, s->data(), s->size());
      else if (const auto* n = std::get_if<std::int64_t>(&value)) lua_pushinteger(L_, *n);
      else if (const auto* d = std::get_if<double>(&value)) lua_pushnumber(L_, *d);
      else lua_pushboolean(L_, *std::get_if<bool>(&value));
      lua_setfield(L_, -2, name.c_str());
    }
    lua_rawset(L_, -3);
    lua_createtable(L_, 0, 4);
    lua_pushliteral(L_, "default");
    lua_setfield(L_, -2, "workload");
    lua_pushnumber(L_, 0);
    lua_setfield(L_, -2, "spent_usd");
    if (lua_pcall(L_, 2, 1, 0) != LUA_OK) std::exit(1);
    size_t len = 0;
    if (lua_type(L_, -1) == LUA_TTABLE) {
      lua_getfield(L_, -1, "tier");
      lua_tolstring(L_, -1, &len);
      lua_pop(L_, 1);
    }
    lua_pop(L_, 1);
    return len;
  }

 private:
  lua_State* L_;
  static constexpr int kKeys = 15;
  static constexpr const char* kKeyNames[kKeys] = {
      "role", "input_tokens", "expected_output_tokens", "needs_chain_of_thought", "output_must_be_json",
      "untrusted_input", "tool_depth", "turns", "has_tools", "has_images", "has_documents", "last_tool",
      "agent", "tool_names", "meta"};
  int classify_ref_ = LUA_NOREF;
  int empty_list_ref_ = LUA_NOREF;
  int key_refs_[kKeys] = {};
};

}  // namespace

int main(int argc, char** argv) {
  const bool json = has_flag(argc, argv, "--json");
  long iterations = 200'000;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::string(argv[i]) == "--iterations") iterations = std::atol(argv[i + 1]);
  }
  const std::string src = SWITCHBOARD_SOURCE_DIR;
  auto engine = Engine::open_file(src + "/switchboard.toml");
  if (!engine.ok()) {
    std::cerr << engine.status().message() << "\n";
    return 1;
  }
  std::vector<Step> steps = demo_steps(src);
  for (Step& s : steps) {  // the baseline cannot estimate tokens: give every step a count
    if (!s.input_tokens) s.input_tokens = static_cast<std::int64_t>((s.prompt->size() + 2) / 3);
  }
  const size_t n_steps = steps.size();
  Config rich_config = (*engine)->config();
  rich_config.workloads.at("default").rules_file = src + "/bench/rules/reads_ctx.lua";
  auto rich = Engine::open(std::move(rich_config));
  if (!rich.ok()) {
    std::cerr << rich.status().message() << "\n";
    return 1;
  }
  // The rule reads live figures: give its two models 64 answers each, with
  // the rate-limit headers a provider sends.
  for (int i = 0; i < 64; ++i) {
    RateLimits limits;
    limits.requests_left = 4999 - i;
    limits.tokens_left = 799'000 - 1'000 * i;
    limits.requests_reset = std::chrono::milliseconds(12);
    (*rich)->health().record_success("claude-haiku-4-5", std::chrono::milliseconds(300 + 3 * i), limits);
    (*rich)->health().record_success("claude-opus-4-1", std::chrono::milliseconds(900 + 7 * i), limits);
  }
  // And each of the trace's sessions has had a few turns, its cache warm.
  for (const Step& s : steps) {
    Usage usage;
    usage.input_tokens = 2'000;
    usage.cached_input_tokens = 6'000;
    usage.output_tokens = 300;
    (*rich)->sessions().record(s.session_id, "claude-haiku-4-5", usage, CacheFill::kExplicit);
  }
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::string(argv[i]) != "--profile") continue;
    const std::string what = argv[i + 1];
    size_t sink = 0;
    if (what == "bare") {
      BareLua bare(src + "/rules/default.lua");
      for (long k = 0; k < iterations; ++k) sink += bare.classify(steps[static_cast<size_t>(k) % n_steps]);
    } else {
      const Engine& profiled = what == "reads-ctx" ? **rich : **engine;
      for (long k = 0; k < iterations; ++k) {
        sink += profiled.decide("default", steps[static_cast<size_t>(k) % n_steps])->model.size();
      }
    }
    std::printf("%zu\n", sink % 10);
    return 0;
  }

  // 1. Engine vs bare Lua, one thread: each loop timed in this thread's CPU
  // time, the three loops taking turns, best of 7 each, so a busy machine
  // slows all of them alike and preemption counts in none.
  BareLua bare(src + "/rules/default.lua");
  size_t sink = 0;
  const auto timed = [&](auto&& one) {
    const double t0 = thread_cpu_seconds();
    for (long i = 0; i < iterations; ++i) sink += one(steps[static_cast<size_t>(i) % n_steps]);
    return thread_cpu_seconds() - t0;
  };
  double bare_s = 1e300, engine_s = 1e300, rich_s = 1e300;
  for (int round = 0; round < 7; ++round) {
    bare_s = std::min(bare_s, timed([&](const Step& s) { return bare.classify(s); }));
    engine_s = std::min(engine_s, timed([&](const Step& s) { return (*engine)->decide("default", s)->model.size(); }));
    rich_s = std::min(rich_s, timed([&](const Step& s) { return (*rich)->decide("default", s)->model.size(); }));
  }
  const double bare_ns = bare_s * 1e9 / static_cast<double>(iterations);
  const double engine_ns = engine_s * 1e9 / static_cast<double>(iterations);
  const double rich_ns = rich_s * 1e9 / static_cast<double>(iterations);

  // 2. Throughput on 1 and 2 threads.
  auto throughput = [&](int threads) {
    return best_of(3, [&] {
      std::atomic<bool> go{false};
      std::vector<std::thread> pool;
      std::atomic<size_t> total{0};
      for (int t = 0; t < threads; ++t) {
        pool.emplace_back([&, t] {
          while (!go.load()) {
          }
          size_t local = 0;
          for (long i = 0; i < iterations; ++i) {
            local += (*engine)->decide("default", steps[static_cast<size_t>(i + t * 7) % n_steps])->model.size();
          }
          total += local;
        });
      }
      const auto t0 = Clock::now();
      go.store(true);
      for (auto& th : pool) th.join();
      return seconds_since(t0);
    });
  };
  const double one_s = throughput(1);
  const double two_s = throughput(2);
  const double one_rate = static_cast<double>(iterations) / one_s;
  const double two_rate = 2.0 * static_cast<double>(iterations) / two_s;
  const double scaling = two_rate / one_rate;

  // 3. Counting an 8,000-token prompt: the demo's prompts, repeated until
  // o200k_base counts at least 8,000 tokens in them.
  ModelSpec counted_model;
  counted_model.provider = "openai";
  counted_model.model_id = "gpt-4o";
  counted_model.tokenizer = std::string(kTokenizerO200k);
  std::string prompt;
  std::int64_t prompt_tokens = 0;
  while (prompt_tokens < 8000) {
    for (const Step& s : steps) prompt += s.prompt.value_or(s.role) + "\n\n";
    Result<std::int64_t> n = count_text_tokens(kTokenizerO200k, prompt);
    if (!n.ok()) {
      std::cerr << n.status().message() << "\n";
      return 1;
    }
    prompt_tokens = *n;
  }
  ModelRequest request;
  request.messages.push_back(Message::of_text("user", prompt));
  const long counts = 500;
  std::string copy(prompt.size(), '\0');
  const double copy_s = best_of(5, [&] {
    const double t0 = thread_cpu_seconds();
    for (long i = 0; i < counts; ++i) {
      std::memcpy(copy.data(), prompt.data(), prompt.size());
      sink += static_cast<unsigned char>(copy[static_cast<size_t>(i) % copy.size()]);
    }
    return thread_cpu_seconds() - t0;
  });
  // Texts of 256 bytes or more are remembered by their bytes (tokens.h):
  // each count here gets a text no count has seen (its first 12 bytes a
  // serial number), then the same text again for the remembered figure.
  std::string& text = request.messages[0].content[0].text;
  long serial = 0;
  const auto fresh_text = [&] {
    char digits[24];
    std::snprintf(digits, sizeof digits, "%012ld", serial++);
    std::memcpy(text.data(), digits, 12);
  };
  const double count_s = best_of(5, [&] {
    double took = 0;
    for (long i = 0; i < counts; ++i) {
      fresh_text();
      const double t0 = thread_cpu_seconds();
      sink += static_cast<size_t>(*count_request_tokens(counted_model, request));
      took += thread_cpu_seconds() - t0;
    }
    return took;
  });
  const double remembered_s = best_of(5, [&] {
    const double t0 = thread_cpu_seconds();
    for (long i = 0; i < counts; ++i) sink += static_cast<size_t>(*count_request_tokens(counted_model, request));
    return thread_cpu_seconds() - t0;
  });
  // The same on a fresh thread each time: its piece cache starts empty.
  const double cold_s = best_of(5, [&] {
    double took = 0;
    fresh_text();
    std::thread([&] {
      const double t0 = thread_cpu_seconds();
      sink += static_cast<size_t>(*count_request_tokens(counted_model, request));
      took = thread_cpu_seconds() - t0;
    }).join();
    return took;
  });
  // Per 8,000 tokens, from the prompt's own count.
  const double per_8k = 8000.0 / static_cast<double>(prompt_tokens);
  const double count_us = count_s * 1e6 / static_cast<double>(counts) * per_8k;
  const double copy_us = copy_s * 1e6 / static_cast<double>(counts) * per_8k;
  const double cold_us = cold_s * 1e6 * per_8k;
  const double remembered_us = remembered_s * 1e6 / static_cast<double>(counts) * per_8k;

  if (json) {
    std::printf("{\"engine_ns\":%.1f,\"bare_lua_ns\":%.1f,\"ratio\":%.3f,"
                "\"reads_ctx_ns\":%.1f,\"reads_ctx_ratio\":%.3f,"
                "\"decisions_per_s_1_thread\":%.0f,\"decisions_per_s_2_threads\":%.0f,"
                "\"scaling_2_threads\":%.3f,\"count_8k_tokens_us\":%.1f,\"count_8k_tokens_cold_us\":%.1f,"
                "\"count_8k_tokens_remembered_us\":%.1f,"
                "\"copy_8k_tokens_us\":%.2f,"
                "\"count_to_copy_ratio\":%.0f,\"iterations\":%ld,\"sink\":%zu}\n",
                engine_ns, bare_ns, engine_ns / bare_ns, rich_ns, rich_ns / bare_ns, one_rate, two_rate, scaling,
                count_us, cold_us, remembered_us, copy_us,
                count_us / copy_us, iterations, sink % 10);
  } else {
    std::printf("decision cost (%zu demo steps, %ld iterations, CPU time, best of 7 taking turns)\n", n_steps,
                iterations);
    std::printf("  %-44s %10.1f ns\n", "bare lua_pcall of default.lua's classify", bare_ns);
    std::printf("  %-44s %10.1f ns  %6.3f x  (goal <= 1.5)\n", "Engine::decide, default.lua", engine_ns,
                engine_ns / bare_ns);
    std::printf("  %-44s %10.1f ns  %6.3f x  (goal <= 2)\n", "Engine::decide, reads health, prices, session", rich_ns,
                rich_ns / bare_ns);
    std::printf("\nthroughput\n");
    std::printf("  %-34s %10.0f /s\n", "1 thread", one_rate);
    std::printf("  %-34s %10.0f /s\n", "2 threads", two_rate);
    std::printf("  %-34s %10.3f x (goal >= 1.8)\n", "scaling", scaling);
    std::printf("\ntoken count, o200k_base, one thread (%zu bytes, %lld tokens; CPU time per 8,000 tokens, "
                "best of 5)\n",
                prompt.size(), static_cast<long long>(prompt_tokens));
    std::printf("  %-34s %10.2f us\n", "memcpy of the text (baseline)", copy_us);
    std::printf("  %-34s %10.1f us (goal < 1000)\n", "count_request_tokens", count_us);
    std::printf("  %-34s %10.1f us\n", "the same, empty piece cache", cold_us);
    std::printf("  %-34s %10.1f us\n", "the same text again (remembered)", remembered_us);
    std::printf("  %-34s %10.0f x\n", "ratio", count_us / copy_us);
  }
  return 0;
}
