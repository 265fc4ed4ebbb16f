// The workbench of `tpp experiment`: one output directory per experiment,
// holding results.json (every entry: a training run with its config, seed,
// steps, tokens, wall time, curve and held-out quality; or a measurement),
// the runs' own directories (OUT/runs/ID: checkpoints, metrics, model), and
// the tables and plots the experiment writes from the entries.
//
// A killed experiment resumes where it stopped: finished entries are read
// back from results.json, not repeated; an unfinished training run resumes
// from its last checkpoint (to the same loss curve; see train/trainer.h).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tpp/model/config.h"
#include "tpp/report/chart.h"
#include "tpp/train/data.h"

namespace tpp::experiment {

struct Options {
  std::string out;                // the experiment's directory
  std::vector<std::string> data;  // training text; the held-out split is every 10th block
  bool quick = false;             // small sizes: finishes in minutes (CI)
  int seeds = 0;                  // 0 = the experiment's default
  int threads = 0;                // 0 = all cores
  bool progress = true;
};

// The training recipe of a run (AdamW, warm-up then cosine decay to lr / 10).
struct Recipe {
  int64_t steps = 100, batch = 16, seq = 128;
  double lr = 2e-3;
  int64_t eval_tokens = 1 << 14;  // held-out tokens per evaluation during training
};

struct TrainRun {
  std::string id;       // unique within the experiment; the run's directory OUT/runs/ID
  ModelConfig config;   // a model from scratch ...
  std::string init;     // ... or from this model directory (uptraining)
  Recipe recipe;
  uint64_t seed = 1;
  nlohmann::json labels = nlohmann::json::object();  // what the tables group by
  // What the run depends on beyond its own settings (e.g. the entry of the
  // model it starts from): an entry or checkpoint made from other inputs is
  // not this run.
  nlohmann::json inputs;
};

// Mean and sample standard deviation (0 for one value).
struct Spread {
  double mean = 0, std = 0;
  int n = 0;
};
Spread spread(const std::vector<double>& v);

// Whether two variants differ beyond the seed spread: a[i] and b[i] share
// seed i (same initialisation stream and batch order), so the test is a
// two-sided paired t-test at 95 %. False for fewer than two seeds.
bool differs(const std::vector<double>& a, const std::vector<double>& b);

class Lab {
 public:
  // Opens (or creates) OUT and its results.json. A results.json written by
  // another experiment, or with other --quick / --data settings, is refused:
  // its entries would not be comparable.
  Lab(std::string name, Options options);

  const Options& options() const { return o_; }
  std::string path(const std::string& rel) const;  // OUT/rel

  // The entry `id`, or nullptr.
  const nlohmann::json* find(const std::string& id) const;

  // Trains the run unless results.json has it (made with the same settings
  // and inputs, else a tpp::Error names the difference); an unfinished run
  // resumes from its checkpoint when that was made the same way, else starts
  // over. Then evaluates the final model
  // on `eval_tokens` held-out tokens at the run's sequence length and records
  // the entry: labels, config, seed, steps, tokens, wall time (training time
  // over all invocations), loss curve (at most 200 points), validation curve,
  // final held-out loss and bits per byte.
  const nlohmann::json& train(const TrainRun& run, int64_t eval_tokens);

  // An entry computed by `make` unless results.json has it; a stored entry
  // made from other `inputs` is refused by name. (Entries are nodes of a
  // std::map-backed JSON object: the references stay valid as others are added.)
  const nlohmann::json& once(const std::string& id, const nlohmann::json& inputs,
                             const std::function<nlohmann::json()>& make);

  // Held-out loss and bits per byte of a model directory with windows of T tokens.
  nlohmann::json evaluate(const std::string& model_dir, int64_t T, int64_t max_tokens);

  // A line of progress on stderr (unless quiet).
  void say(const std::string& line) const;

  // Writes OUT/results.md.
  void write_markdown(const std::string& text) const;

 private:
  void save() const;
  const train::TextData& held_out();

  std::string name_;
  Options o_;
  nlohmann::json results_;
  std::unique_ptr<train::TextData> held_out_;
};

// One curve of several seeds' entries (`field`: "curve" or "val_curve", as
// [step, loss] rows): the mean at each point from step `from` on, with the
// seeds' range as its band.
report::Series seed_band(const std::string& name, const std::vector<const nlohmann::json*>& runs,
                         const std::string& field, double from);

// A Markdown table.
std::string markdown_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows);

}  // namespace tpp::experiment
