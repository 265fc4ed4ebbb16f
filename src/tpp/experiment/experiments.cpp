#include "tpp/experiment/experiments.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "tpp/core/error.h"

namespace tpp::experiment {

const std::vector<std::string>& experiment_names() {
  static const std::vector<std::string> names = {"glu", "gqa", "positions", "kv-cache"};
  return names;
}

void run_experiment(const std::string& name, const Options& options) {
  void (*run)(Lab&) = name == "glu"         ? run_glu
                      : name == "gqa"       ? run_gqa
                      : name == "positions" ? run_positions
                      : name == "kv-cache"  ? run_kv_cache
                                            : nullptr;
  if (!run) fail("experiment: unknown name \"{}\", expected one of {}", name, fmt::join(experiment_names(), ", "));
  Lab lab(name, options);
  run(lab);
}

}  // namespace tpp::experiment
