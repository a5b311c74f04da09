// The JSONL ledger: one JSON object per line, appended with write(2) so a
// record is in the kernel when write() returns; flush() fsyncs it to disk.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>

#include <nlohmann/json.hpp>

#include "ledger/record_json.h"
#include "util/json_writer.h"

namespace switchboard {

namespace {

using nlohmann::json;
using nlohmann::ordered_json;  // decision lines keep their field (and meta) order

std::string errno_text(int err) { return std::strerror(err); }

// Owns the file descriptor of an open ledger file.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

class JsonlSink final : public LockedSink {
 public:
  JsonlSink(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  std::string name() const override { return "jsonl:" + path_; }

 protected:
  Status write_locked(const CostRecord& record) override { return append(cost_record_to_json(record)); }
  Status write_locked(const DecisionRecord& record) override { return append(decision_record_to_json(record)); }

 private:
  Status append(std::string line) {
    line += '\n';
    const char* p = line.data();
    size_t left = line.size();
    while (left > 0) {
      const ssize_t n = ::write(fd_.get(), p, left);
      if (n < 0) {
        if (errno == EINTR) continue;
        return Status::io_error(path_ + ": cannot append a record: " + errno_text(errno));
      }
      p += n;
      left -= static_cast<size_t>(n);
    }
    return Status();
  }

 protected:
  Status flush_locked() override {
    while (::fsync(fd_.get()) != 0) {
      if (errno == EINTR) continue;
      // fsync on a character device (e.g. a pipe or /dev/stdout) has nothing to sync.
      if (errno == EINVAL || errno == EROFS) return Status();
      return Status::io_error(path_ + ": cannot sync: " + errno_text(errno));
    }
    return Status();
  }

 private:
  std::string path_;
  Fd fd_;
};

// Parses `n` decimal digits at `s[at]`; -1 if any is not a digit.
int digits(std::string_view s, size_t at, size_t n) {
  int v = 0;
  for (size_t i = at; i < at + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return -1;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

Status field_error(std::string_view field, std::string_view what) {
  return Status::invalid_argument("ledger record field '" + std::string(field) + "' " + std::string(what));
}

}  // namespace

std::string format_utc_ms(std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  const auto ms = floor<milliseconds>(t);
  const auto day = floor<days>(ms);
  const year_month_day ymd{day};
  const hh_mm_ss<milliseconds> hms{ms - day};
  // Written digit by digit (once per ledger record, on the request's path).
  // system_clock's nanoseconds in 64 bits span the years 1677 to 2262: four
  // digits always.
  char out[] = "0000-00-00T00:00:00.000Z";
  const auto put = [&](int at, int width, unsigned value) {
    for (int i = at + width - 1; i >= at; --i, value /= 10) out[i] = static_cast<char>('0' + value % 10);
  };
  put(0, 4, static_cast<unsigned>(static_cast<int>(ymd.year())));
  put(5, 2, static_cast<unsigned>(ymd.month()));
  put(8, 2, static_cast<unsigned>(ymd.day()));
  put(11, 2, static_cast<unsigned>(hms.hours().count()));
  put(14, 2, static_cast<unsigned>(hms.minutes().count()));
  put(17, 2, static_cast<unsigned>(hms.seconds().count()));
  put(20, 3, static_cast<unsigned>(hms.subseconds().count()));
  return std::string(out, sizeof out - 1);
}

Result<std::chrono::system_clock::time_point> parse_utc_ms(std::string_view s) {
  using namespace std::chrono;
  // 0123456789012345678901234
  // 2026-11-01T12:34:56.789Z
  const auto bad = [&] {
    return Status::invalid_argument("'" + std::string(s) + "' is not a UTC time like 2026-11-01T12:34:56.789Z");
  };
  if (s.size() != 24 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' ||
      s[19] != '.' || s[23] != 'Z') {
    return bad();
  }
  const int y = digits(s, 0, 4), mo = digits(s, 5, 2), d = digits(s, 8, 2);
  const int h = digits(s, 11, 2), mi = digits(s, 14, 2), se = digits(s, 17, 2), ms = digits(s, 20, 3);
  if (y < 0 || mo < 0 || d < 0 || h < 0 || mi < 0 || se < 0 || ms < 0 || h > 23 || mi > 59 || se > 59) {
    return bad();
  }
  const year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)}, day{static_cast<unsigned>(d)}};
  if (!ymd.ok()) return bad();
  return system_clock::time_point(sys_days(ymd)) + hours(h) + minutes(mi) + seconds(se) + milliseconds(ms);
}

std::string cost_record_to_json(const CostRecord& r) {
  std::string out;
  out.reserve(640);
  JsonWriter w(out);
  w.integer("id", r.id)
      .string("time", format_utc_ms(r.time))
      .string("trace_id", r.trace_id)
      .string("parent_id", r.parent_id)
      .string("call_id", r.call_id)
      .string("workload", r.workload)
      .string("role", r.role)
      .string("tier", r.tier)
      .string("model", r.model)
      .string("provider", r.provider)
      .string("rules_version", r.rules_version)
      .string("catalog_version", r.catalog_version)
      .integer("latency_ms", r.latency_ms)
      .integer("input_tokens", r.usage.input_tokens)
      .integer("cached_input_tokens", r.usage.cached_input_tokens)
      .integer("cache_write_5m_tokens", r.usage.cache_write_5m_tokens)
      .integer("cache_write_1h_tokens", r.usage.cache_write_1h_tokens)
      .integer("output_tokens", r.usage.output_tokens)
      .integer("reasoning_tokens", r.usage.reasoning_tokens)
      .boolean("usage_estimated", r.usage_estimated)
      .integer("counted_input_tokens", r.counted_input_tokens)
      .integer("cost_micro_usd", r.cost)
      .string("status", to_string(r.status))
      .string("error", r.error)  // invalid UTF-8 (a provider's error text, say) is replaced, never thrown
      .strings("budget_scopes", r.budget_scopes)
      .integer("reserved_micro_usd", r.reserved)
      .integer("output_cap", r.output_cap)
      .boolean("output_cap_lowered", r.output_cap_lowered)
      .end();
  return out;
}

namespace {

// The decision's fields, as an object under `key`.
void write_decision(JsonWriter& w, std::string_view key, const Decision& d) {
  w.begin_object(key).string("workload", d.workload).string("rules_version", d.rules_version);
  w.string("tier", d.tier).string("model", d.model);
  if (d.reasoning == Reasoning::kDefault) {
    w.null("reasoning");
  } else {
    w.string("reasoning", to_string(d.reasoning));
  }
  if (d.reasoning_pinned) w.boolean("reasoning_pinned", true);  // only when set: older lines stay as they were
  w.integer("fanout", d.fanout).string("aggregate", d.aggregate);
  if (d.max_output_tokens) {
    w.integer("max_output_tokens", *d.max_output_tokens);
  } else {
    w.null("max_output_tokens");
  }
  w.string("reason", d.reason);
  if (d.error) {
    w.string("error", *d.error);
  } else {
    w.null("error");
  }
  w.boolean("requested", d.requested).integer("ctx_spent_micro_usd", d.context_spent);
  if (d.context_budget_left) {
    w.integer("ctx_budget_left_micro_usd", *d.context_budget_left);
  } else {
    w.null("ctx_budget_left_micro_usd");
  }
  w.integer("estimated_input_tokens", d.estimated_input_tokens)
      .integer("estimated_output_tokens", d.estimated_output_tokens)
      .integer("estimated_cost_micro_usd", d.estimated_cost)
      .end();
}

}  // namespace

std::string decision_record_to_json(const DecisionRecord& r) {
  std::string out;
  out.reserve(1024);
  JsonWriter w(out);
  w.string("record", "decision")
      .integer("id", r.id)
      .string("time", format_utc_ms(r.time))
      .string("trace_id", r.trace_id)
      .string("kind", to_string(r.kind))
      .raw("step", step_to_json(r.step));
  write_decision(w, "decision", r.decision);
  w.string("admission", to_string(r.admission));
  if (r.active) {
    write_decision(w, "active", *r.active);
    w.boolean("agrees", r.agrees);
  }
  if (r.judged) {
    const JudgedVerdict& v = *r.judged;
    w.begin_object("judged")
        .string("verdict", to_string(v.outcome))
        .string("reason", v.reason)
        .string("judge_model", v.judge_model)
        .string("routed_model", v.routed_model)
        .string("routed_call_id", v.routed_call_id)
        .string("target_tier", v.target_tier)
        .string("target_model", v.target_model)
        .string("shadow_trace_id", v.shadow_trace_id)
        .integer("routed_cost_micro_usd", v.routed_cost)
        .integer("target_cost_micro_usd", v.target_cost)
        .integer("judge_cost_micro_usd", v.judge_cost)
        .end();
  }
  w.end();
  return out;
}

Result<CostRecord> cost_record_from_json(std::string_view line) {
  const json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::invalid_argument("ledger record is not valid JSON");
  if (!j.is_object()) return Status::invalid_argument("ledger record must be a JSON object");
  CostRecord r;
  Status failed;
  const auto text = [&](const char* key, std::string& into) {
    if (!failed.ok()) return;
    const auto it = j.find(key);
    if (it == j.end() || !it->is_string()) {
      failed = field_error(key, "must be a string");
      return;
    }
    into = it->get<std::string>();
  };
  const auto integer = [&](const char* key, std::int64_t& into) {
    if (!failed.ok()) return;
    const auto it = j.find(key);
    if (it == j.end() || !it->is_number_integer()) {
      failed = field_error(key, "must be a whole number");
      return;
    }
    into = it->get<std::int64_t>();
  };
  std::string time, status;
  integer("id", r.id);
  text("time", time);
  text("trace_id", r.trace_id);
  text("parent_id", r.parent_id);
  text("call_id", r.call_id);
  text("workload", r.workload);
  text("role", r.role);
  text("tier", r.tier);
  text("model", r.model);
  text("provider", r.provider);
  text("rules_version", r.rules_version);
  text("catalog_version", r.catalog_version);
  integer("latency_ms", r.latency_ms);
  integer("input_tokens", r.usage.input_tokens);
  integer("cached_input_tokens", r.usage.cached_input_tokens);
  integer("cache_write_5m_tokens", r.usage.cache_write_5m_tokens);
  integer("cache_write_1h_tokens", r.usage.cache_write_1h_tokens);
  integer("output_tokens", r.usage.output_tokens);
  integer("reasoning_tokens", r.usage.reasoning_tokens);
  integer("cost_micro_usd", r.cost);
  text("status", status);
  text("error", r.error);
  if (!failed.ok()) return failed;
  // Lines written before the field existed have none: the provider's figures.
  if (const auto it = j.find("usage_estimated"); it != j.end()) {
    if (!it->is_boolean()) return field_error("usage_estimated", "must be true or false");
    r.usage_estimated = it->get<bool>();
  }
  // The budget fields, which lines written before them lack: no scopes, nothing reserved, no cap.
  if (const auto it = j.find("budget_scopes"); it != j.end()) {
    if (!it->is_array()) return field_error("budget_scopes", "must be an array of strings");
    for (const auto& scope : *it) {
      if (!scope.is_string()) return field_error("budget_scopes", "must be an array of strings");
      r.budget_scopes.push_back(scope.get<std::string>());
    }
  }
  for (const auto& [name, field] : {std::pair<const char*, std::int64_t*>{"reserved_micro_usd", &r.reserved},
                                    std::pair<const char*, std::int64_t*>{"output_cap", &r.output_cap}}) {
    if (const auto it = j.find(name); it != j.end()) {
      if (!it->is_number_integer()) return field_error(name, "must be an integer");
      *field = it->get<std::int64_t>();
    }
  }
  if (const auto it = j.find("output_cap_lowered"); it != j.end()) {
    if (!it->is_boolean()) return field_error("output_cap_lowered", "must be true or false");
    r.output_cap_lowered = it->get<bool>();
  }
  if (const auto it = j.find("counted_input_tokens"); it != j.end()) {
    if (!it->is_number_integer()) return field_error("counted_input_tokens", "must be a whole number");
    r.counted_input_tokens = it->get<std::int64_t>();
  }
  auto t = parse_utc_ms(time);
  if (!t.ok()) return field_error("time", t.status().message());
  r.time = *t;
  const auto s = parse_call_status(status);
  if (!s) return field_error("status", "'" + status + "' is not ok, error, fallback, refused_by_budget, cancelled or refused_by_rate_limit");
  r.status = *s;
  return r;
}

namespace {

// Reads one field of a JSON object into a typed value, remembering the first
// failure (named by its path, "decision.tier") so a parser reads straight
// through its fields and checks once.
class FieldReader {
 public:
  FieldReader(const ordered_json& object, std::string prefix) : j_(object), prefix_(std::move(prefix)) {}
  const Status& status() const { return failed_; }

  void text(const char* key, std::string& into) {
    if (const ordered_json* v = find(key, &ordered_json::is_string, "must be a string")) into = v->get<std::string>();
  }
  void integer(const char* key, std::int64_t& into) {
    if (const ordered_json* v = find(key, &ordered_json::is_number_integer, "must be a whole number")) into = v->get<std::int64_t>();
  }
  void flag(const char* key, bool& into) {
    if (const ordered_json* v = find(key, &ordered_json::is_boolean, "must be true or false")) into = v->get<bool>();
  }
  // A field that may be null (or absent): reset when so.
  void optional_text(const char* key, std::optional<std::string>& into) {
    into.reset();
    if (null(key)) return;
    std::string v;
    text(key, v);
    into = std::move(v);
  }
  void optional_integer(const char* key, std::optional<std::int64_t>& into) {
    into.reset();
    if (null(key)) return;
    std::int64_t v = 0;
    integer(key, v);
    into = v;
  }
  // A field absent from lines written before it existed keeps its default.
  void absent_or_flag(const char* key, bool& into) {
    if (j_.contains(key)) flag(key, into);
  }
  void fail(const char* key, const std::string& what) {
    if (failed_.ok()) failed_ = field_error(prefix_ + key, what);
  }

 private:
  bool null(const char* key) const {
    const auto it = j_.find(key);
    return it == j_.end() || it->is_null();
  }
  const ordered_json* find(const char* key, bool (ordered_json::*is)() const noexcept, const char* what) {
    if (!failed_.ok()) return nullptr;
    const auto it = j_.find(key);
    if (it == j_.end() || !((*it).*is)()) {
      failed_ = field_error(prefix_ + key, what);
      return nullptr;
    }
    return &*it;
  }

  const ordered_json& j_;
  std::string prefix_;
  Status failed_;
};

// The inverse of decision_json: `at` names the object in errors ("decision", "active").
Result<Decision> decision_from_json(const ordered_json& j, const std::string& at) {
  if (!j.is_object()) return field_error(at, "must be an object");
  FieldReader f(j, at + ".");
  Decision d;
  std::int64_t fanout = 1;
  f.text("workload", d.workload);
  f.text("rules_version", d.rules_version);
  f.text("tier", d.tier);
  f.text("model", d.model);
  std::optional<std::string> reasoning;
  f.optional_text("reasoning", reasoning);
  f.absent_or_flag("reasoning_pinned", d.reasoning_pinned);
  f.integer("fanout", fanout);
  f.text("aggregate", d.aggregate);
  f.optional_integer("max_output_tokens", d.max_output_tokens);
  f.text("reason", d.reason);
  f.optional_text("error", d.error);
  f.flag("requested", d.requested);
  f.integer("ctx_spent_micro_usd", d.context_spent);
  f.optional_integer("ctx_budget_left_micro_usd", d.context_budget_left);
  f.integer("estimated_input_tokens", d.estimated_input_tokens);
  f.integer("estimated_output_tokens", d.estimated_output_tokens);
  f.integer("estimated_cost_micro_usd", d.estimated_cost);
  if (fanout < 1 || fanout > std::numeric_limits<int>::max()) f.fail("fanout", "must be a positive count");
  d.fanout = static_cast<int>(fanout);
  if (reasoning) {
    const auto level = parse_reasoning(*reasoning);
    if (!level) f.fail("reasoning", "'" + *reasoning + "' is not low, medium or high");
    d.reasoning = level.value_or(Reasoning::kDefault);
  }
  if (!f.status().ok()) return f.status();
  return d;
}

}  // namespace

Result<DecisionRecord> decision_record_from_json(std::string_view line) {
  // ordered: the step's meta keeps the order it was written in.
  const ordered_json j = ordered_json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::invalid_argument("ledger record is not valid JSON");
  if (!j.is_object()) return Status::invalid_argument("ledger record must be a JSON object");
  if (const auto it = j.find("record"); it == j.end() || *it != "decision") {
    return field_error("record", "must be \"decision\"");
  }
  FieldReader f(j, "");
  DecisionRecord r;
  std::string time, kind, admission;
  f.integer("id", r.id);
  f.text("time", time);
  f.text("trace_id", r.trace_id);
  f.text("kind", kind);
  f.text("admission", admission);
  f.absent_or_flag("agrees", r.agrees);
  if (!f.status().ok()) return f.status();
  auto t = parse_utc_ms(time);
  if (!t.ok()) return field_error("time", t.status().message());
  r.time = *t;
  const auto k = parse_decision_kind(kind);
  if (!k) return field_error("kind", "'" + kind + "' is not rules, requested, shadow, eval or judged");
  r.kind = *k;
  const auto a = parse_admission_outcome(admission);
  if (!a) return field_error("admission", "'" + admission + "' is not admitted, rerouted, refused or not_admitted");
  r.admission = *a;
  const auto step = j.find("step");
  if (step == j.end() || !step->is_object()) return field_error("step", "must be an object");
  auto parsed_step = parse_step_json(step->dump());
  if (!parsed_step.ok()) return field_error("step", parsed_step.status().message());
  r.step = std::move(parsed_step).value();
  const auto decision = j.find("decision");
  if (decision == j.end()) return field_error("decision", "must be an object");
  auto d = decision_from_json(*decision, "decision");
  if (!d.ok()) return d.status();
  r.decision = std::move(d).value();
  if (const auto active = j.find("active"); active != j.end() && !active->is_null()) {
    auto parsed_active = decision_from_json(*active, "active");
    if (!parsed_active.ok()) return parsed_active.status();
    r.active = std::move(parsed_active).value();
  }
  if (const auto judged = j.find("judged"); judged != j.end() && !judged->is_null()) {
    if (!judged->is_object()) return field_error("judged", "must be an object");
    FieldReader g(*judged, "judged.");
    JudgedVerdict v;
    std::string verdict;
    g.text("verdict", verdict);
    g.text("reason", v.reason);
    g.text("judge_model", v.judge_model);
    g.text("routed_model", v.routed_model);
    g.text("routed_call_id", v.routed_call_id);
    g.text("target_tier", v.target_tier);
    g.text("target_model", v.target_model);
    g.text("shadow_trace_id", v.shadow_trace_id);
    g.integer("routed_cost_micro_usd", v.routed_cost);
    g.integer("target_cost_micro_usd", v.target_cost);
    g.integer("judge_cost_micro_usd", v.judge_cost);
    if (!g.status().ok()) return g.status();
    const auto outcome = parse_judged_outcome(verdict);
    if (!outcome) return field_error("judged.verdict", "'" + verdict + "' is not win, tie, loss, error or skipped");
    v.outcome = *outcome;
    r.judged = std::move(v);
  }
  return r;
}

Result<std::shared_ptr<LedgerSink>> open_jsonl_ledger(const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return Status::io_error(path + ": cannot open the JSONL ledger: " + errno_text(errno));
  return std::shared_ptr<LedgerSink>(std::make_shared<JsonlSink>(path, fd));
}

}  // namespace switchboard
