// The seven FFN activations (relu, gelu, glu, bilinear, reglu, geglu, swiglu)
// with both GELU forms: forward against the torch.nn.functional formulas
// written out here in double, backward against finite differences in double,
// float on every ISA against the scalar ISA and double, and the documented
// aliasing.
#include <cmath>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/test_util.h"
#include "ops/op_test_util.h"
#include "tpp/ops/activation.h"

namespace tpp::test {
namespace {

std::vector<ActParams> act_cases() {
  std::vector<ActParams> cases;
  for (const auto& [kind, name] : EnumNames<Ffn>::table)
    for (auto approx : {GeluApprox::none, GeluApprox::tanh}) cases.push_back({kind, approx});
  return cases;
}

std::string name_of(const ActParams& p) {
  return std::string(enum_name(p.kind)) + "/" + std::string(enum_name(p.approx));
}

// torch.nn.functional: relu, gelu(approximate='none' | 'tanh'), sigmoid, silu.
double act_reference(double x, const ActParams& p) {
  switch (p.kind) {
    case Ffn::relu:
    case Ffn::reglu:
      return std::max(x, 0.0);
    case Ffn::gelu:
    case Ffn::geglu:
      if (p.approx == GeluApprox::tanh)
        return 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
      return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0)));
    case Ffn::glu:
      return 1 / (1 + std::exp(-x));
    case Ffn::bilinear:
      return x;
    case Ffn::swiglu:
      return x / (1 + std::exp(-x));
  }
  return NAN;
}

// Gated (Shazeer 2020): h = act(gate) * up; otherwise h = act(up).
std::vector<double> ffn_reference(const std::vector<double>& gate, const std::vector<double>& up,
                                  const ActParams& p) {
  std::vector<double> h(up.size());
  for (size_t i = 0; i < up.size(); ++i)
    h[i] = ffn_is_gated(p.kind) ? act_reference(gate[i], p) * up[i] : act_reference(up[i], p);
  return h;
}

// Inputs in [-3, -0.05] U [0.05, 3]: away from ReLU's kink at 0 by far more
// than the finite-difference step, and wide enough to reach GELU's and
// SiLU's curved regions on both sides.
struct Inputs {
  std::vector<double> gate, up, r;
};
Inputs make_inputs(size_t n, uint64_t stream) {
  return {away_from_zero(n, stream, 0.05, 3.0), away_from_zero(n, stream + 1, 0.05, 3.0), normals(n, stream + 2)};
}

template <class R>
struct ActResult {
  std::vector<R> h, dgate, dup;
};

template <class R>
ActResult<R> run_act(const ActParams& p, const Inputs& in) {
  const std::vector<R> gate(in.gate.begin(), in.gate.end()), up(in.up.begin(), in.up.end()),
      dh(in.r.begin(), in.r.end());
  const int64_t n = int64_t(up.size());
  ActResult<R> res{std::vector<R>(up.size()), std::vector<R>(up.size(), R(0)), std::vector<R>(up.size())};
  ffn_act_forward<R>(res.h.data(), gate.data(), up.data(), n, p);
  ffn_act_backward<R>(res.dgate.data(), res.dup.data(), dh.data(), gate.data(), up.data(), n, p);
  return res;
}

TEST(ActivationTest, ForwardMatchesFormula) {
  const Inputs in = make_inputs(64, 10);
  for (const auto& p : act_cases()) {
    const auto ref = ffn_reference(in.gate, in.up, p);
    EXPECT_TRUE(all_close(run_act<double>(p, in).h, ref, {1e-15, 1e-14})) << name_of(p);
    EXPECT_TRUE(all_close(run_act<float>(p, in).h, to_f32(ref), kF32Elementwise)) << name_of(p);
  }
  // Not vacuous: the two GELU forms differ by up to ~5e-4 on these inputs.
  const ActParams exact{Ffn::gelu, GeluApprox::none}, tanh_form{Ffn::gelu, GeluApprox::tanh};
  EXPECT_FALSE(all_close(run_act<double>(tanh_form, in).h, ffn_reference(in.gate, in.up, exact), {1e-6, 1e-6}));
}

TEST(ActivationTest, BackwardMatchesFiniteDifferences) {
  for (const auto& p : act_cases()) {
    Inputs in = make_inputs(16, 20);
    const auto an = run_act<double>(p, in);
    auto loss = [&] { return dot(run_act<double>(p, in).h, in.r); };
    const auto fd_up = fd_grad(in.up, loss);
    EXPECT_TRUE(all_close(an.dup, fd_up, kFdTol)) << name_of(p) << " dup";
    EXPECT_TRUE(fails_when_perturbed(an.dup, fd_up, kFdTol)) << name_of(p);
    if (ffn_is_gated(p.kind)) {
      const auto fd_gate = fd_grad(in.gate, loss);
      EXPECT_TRUE(all_close(an.dgate, fd_gate, kFdTol)) << name_of(p) << " dgate";
      EXPECT_TRUE(fails_when_perturbed(an.dgate, fd_gate, kFdTol)) << name_of(p);
    }
  }
}

TEST(ActivationTest, Aliasing) {
  // h may alias gate (gated) or up (not gated); dup may alias dh.
  const Inputs in = make_inputs(40, 30);
  for (const auto& p : act_cases()) {
    const auto ref = run_act<float>(p, in);
    auto gate = to_f32(in.gate), up = to_f32(in.up), dh = to_f32(in.r);
    float* h = ffn_is_gated(p.kind) ? gate.data() : up.data();
    ffn_act_forward<float>(h, gate.data(), up.data(), int64_t(up.size()), p);
    EXPECT_TRUE(bitwise_equal(ffn_is_gated(p.kind) ? gate : up, ref.h)) << name_of(p);
    gate = to_f32(in.gate);
    up = to_f32(in.up);
    std::vector<float> dgate(up.size());
    ffn_act_backward<float>(dgate.data(), dh.data(), dh.data(), gate.data(), up.data(), int64_t(up.size()), p);
    EXPECT_TRUE(bitwise_equal(dh, ref.dup)) << name_of(p);
    if (ffn_is_gated(p.kind)) {
      EXPECT_TRUE(bitwise_equal(dgate, ref.dgate)) << name_of(p);
    }
  }
}

class ActivationIsaTest : public ::testing::TestWithParam<kernels::Isa> {};

// Activations run no table kernel today; held to the f32 elementwise bound
// (atol 1e-6, rtol 1e-5) against the scalar ISA and against double.
TEST_P(ActivationIsaTest, FloatMatchesScalarIsaAndDouble) {
  const Inputs in = make_inputs(200, 40);
  for (const auto& p : act_cases()) {
    const auto scalar = with_isa(kernels::Isa::scalar, [&] { return run_act<float>(p, in); });
    const auto simd = with_isa(GetParam(), [&] { return run_act<float>(p, in); });
    const auto ref = run_act<double>(p, in);
    EXPECT_TRUE(all_close(simd.h, scalar.h, kF32Elementwise)) << name_of(p);
    EXPECT_TRUE(all_close(simd.dgate, scalar.dgate, kF32Elementwise)) << name_of(p);
    EXPECT_TRUE(all_close(simd.dup, scalar.dup, kF32Elementwise)) << name_of(p);
    EXPECT_TRUE(all_close(to_f64(simd.h), ref.h, kF32Elementwise)) << name_of(p);
    EXPECT_TRUE(all_close(to_f64(simd.dgate), ref.dgate, kF32Elementwise)) << name_of(p);
    EXPECT_TRUE(all_close(to_f64(simd.dup), ref.dup, kF32Elementwise)) << name_of(p);
  }
}

INSTANTIATE_TEST_SUITE_P(AllIsas, ActivationIsaTest, ::testing::ValuesIn(kernels::supported_isas()),
                         isa_param_name);

}  // namespace
}  // namespace tpp::test
