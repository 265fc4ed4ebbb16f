// tpp experiment NAME: the seeds' experiments, one command each.
#include <algorithm>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "checks.h"
#include "commands.h"
#include "tpp/core/error.h"
#include "tpp/experiment/experiments.h"

namespace tpp::cli {

Run add_experiment(CLI::App& app) {
  struct Opts {
    std::string name;
    experiment::Options e;
    bool quiet = false;
  };
  auto o = std::make_shared<Opts>();
  o->e.data = {"data/brown.txt"};
  app.add_option("name", o->name, fmt::format("the experiment: {}", fmt::join(experiment::experiment_names(), " | ")))
      ->required();
  app.add_flag("--quick", o->e.quick, "small sizes that finish in minutes (the figures are a smoke test, not results)");
  app.add_option("--out", o->e.out, "the experiment's directory: results.json, results.md, plots, runs/")
      ->default_str("experiments/NAME[-quick]");
  app.add_option("--data", o->e.data, "training text; the held-out split is every 10th block")->expected(1, -1);
  app.add_option("--seeds", o->e.seeds, "seeds per variant")->check(non_negative())->default_str("the experiment's");
  app.add_option("-t,--threads", o->e.threads, "threads; 0 = all cores")->check(non_negative());
  app.add_flag("-q,--quiet", o->quiet, "no progress output");
  return [o] {
    const auto& names = experiment::experiment_names();
    if (std::find(names.begin(), names.end(), o->name) == names.end())
      fail("experiment: unknown name \"{}\", expected one of {}", o->name, fmt::join(names, ", "));
    experiment::Options e = o->e;
    if (e.out.empty()) e.out = "experiments/" + o->name + (e.quick ? "-quick" : "");
    e.progress = !o->quiet;
    if (o->name != "kv-cache")
      for (const auto& f : e.data)
        TPP_CHECK(std::filesystem::exists(f),
                  "experiment: --data {}: no such file (the Brown corpus is installed by scripts/get_brown.sh; or "
                  "give any text file)",
                  f);
    experiment::run_experiment(o->name, e);
    fmt::print("{}: results.md, results.json and plots\n", e.out);
    return 0;
  };
}

}  // namespace tpp::cli
