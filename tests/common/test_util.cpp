#include "common/test_util.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include <fmt/format.h>
#include <unistd.h>

#include "tpp/kernels/api.h"
#include "tpp/model/model.h"

namespace tpp::test {
namespace {

template <class T>
::testing::AssertionResult all_close_impl(std::span<const T> actual, std::span<const T> expected,
                                          Tolerance tol) {
  if (actual.size() != expected.size())
    return ::testing::AssertionFailure()
           << "size mismatch: actual " << actual.size() << ", expected " << expected.size();
  double max_abs = 0, max_rel = 0, worst_excess = -1, err2 = 0, ref2 = 0;
  size_t worst = 0, failures = 0;
  for (size_t i = 0; i < actual.size(); ++i) {
    const double a = actual[i], r = expected[i];
    const double diff = std::fabs(a - r);
    const double bound = tol.atol + tol.rtol * std::fabs(r);
    const bool bad = !(diff <= bound);  // NaN fails
    err2 += (a - r) * (a - r);
    ref2 += r * r;
    max_abs = std::max(max_abs, diff);
    if (r != 0) max_rel = std::max(max_rel, diff / std::fabs(r));
    const double excess = std::isnan(diff) ? INFINITY : diff - bound;
    if (bad) ++failures;
    if (excess > worst_excess) {
      worst_excess = excess;
      worst = i;
    }
  }
  const double nmse_value = ref2 > 0 ? err2 / ref2 : err2;
  if (failures == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << fmt::format(
             "{} of {} elements out of tolerance (atol {:g}, rtol {:g}); worst [{}]: actual {:.9g}, "
             "expected {:.9g}; max abs err {:.3g}, max rel err {:.3g}, NMSE {:.3g}",
             failures, actual.size(), tol.atol, tol.rtol, worst, double(actual[worst]),
             double(expected[worst]), max_abs, max_rel, nmse_value);
}

}  // namespace

::testing::AssertionResult all_close(std::span<const float> actual, std::span<const float> expected,
                                     Tolerance tol) {
  return all_close_impl(actual, expected, tol);
}
::testing::AssertionResult all_close(std::span<const double> actual,
                                     std::span<const double> expected, Tolerance tol) {
  return all_close_impl(actual, expected, tol);
}

std::string activation_rounding(const Model& model) {
  const auto& k = kernels::kernels();
  for (const auto& layer : model.weights.layers)
    for (const auto& m : layer.t) {
      if (!m.packed) continue;
      if (m.dtype == DType::bf16 && k.matmul_bf16_packed) return "bf16";
      if ((m.dtype == DType::q8_0 || m.dtype == DType::q4_0) && k.quantize_q8) return "int8";
    }
  return "";
}

::testing::AssertionResult model_logits_close(const Model& model, std::span<const float> actual,
                                              std::span<const float> expected) {
  const std::string rounding = activation_rounding(model);
  if (rounding.empty()) return all_close(actual, expected, kModelLogitsF32);
  if (actual.size() != expected.size())
    return ::testing::AssertionFailure() << "size mismatch: actual " << actual.size() << ", expected " << expected.size();
  const double bound = rounding == "int8" ? kModelLogitsInt8Nmse : kModelLogitsBf16DotNmse;
  const double e = nmse(actual, expected);
  if (e <= bound) return ::testing::AssertionSuccess();  // (NaN fails)
  return ::testing::AssertionFailure() << rounding << " activations: NMSE " << e << " > " << bound;
}

double nmse(std::span<const float> actual, std::span<const float> expected) {
  double err2 = 0, ref2 = 0;
  for (size_t i = 0; i < actual.size() && i < expected.size(); ++i) {
    err2 += (double(actual[i]) - expected[i]) * (double(actual[i]) - expected[i]);
    ref2 += double(expected[i]) * expected[i];
  }
  return ref2 > 0 ? err2 / ref2 : err2;
}

std::vector<float> random_floats(size_t n, uint64_t seed, float scale) {
  std::vector<float> out(n);
  uint64_t state = seed * 0x9e3779b97f4a7c15ull + 1;
  for (auto& v : out) {
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    v = scale * float(2.0 * double(z >> 11) * 0x1.0p-53 - 1.0);
  }
  return out;
}

std::string temp_dir(const std::string& name) {
  namespace fs = std::filesystem;
  static const fs::path root = [] {
    fs::path p = fs::temp_directory_path() / fmt::format("tpp_test_{}", ::getpid());
    fs::create_directories(p);
    std::atexit([] {
      std::error_code ec;
      fs::remove_all(fs::temp_directory_path() / fmt::format("tpp_test_{}", ::getpid()), ec);
    });
    return p;
  }();
  fs::path dir = root / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

void write_test_tokenizer(const std::string& dir) {
  // GPT-2's bytes_to_unicode: printable bytes stand for themselves, the others
  // for U+0100 onwards, in byte order.
  auto utf8 = [](uint32_t cp) {
    std::string s;
    if (cp < 0x80) {
      s += char(cp);
    } else {
      s += char(0xc0 | (cp >> 6));
      s += char(0x80 | (cp & 0x3f));
    }
    return s;
  };
  std::string vocab;
  uint32_t next = 256;
  for (uint32_t b = 0; b < 256; ++b) {
    const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
    std::string ch = utf8(printable ? b : next++);
    if (ch == "\"" || ch == "\\") ch = "\\" + ch;
    vocab += fmt::format("\"{}\": {}, ", ch, b);
  }
  vocab += R"("Ġt": 256, "he": 257, "Ġthe": 258, "at": 259, "Ġc": 260, "Ġcat": 261, "<|endoftext|>": 262)";
  std::FILE* f = std::fopen((dir + "/tokenizer.json").c_str(), "w");
  std::fprintf(f, R"({"model": {"type": "BPE", "vocab": {%s},
    "merges": ["Ġ t", "h e", "Ġt he", "a t", "Ġ c", "Ġc at"]},
  "added_tokens": [{"id": 262, "content": "<|endoftext|>", "special": true}],
  "normalizer": null,
  "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},
  "post_processor": {"type": "ByteLevel"},
  "decoder": {"type": "ByteLevel"}})",
               vocab.c_str());
  std::fclose(f);
  f = std::fopen((dir + "/tokenizer_config.json").c_str(), "w");
  std::fprintf(f, R"({"eos_token": "<|endoftext|>"})");
  std::fclose(f);
}

int run_command(const std::string& command, std::string* output) {
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return -1;
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
  const int status = ::pclose(pipe);
  if (output) *output = std::move(out);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace tpp::test
