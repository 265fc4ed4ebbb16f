// Token embedding with a scale (Gemma's sqrt(d)) and absolute positions
// (learned, sinusoidal, or none for RoPE models): forward against the formula
// of embedding.h in double, backward against finite differences in double,
// 16-bit tables on every ISA against the scalar ISA and double, and N threads
// against one.
#include <cmath>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/test_util.h"
#include "ops/op_test_util.h"
#include "tpp/core/dtype.h"
#include "tpp/ops/embedding.h"

namespace tpp::test {
namespace {

constexpr int64_t kVocab = 7, kMaxPos = 9;

struct EmbedCase {
  std::string name;
  int64_t d;
  EmbedParams p;
};

std::vector<EmbedCase> embed_cases() {
  return {
      {"rope_no_scale", 6, {1.0, PosEncoding::rope}},
      {"scaled_sqrt_d", 6, {std::sqrt(6.0), PosEncoding::none}},
      {"learned", 6, {1.0, PosEncoding::learned}},
      {"learned_scaled", 5, {std::sqrt(5.0), PosEncoding::learned}},
      {"sinusoidal", 6, {1.0, PosEncoding::sinusoidal}},
      {"sinusoidal_odd_d_scaled", 5, {2.0, PosEncoding::sinusoidal}},
  };
}

// Rows with repeated tokens (their gradients add) and positions out of order.
const std::vector<int32_t> kTokens = {3, 0, 6, 3, 2, 3, 5, 1};
const std::vector<int64_t> kPos = {0, 1, 2, 3, 8, 5, 4, 3};
const int64_t kN = int64_t(kTokens.size());

struct Tables {
  std::vector<double> E, P, r;  // E: [V, d]   P: [max_pos, d]   r: [N, d] loss projection
};
Tables make_tables(int64_t d, uint64_t stream) {
  return {normals(size_t(kVocab * d), stream), normals(size_t(kMaxPos * d), stream + 1, 0.3),
          normals(size_t(kN * d), stream + 2)};
}

// x[t] = E[token_t] * scale (+ P[pos_t] | + PE(pos_t)), Vaswani et al.'s PE:
// PE[pos, 2i] = sin(pos / 10000^(2i/d)), PE[pos, 2i+1] = cos(same angle).
std::vector<double> embed_reference(const EmbedCase& c, const Tables& t) {
  const int64_t d = c.d;
  std::vector<double> x(size_t(kN * d));
  for (int64_t n = 0; n < kN; ++n)
    for (int64_t i = 0; i < d; ++i) {
      double v = t.E[size_t(kTokens[size_t(n)] * d + i)] * c.p.scale;
      const int64_t pos = kPos[size_t(n)];
      if (c.p.pos == PosEncoding::learned) v += t.P[size_t(pos * d + i)];
      if (c.p.pos == PosEncoding::sinusoidal) {
        const double angle = double(pos) / std::pow(10000.0, double(i - i % 2) / double(d));
        v += i % 2 == 0 ? std::sin(angle) : std::cos(angle);
      }
      x[size_t(n * d + i)] = v;
    }
  return x;
}

// The op with tables stored as `dt` (f64 for double; f32, bf16 or f16 for float).
template <class R>
std::vector<R> run_forward(const EmbedCase& c, const Tables& t, ThreadPool& pool, DType dt,
                           const std::vector<int32_t>& tokens = kTokens, const std::vector<int64_t>& positions = kPos) {
  std::vector<double> e64 = t.E, p64 = t.P;
  std::vector<float> e32(t.E.begin(), t.E.end()), p32(t.P.begin(), t.P.end());
  std::vector<uint16_t> e16(t.E.size()), p16(t.P.size());
  auto as_matrix = [&](std::vector<double>& v64, std::vector<float>& v32, std::vector<uint16_t>& v16, int64_t rows) {
    const void* data = dt == DType::f64 ? static_cast<const void*>(v64.data())
                       : dt == DType::f32 ? static_cast<const void*>(v32.data())
                                          : static_cast<const void*>(v16.data());
    for (size_t i = 0; i < v16.size(); ++i) v16[i] = dt == DType::bf16 ? f32_to_bf16(v32[i]) : f32_to_f16(v32[i]);
    return MatrixRef{dt, data, rows, c.d};
  };
  const MatrixRef tok = as_matrix(e64, e32, e16, kVocab), pos = as_matrix(p64, p32, p16, kMaxPos);
  const int64_t N = int64_t(tokens.size());
  std::vector<R> x(size_t(N * c.d));
  embed_forward<R>(x.data(), tokens.data(), positions.data(), N, tok, c.p.pos == PosEncoding::learned ? &pos : nullptr,
                   c.p, pool);
  return x;
}

TEST(EmbeddingTest, ForwardMatchesFormula) {
  ThreadPool pool(1);
  for (const auto& c : embed_cases()) {
    const Tables t = make_tables(c.d, 1);
    const auto ref = embed_reference(c, t);
    // The sinusoidal table is rounded to f32 for every R (so the double graph
    // sees the table float does): 2^-25 for |PE| <= 1.
    EXPECT_TRUE(all_close(run_forward<double>(c, t, pool, DType::f64), ref, {4e-8, 1e-15})) << c.name;
    EXPECT_TRUE(all_close(run_forward<float>(c, t, pool, DType::f32), to_f32(ref), kF32Elementwise)) << c.name;
  }
  // Not vacuous: each encoding changes the result.
  const auto cases = embed_cases();
  const Tables t = make_tables(6, 1);
  const auto plain = run_forward<double>(cases[0], t, pool, DType::f64);
  for (size_t other : {1, 2, 4}) {
    EXPECT_FALSE(all_close(plain, embed_reference(cases[other], t), {1e-6, 1e-6})) << cases[other].name;
  }
}

TEST(EmbeddingTest, BackwardMatchesFiniteDifferences) {
  ThreadPool pool(1);
  // Linear in E and P: no kinks. The gradients accumulate (+=) into tables
  // that start nonzero, as with tied embeddings.
  for (const auto& c : embed_cases()) {
    Tables t = make_tables(c.d, 2);
    const auto dtok0 = normals(t.E.size(), 10), dpos0 = normals(t.P.size(), 11);
    auto dtok = dtok0, dpos = dpos0;
    embed_backward<double>(dtok.data(), dpos.data(), t.r.data(), kTokens.data(), kPos.data(), kN, c.d, c.p);
    for (size_t i = 0; i < dtok.size(); ++i) dtok[i] -= dtok0[i];
    for (size_t i = 0; i < dpos.size(); ++i) dpos[i] -= dpos0[i];
    auto loss = [&] { return dot(run_forward<double>(c, t, pool, DType::f64), t.r); };
    const auto fd_e = fd_grad(t.E, loss), fd_p = fd_grad(t.P, loss);
    EXPECT_TRUE(all_close(dtok, fd_e, kFdTol)) << c.name << " dtok";
    EXPECT_TRUE(all_close(dpos, fd_p, kFdTol)) << c.name << " dpos";  // zero unless learned
    EXPECT_TRUE(fails_when_perturbed(dtok, fd_e, kFdTol)) << c.name;
  }
}

class EmbeddingIsaTest : public ::testing::TestWithParam<kernels::Isa> {};

// f32 tables are copied, bf16/f16 ones widened by the table's kernels, which
// is exact: every ISA must match the scalar ISA bitwise. Against double (the
// widened table times the f64 scale, plus the f32-rounded PE) only the f32
// rounding of the scale and of the sum remains: f32 elementwise bound.
TEST_P(EmbeddingIsaTest, FloatMatchesScalarIsaAndDouble) {
  ThreadPool pool(2);
  for (const auto& c : embed_cases())
    for (DType dt : {DType::f32, DType::bf16, DType::f16}) {
      Tables t = make_tables(c.d, 3);
      const auto run = [&] { return run_forward<float>(c, t, pool, dt); };
      const auto simd = with_isa(GetParam(), run);
      EXPECT_TRUE(bitwise_equal(simd, with_isa(kernels::Isa::scalar, run))) << c.name << " " << dtype_name(dt);
      // The table as stored, widened exactly, in double.
      for (auto* v : {&t.E, &t.P})
        for (auto& e : *v)
          e = dt == DType::bf16 ? bf16_to_f32(f32_to_bf16(float(e)))
              : dt == DType::f16 ? f16_to_f32(f32_to_f16(float(e)))
                                 : double(float(e));
      EXPECT_TRUE(all_close(to_f64(simd), embed_reference(c, t), kF32Elementwise)) << c.name << " " << dtype_name(dt);
    }
}

INSTANTIATE_TEST_SUITE_P(AllIsas, EmbeddingIsaTest, ::testing::ValuesIn(kernels::supported_isas()),
                         isa_param_name);

TEST(EmbeddingTest, ThreadsBitwise) {
  // 60 rows in ranges of 16: every worker gets some.
  ThreadPool one(1), three(3);
  std::vector<int32_t> tokens;
  std::vector<int64_t> positions;
  for (int i = 0; i < 60; ++i) {
    tokens.push_back(int32_t(i * 5 % kVocab));
    positions.push_back(i % kMaxPos);
  }
  for (const auto& c : embed_cases()) {
    const Tables t = make_tables(c.d, 4);
    EXPECT_TRUE(bitwise_equal(run_forward<float>(c, t, one, DType::bf16, tokens, positions),
                              run_forward<float>(c, t, three, DType::bf16, tokens, positions)))
        << c.name;
  }
}

}  // namespace
}  // namespace tpp::test
