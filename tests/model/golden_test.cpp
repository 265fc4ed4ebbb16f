// Whole-model logits against the independent float64 PyTorch reference
// (tools/golden/gen_models.py): one case per switch and per family shape.
// Tolerance: max abs 1e-4 for f32 compute (STYLE §8), the same for bf16/f16
// weights since both sides use the identical rounded weights.
#include <filesystem>

#include <gtest/gtest.h>

#include "common/test_util.h"
#include "model/model_test_util.h"
#include "tpp/kernels/api.h"

namespace tpp::test {
namespace {

class GoldenModelTest : public ::testing::TestWithParam<std::string> {};

std::string case_name(const ::testing::TestParamInfo<std::string>& info) {
  return std::filesystem::path(info.param).filename().string();
}

TEST_P(GoldenModelTest, LogitsMatchReference) {
  const Model model = load_model(GetParam());
  const Golden g = load_golden(GetParam());
  const auto logits = forward_logits(model, g.tokens);
  EXPECT_TRUE(model_logits_close(model, logits, g.logits));
  if (!g.logits_prefix.empty()) {
    // Dynamic NTK: the first orig tokens alone are unscaled.
    const size_t n = g.logits_prefix.size() / size_t(model.config.vocab_size);
    const auto prefix = forward_logits(model, std::vector<int32_t>(g.tokens.begin(), g.tokens.begin() + long(n)));
    EXPECT_TRUE(model_logits_close(model, prefix, g.logits_prefix));
  }
}

TEST_P(GoldenModelTest, LogitsMatchOnEverySimdPath) {
  const Model model = load_model(GetParam());
  const Golden g = load_golden(GetParam());
  for (auto isa : kernels::supported_isas()) {
    kernels::set_isa(isa);
    EXPECT_TRUE(model_logits_close(model, forward_logits(model, g.tokens), g.logits))
        << "isa " << kernels::isa_name(isa);
  }
  kernels::set_isa(kernels::supported_isas().back());
}

// The check can fail: one perturbed weight must break it.
TEST_P(GoldenModelTest, PerturbedWeightIsDetected) {
  Model model = load_model(GetParam());
  const Golden g = load_golden(GetParam());
  const auto w = model.weights.mutable_vec(TensorId::attn_norm, 0);
  ASSERT_FALSE(w.empty());
  w[1] += 0.5f;
  EXPECT_FALSE(model_logits_close(model, forward_logits(model, g.tokens), g.logits));
}

INSTANTIATE_TEST_SUITE_P(Cases, GoldenModelTest, ::testing::ValuesIn(golden_cases()), case_name);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(GoldenModelTest);

TEST(GoldenModelTest, GoldenCasesArePresent) {
  EXPECT_GE(golden_cases().size(), 20u) << "tests/golden/models is missing cases; run tools/golden/gen_models.py";
}

}  // namespace
}  // namespace tpp::test
