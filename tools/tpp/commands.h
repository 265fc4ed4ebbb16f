// tpp CLI subcommands: each registers its options on a CLI11 subcommand and
// returns the function that runs it.
#pragma once

#include <functional>

#include <CLI/CLI.hpp>

namespace tpp::cli {

using Run = std::function<int()>;

Run add_init(CLI::App& app);
Run add_generate(CLI::App& app);
Run add_chat(CLI::App& app);
Run add_serve(CLI::App& app);
Run add_kv_cache(CLI::App& app);
Run add_bench(CLI::App& app);
Run add_config(CLI::App& app);
Run add_train(CLI::App& app);
Run add_eval(CLI::App& app);
Run add_perplexity(CLI::App& app);
Run add_prepare_brown(CLI::App& app);
Run add_tokenize(CLI::App& app);
Run add_convert(CLI::App& app);
Run add_quantize(CLI::App& app);
Run add_experiment(CLI::App& app);

}  // namespace tpp::cli
