// Shared by the text-producing subcommands: sampling options, and printing a
// stream of decoded token bytes as whole UTF-8 characters.
#pragma once

#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>

#include "checks.h"
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

// Takes the printable UTF-8 prefix of `pending`: complete characters are
// kept, a character still missing bytes at the end waits for the next token
// (unless final), and invalid bytes become U+FFFD, as Hugging Face's lossy
// decoding does.
inline std::string take_utf8(std::string& pending, bool final) {
  std::string out;
  size_t i = 0;
  while (i < pending.size()) {
    const unsigned char c = static_cast<unsigned char>(pending[i]);
    const size_t n = c < 0x80 ? 1 : (c >= 0xc2 && c < 0xe0) ? 2 : (c >= 0xe0 && c < 0xf0) ? 3 : (c >= 0xf0 && c < 0xf5) ? 4 : 0;
    size_t have = 1;
    while (n > 1 && have < n && i + have < pending.size() &&
           (static_cast<unsigned char>(pending[i + have]) & 0xc0) == 0x80)
      ++have;
    if (n != 0 && have == n) {
      out.append(pending, i, n);
      i += n;
    } else if (n > 1 && i + have == pending.size() && !final) {
      break;  // the rest of this character comes with the next token
    } else {
      out += "\xEF\xBF\xBD";
      i += n > 1 ? have : 1;
    }
  }
  pending.erase(0, i);
  return out;
}

// Prints bytes as they come, holding back an incomplete character.
class Utf8Printer {
 public:
  void add(const std::string& bytes) {
    pending_ += bytes;
    write(take_utf8(pending_, false));
  }
  void finish() { write(take_utf8(pending_, true)); }

 private:
  static void write(const std::string& s) {
    std::fwrite(s.data(), 1, s.size(), stdout);
    std::fflush(stdout);
  }
  std::string pending_;
};

}  // namespace tpp::cli
