// Shared by the text-producing subcommands: sampling options, and printing a
// stream of decoded token bytes as whole UTF-8 characters.
#pragma once

#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>

#include "checks.h"
#include "tpp/core/utf8.h"
#include "tpp/infer/sampler.h"

namespace tpp::cli {

// The sampler's options with its ranges (Sampler's constructor checks the same);
// the defaults shown are those of `s` when this is called (generate and chat differ).
inline void add_sampling_options(CLI::App& app, SamplingParams& s) {
  app.add_option("--temp", s.temperature, "temperature; 0 = greedy")->check(at_least(0));
  app.add_option("--top-k", s.top_k, "top-k; 0 = off")->check(non_negative());
  app.add_option("--top-p", s.top_p, "top-p (nucleus); 1 = off")->check(number_in(0, true, 1, false));
  app.add_option("--min-p", s.min_p, "min-p; 0 = off")->check(number_in(0, false, 1, true));
  app.add_option("--repeat-penalty", s.repeat_penalty, "repetition penalty; 1 = off")->check(above(0));
  app.add_option("--repeat-last-n", s.repeat_last_n, "tokens the penalty looks back over")
      ->check(non_negative());
  app.add_option("--seed", s.seed, "sampling seed");
}

// Prints bytes as they come, holding back an incomplete character; invalid
// bytes print as U+FFFD, as Hugging Face's lossy decoding does.
class Utf8Printer {
 public:
  void add(const std::string& bytes) {
    pending_ += bytes;
    write(utf8::take_lossy(pending_, false));
  }
  void finish() { write(utf8::take_lossy(pending_, true)); }

 private:
  static void write(const std::string& s) {
    std::fwrite(s.data(), 1, s.size(), stdout);
    std::fflush(stdout);
  }
  std::string pending_;
};

}  // namespace tpp::cli
