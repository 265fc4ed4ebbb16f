// Shared test helpers: one comparison routine that reports the worst element,
// tolerances per dtype, and paths to the source tree and the built CLI.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "tpp/core/error.h"

namespace tpp {
struct Model;
}

namespace tpp::test {

struct Tolerance {
  double atol = 0;
  double rtol = 0;
};

// Tolerances against an f64 reference (STYLE §8), tightened where measured.
inline constexpr Tolerance kF32Elementwise{1e-6, 1e-5};
inline constexpr Tolerance kF32Reduction{1e-5, 1e-4};
inline constexpr Tolerance kBf16{1e-3, 1e-2};
inline constexpr Tolerance kModelLogitsF32{1e-4, 0};  // whole tiny model, max abs
// Where the kernels in use round a model's activations (tpp/kernels/api.h:
// int8 kernels for q8_0 / q4_0 weights, bf16 dot kernels for bf16 weights),
// whole-model logits differ from an f32-activation reference by that
// rounding: bounded by NMSE instead (measured on the golden models: int8
// 3.2e-4 .. 8.7e-4, bf16 dot 3.2e-6 .. 5.8e-5; one perturbed norm weight
// gives 1.4e-4 and more).
inline constexpr double kModelLogitsInt8Nmse = 2e-3;
inline constexpr double kModelLogitsBf16DotNmse = 1e-4;

// "int8" or "bf16" when the kernel table in use rounds `model`'s activations
// (its matrices have packed copies the table multiplies), "" when it does not.
std::string activation_rounding(const Model& model);
// Logits of `model` against an f32-activation reference: kModelLogitsF32,
// or the NMSE bound of its activation rounding.
::testing::AssertionResult model_logits_close(const Model& model, std::span<const float> actual,
                                              std::span<const float> expected);

// |a - r| <= atol + rtol * |r| everywhere. On failure the message names the
// worst element (index, actual, expected), max abs and rel error, and NMSE.
::testing::AssertionResult all_close(std::span<const float> actual, std::span<const float> expected,
                                     Tolerance tol);
::testing::AssertionResult all_close(std::span<const double> actual,
                                     std::span<const double> expected, Tolerance tol);

// Normalised mean squared error sum((a-r)^2) / sum(r^2).
double nmse(std::span<const float> actual, std::span<const float> expected);

// Deterministic pseudo-random floats in [-scale, scale) (splitmix64; never std distributions).
std::vector<float> random_floats(size_t n, uint64_t seed, float scale = 1.0f);

// A fresh, empty directory under the build's temp area, removed at process exit.
std::string temp_dir(const std::string& name);

inline std::string source_path(const std::string& rel) { return std::string(TPP_SOURCE_DIR) + "/" + rel; }
inline std::string tpp_binary() { return TPP_TPP_BINARY; }

// A small byte-level BPE tokenizer (GPT-2's byte alphabet as ids 0-255, six
// merges ("the", " cat", ...) as 256-261, <|endoftext|> 262 as its EOS) written
// as DIR/tokenizer.json + DIR/tokenizer_config.json, for model directories
// that need a tokenizer of their own without the real vocabularies.
inline constexpr int kTestTokenizerVocab = 263;
void write_test_tokenizer(const std::string& dir);

// The message of the tpp::Error that f() throws; "" when it throws none.
template <class F>
std::string error_message(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// Whether f() throws a tpp::Error whose message contains `part`; the failure
// shows the message (or that nothing was thrown).
template <class F>
::testing::AssertionResult throws_error_containing(F&& f, std::string_view part) {
  const std::string msg = error_message(f);
  if (!msg.empty() && msg.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "expected an error containing \"" << part << "\", got "
                                       << (msg.empty() ? "none" : "\"" + msg + "\"");
}
// EXPECT_ERROR(expr, "part of the message")
#define EXPECT_ERROR(expr, part) EXPECT_TRUE(::tpp::test::throws_error_containing([&] { (void)(expr); }, part))

// Run a shell command, capture stdout+stderr, return the exit code.
int run_command(const std::string& command, std::string* output);

}  // namespace tpp::test
