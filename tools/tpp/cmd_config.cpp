#include <memory>
#include <string>

#include <fmt/format.h>

#include "commands.h"
#include "tpp/model/config.h"

namespace tpp::cli {

Run add_config(CLI::App& app) {
  auto path = std::make_shared<std::string>();
  app.add_option("--check", *path, "validate this config file and print it with every key resolved");
  return [path] {
    if (!path->empty()) {
      const ModelConfig c = load_config_file(*path);
      fmt::print("{}", config_to_string(c));
      fmt::print("# {} parameters, ffn width {}, head_dim {}\n", c.n_params(), c.ffn_width(),
                 c.head_dim_resolved());
      return 0;
    }
    for (const auto& key : config_key_docs())
      fmt::print("{:<18} {:<12} {}\n", key.name, key.default_value, key.doc);
    return 0;
  };
}

}  // namespace tpp::cli
