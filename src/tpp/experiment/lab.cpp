#include "tpp/experiment/lab.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include <fmt/format.h>

#include "tpp/core/error.h"
#include "tpp/core/thread_pool.h"
#include "tpp/io/atomic_file.h"
#include "tpp/io/json_file.h"
#include "tpp/model/model.h"
#include "tpp/report/loss_curve.h"
#include "tpp/train/checkpoint.h"
#include "tpp/train/params.h"
#include "tpp/train/trainer.h"

namespace tpp::experiment {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// At most `n` points of a per-step series: the mean of each of n equal spans
// of steps (a noisy train loss stays readable), at the span's last step.
json thin_curve(const std::vector<std::pair<double, double>>& pts, size_t n) {
  json out = json::array();
  const size_t per = std::max<size_t>(1, (pts.size() + n - 1) / n);
  for (size_t i = 0; i < pts.size(); i += per) {
    const size_t end = std::min(pts.size(), i + per);
    double sum = 0;
    for (size_t k = i; k < end; ++k) sum += pts[k].second;
    out.push_back({pts[end - 1].first, sum / double(end - i)});
  }
  return out;
}

}  // namespace

Spread spread(const std::vector<double>& v) {
  Spread s;
  s.n = int(v.size());
  if (v.empty()) return s;
  for (double x : v) s.mean += x;
  s.mean /= double(v.size());
  if (v.size() > 1) {
    double ss = 0;
    for (double x : v) ss += (x - s.mean) * (x - s.mean);
    s.std = std::sqrt(ss / double(v.size() - 1));
  }
  return s;
}

Lab::Lab(std::string name, Options options) : name_(std::move(name)), o_(std::move(options)) {
  TPP_CHECK(!o_.out.empty(), "experiment {}: --out DIR is required", name_);
  std::error_code ec;
  fs::create_directories(o_.out, ec);
  if (ec) fail("{}: cannot create the experiment directory: {}", o_.out, ec.message());
  // The data by absolute path and size, so another directory or an edited file is noticed.
  json data = json::array();
  for (const auto& f : o_.data) {
    const bool there = fs::is_regular_file(f, ec);
    data.push_back({{"path", there ? fs::canonical(f, ec).string() : f},
                    {"bytes", there ? int64_t(fs::file_size(f, ec)) : int64_t(-1)}});
  }
  const json settings = {{"experiment", name_}, {"quick", o_.quick}, {"data", data}, {"seeds", o_.seeds}};
  const std::string file = path("results.json");
  if (fs::exists(file)) {
    results_ = io::read_json_file(file);
    TPP_CHECK(results_.is_object(), "{}: expected a JSON object", file);
    for (const auto& [key, value] : settings.items())
      TPP_CHECK(results_.value(key, json()) == value,
                "{}: \"{}\" is {} but this invocation has {}; its entries would not be comparable: use another --out "
                "or the same settings",
                file, key, results_.value(key, json()).dump(), value.dump());
    TPP_CHECK(results_.contains("entries") && results_["entries"].is_object(), "{}: \"entries\": expected an object",
              file);
  } else {
    results_ = settings;
    results_["entries"] = json::object();
  }
}

std::string Lab::path(const std::string& rel) const { return (fs::path(o_.out) / rel).string(); }

const json* Lab::find(const std::string& id) const {
  const auto& e = results_["entries"];
  const auto it = e.find(id);
  return it == e.end() ? nullptr : &*it;
}

void Lab::save() const { io::write_file_atomic(path("results.json"), results_.dump(1) + "\n"); }

void Lab::say(const std::string& line) const {
  if (o_.progress) std::fprintf(stderr, "[%s] %s\n", name_.c_str(), line.c_str());
}

void Lab::write_markdown(const std::string& text) const { io::write_file_atomic(path("results.md"), text); }

const train::TextData& Lab::held_out() {
  if (!held_out_) {
    TPP_CHECK(!o_.data.empty(), "experiment {}: --data FILE is required", name_);
    train::TextData all = train::load_text_files(o_.data), kept;
    held_out_ = std::make_unique<train::TextData>();
    train::split_train_val(all, kept, *held_out_);
  }
  return *held_out_;
}

json Lab::evaluate(const std::string& model_dir, int64_t T, int64_t max_tokens) {
  const Model model = load_model(model_dir);
  const auto layout = train::make_layout(model.config);
  const auto params = train::params_from_model(model, layout);
  ThreadPool pool(o_.threads);
  train::Graph<float> graph(model.config, layout);
  const auto r = train::evaluate(graph, params.data(), held_out(), T, std::max<int64_t>(1, 8192 / T), max_tokens, pool);
  return {{"loss", r.loss}, {"bpb", r.bits_per_byte}, {"tokens", r.tokens}, {"window", T}};
}

const json& Lab::once(const std::string& id, const json& inputs, const std::function<json()>& make) {
  if (const json* e = find(id)) {
    TPP_CHECK(e->value("inputs", json()) == inputs,
              "{}: entry \"{}\" was made from {}, but this experiment now has {}; its figures would not be "
              "comparable: use another --out (or remove the entry)",
              path("results.json"), id, e->value("inputs", json()).dump(), inputs.dump());
    return *e;
  }
  json entry = make();
  entry["inputs"] = inputs;
  results_["entries"][id] = std::move(entry);
  save();
  return results_["entries"][id];
}

const json& Lab::train(const TrainRun& run, int64_t eval_tokens) {
  // What makes the run: an entry or a checkpoint made otherwise is not this run.
  const Recipe& r = run.recipe;
  const json made = {{"steps", r.steps}, {"batch", r.batch}, {"seq", r.seq}, {"lr", r.lr}, {"seed", run.seed},
                     {"init", run.init}, {"config", run.init.empty() ? config_to_json(run.config) : json()},
                     {"inputs", run.inputs}};
  if (const json* e = find(run.id)) {
    const json had = e->value("run", json::object());
    for (const auto& [key, value] : made.items())
      TPP_CHECK(had.value(key, json()) == value,
                "{}: entry \"{}\" was made with {} {}, but this experiment asks for {}; its figures would not be "
                "comparable: use another --out (or remove the entry and runs/{})",
                path("results.json"), run.id, key, had.value(key, json()).dump(), value.dump(), run.id);
    return *e;
  }
  TPP_CHECK(!o_.data.empty(), "experiment {}: --data FILE is required", name_);
  const std::string dir = path("runs/" + run.id), stamp = path("runs/" + run.id + ".run.json");
  const auto t0 = std::chrono::steady_clock::now();
  std::error_code ec;
  const bool same = fs::exists(stamp, ec) && io::read_json_file(stamp) == made;
  if (train::has_checkpoint(dir) && same) {
    say(fmt::format("{}: resuming from its checkpoint", run.id));
    train::ResumeOptions ro;
    ro.out = dir;
    ro.threads = o_.threads;
    ro.progress = o_.progress;
    train::resume_training(ro);
  } else {
    if (train::has_checkpoint(dir)) say(fmt::format("{}: its checkpoint was made otherwise; starting over", run.id));
    fs::remove_all(dir, ec);  // so is a run killed before its first checkpoint
    fs::create_directories(dir, ec);
    io::write_file_atomic(stamp, made.dump(1) + "\n");
    say(fmt::format("{}: training {} steps of {} x {} tokens", run.id, r.steps, r.batch, r.seq));
    train::TrainOptions t;
    if (run.init.empty()) {
      t.config = path("runs/" + run.id + ".config.json");
      io::write_file_atomic(t.config, config_to_string(run.config));
    } else {
      t.init = run.init;
    }
    t.data = o_.data;
    t.out = dir;
    t.steps = r.steps;
    t.batch = r.batch;
    t.seq = r.seq;
    t.lr = r.lr;
    t.seed = run.seed;
    t.eval_tokens = r.eval_tokens;
    t.threads = o_.threads;
    t.progress = o_.progress;
    train::run_training(t);
  }
  report::write_loss_curve(dir);
  const double invocation_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::vector<std::pair<double, double>> loss;
  json val = json::array();
  double train_s = 0, tokens = 0;
  for (const auto& m : report::read_metrics(dir + "/metrics.jsonl")) {
    if (m.contains("loss")) {
      loss.emplace_back(m["step"].get<double>(), m["loss"].get<double>());
      train_s = m.value("elapsed_s", train_s);
      tokens = m.value("tokens", tokens);
    }
    if (m.contains("val_loss")) val.push_back({m["step"], m["val_loss"], m["val_bpb"]});
  }
  json entry = {{"run", made}, {"labels", run.labels}, {"seed", run.seed}, {"steps", r.steps}, {"batch", r.batch}, {"seq", r.seq},
                {"lr", r.lr}, {"tokens", tokens}, {"wall_s", train_s}, {"last_invocation_s", invocation_s},
                {"curve", thin_curve(loss, 200)}, {"val_curve", val}};
  const Model model = load_model(dir);
  entry["config"] = config_to_json(model.config);
  entry["params"] = model.config.n_params();
  if (!run.init.empty()) entry["init"] = run.init;
  entry["eval"] = evaluate(dir, r.seq, eval_tokens);
  say(fmt::format("{}: held-out {:.4f} nats/token, {:.4f} bits/byte ({:.0f} s)", run.id,
                  entry["eval"]["loss"].get<double>(), entry["eval"]["bpb"].get<double>(), train_s));
  results_["entries"][run.id] = std::move(entry);
  save();
  return results_["entries"][run.id];
}

bool differs(const std::vector<double>& a, const std::vector<double>& b) {
  TPP_CHECK(a.size() == b.size(), "experiment: {} and {} seeds cannot be paired", a.size(), b.size());
  const size_t n = a.size();
  if (n < 2) return false;
  std::vector<double> d(n);
  for (size_t i = 0; i < n; ++i) d[i] = a[i] - b[i];
  const Spread s = spread(d);
  // Two-sided 95 % critical values of Student's t for 1..10 degrees of freedom.
  constexpr double kT[] = {12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228};
  const double t = kT[std::min<size_t>(n - 1, std::size(kT)) - 1];
  return s.std == 0 ? s.mean != 0 : std::abs(s.mean) > t * s.std / std::sqrt(double(n));
}

report::Series seed_band(const std::string& name, const std::vector<const json*>& runs, const std::string& field,
                         double from) {
  report::Series s(name);
  if (runs.empty()) return s;
  const json& first = (*runs[0])[field];
  for (size_t i = 0; i < first.size(); ++i) {
    if (first[i][0].get<double>() < from) continue;
    std::vector<double> ys;
    for (const json* e : runs)
      if (i < (*e)[field].size()) ys.push_back((*e)[field][i][1].get<double>());
    s.x.push_back(first[i][0].get<double>());
    s.y.push_back(spread(ys).mean);
    s.lo.push_back(*std::min_element(ys.begin(), ys.end()));
    s.hi.push_back(*std::max_element(ys.begin(), ys.end()));
  }
  return s;
}

std::string markdown_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows) {
  std::string s = "|";
  for (const auto& h : header) s += " " + h + " |";
  s += "\n|";
  for (size_t i = 0; i < header.size(); ++i) s += i == 0 ? "---|" : "---:|";
  s += "\n";
  for (const auto& r : rows) {
    s += "|";
    for (const auto& c : r) s += " " + c + " |";
    s += "\n";
  }
  return s;
}

}  // namespace tpp::experiment
