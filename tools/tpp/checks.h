// Ranges of numeric options, stated as the library checks them (the sampler's
// "top_p in (0, 1]", the trainer's "--beta1 in [0, 1)"), so the CLI accepts
// exactly the values the library accepts and refuses the others by the
// option's name before anything is loaded ("--top-p: 0 must be in (0,1]").
#pragma once

#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

namespace tpp::cli {

// A finite number in [lo, hi], either end open; hi = infinity for no upper bound.
inline CLI::Validator number_in(double lo, bool lo_open, double hi = std::numeric_limits<double>::infinity(),
                                bool hi_open = true) {
  const std::string desc = std::isinf(hi) ? fmt::format("{}{}", lo_open ? ">" : ">=", lo)
                                          : fmt::format("{}{},{}{}", lo_open ? "(" : "[", lo, hi, hi_open ? ")" : "]");
  return CLI::Validator(
      [=](std::string& s) -> std::string {
        char* end = nullptr;
        const double v = std::strtod(s.c_str(), &end);
        const bool ok = !s.empty() && end == s.c_str() + s.size() && std::isfinite(v) && (lo_open ? v > lo : v >= lo) &&
                        (hi_open ? v < hi : v <= hi);
        if (ok) return {};
        return std::isinf(hi) ? fmt::format("{} must be {} {}", s, lo_open ? ">" : ">=", lo)
                              : fmt::format("{} must be in {}", s, desc);
      },
      desc);
}
inline CLI::Validator at_least(double lo) { return number_in(lo, false); }
inline CLI::Validator above(double lo) { return number_in(lo, true); }
// For counts (CLI11's own PositiveNumber prints its range as 0.000000 to 1.8e308 spelled out).
inline CLI::Validator non_negative() { return at_least(0); }
inline CLI::Validator positive() { return above(0); }

// --kv-type: the KV cache's element type (tpp/model/kv_cache.h), 16-bit by
// default as in llama.cpp.
inline CLI::Option* add_kv_type_option(CLI::App& app, std::string& kv_type) {
  kv_type = "f16";
  return app.add_option("--kv-type", kv_type, "KV cache type: f32 | f16 | bf16 | q8_0 (34 bytes per 32 values)")
      ->check(CLI::IsMember({"f32", "f16", "bf16", "q8_0"}))
      ->capture_default_str();
}

}  // namespace tpp::cli
