// Every SIMD path against the scalar reference and against float64, on odd
// shapes (K tails, N and M remainders, offset column ranges, ldy > M).
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "common/test_util.h"
#include "tpp/core/dtype.h"
#include "tpp/core/error.h"
#include "tpp/kernels/api.h"
#include "tpp/kernels/packed.h"
#include "tpp/kernels/scalar/kernels_scalar.h"

namespace tpp::test {
namespace {

using kernels::Isa;

class KernelsTest : public ::testing::TestWithParam<Isa> {
 protected:
  const kernels::Kernels& k() const { return kernels::kernels_for(GetParam()); }
};

std::string isa_param_name(const ::testing::TestParamInfo<Isa>& info) {
  return std::string(kernels::isa_name(info.param));
}

struct Shape {
  int64_t N, K, m0, m1, M, ldy;
};
const Shape kShapes[] = {{1, 1, 0, 1, 1, 1},       {1, 17, 0, 5, 5, 5},      {3, 33, 2, 11, 13, 16},
                         {4, 64, 0, 8, 8, 8},      {5, 100, 1, 10, 12, 20},  {9, 576, 3, 40, 48, 48},
                         {67, 129, 0, 37, 37, 41}, {130, 48, 5, 21, 24, 24}, {2, 1000, 0, 9, 9, 9}};

// f64 reference of y = x W^T over the column range; other entries untouched.
std::vector<double> reference(const std::vector<float>& x, const std::vector<float>& w, const Shape& s) {
  std::vector<double> y(static_cast<size_t>(s.N * s.ldy), -7.0);
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t m = s.m0; m < s.m1; ++m) {
      double acc = 0;
      for (int64_t i = 0; i < s.K; ++i) acc += double(x[size_t(n * s.K + i)]) * w[size_t(m * s.K + i)];
      y[size_t(n * s.ldy + m)] = acc;
    }
  return y;
}

void expect_close(const std::vector<float>& got, const std::vector<double>& ref, int64_t K, const char* what) {
  std::vector<double> g(got.begin(), got.end());
  // f32 accumulation over K terms of size ~1: error grows like sqrt(K) ulps.
  const double atol = 4e-7 * std::sqrt(double(K)) + 1e-6;
  EXPECT_TRUE(all_close(g, ref, {atol, 1e-5})) << what << " K=" << K;
}

// |y - f64 reference| <= rel * sum_k |x[n, k] w[m, k]| + atol for every
// output (entries outside the column range: the reference's fill value).
void expect_within_sum_bound(const std::vector<float>& y, const std::vector<float>& x, const std::vector<float>& w,
                             const Shape& s, double rel, double atol, const char* what) {
  const auto ref = reference(x, w, s);
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t m = 0; m < s.ldy; ++m) {
      double mag = 0;
      for (int64_t i = 0; m >= s.m0 && m < s.m1 && i < s.K; ++i)
        mag += std::abs(double(x[size_t(n * s.K + i)]) * w[size_t(m * s.K + i)]);
      const size_t at = size_t(n * s.ldy + m);
      EXPECT_NEAR(y[at], ref[at], rel * mag + atol) << what << " K " << s.K << " (" << n << ", " << m << ")";
    }
}

TEST_P(KernelsTest, MatmulF32MatchesFloat64) {
  for (const auto& s : kShapes) {
    const auto x = random_floats(size_t(s.N * s.K), 1), w = random_floats(size_t(s.M * s.K), 2);
    std::vector<float> y(static_cast<size_t>(s.N * s.ldy), -7.0f);
    k().matmul_f32(y.data(), x.data(), w.data(), s.N, s.K, s.m0, s.m1, s.ldy);
    expect_close(y, reference(x, w, s), s.K, "f32");
  }
}

// An output must not depend on the tile it falls in: row n of a 9-row call
// (4-row tiles and a tail), and column m of a column range that starts
// anywhere, equal the same dot product computed alone, bit for bit. (Batching
// sequences together, and training against inference, rely on it.)
TEST_P(KernelsTest, MatmulOutputsDoNotDependOnTheirTile) {
  const int64_t N = 9, M = 13, K = 100;
  const auto x = random_floats(size_t(N * K), 5), w = random_floats(size_t(M * K), 6);
  std::vector<uint16_t> wb(w.size());
  for (size_t i = 0; i < w.size(); ++i) wb[i] = f32_to_bf16(w[i]);
  for (int t = 0; t < 2; ++t) {
    auto run = [&](float* y, const float* xs, int64_t n, int64_t m0, int64_t m1) {
      if (t == 0) k().matmul_f32(y, xs, w.data(), n, K, m0, m1, M);
      else k().matmul_bf16(y, xs, wb.data(), n, K, m0, m1, M);
    };
    std::vector<float> all(size_t(N * M));
    run(all.data(), x.data(), N, 0, M);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t m = 0; m < M; ++m) {
        float one[13];
        run(one, x.data() + n * K, 1, m, m + 1);
        EXPECT_EQ(all[size_t(n * M + m)], one[m]) << (t ? "bf16" : "f32") << " row " << n << " column " << m;
      }
  }
}

TEST_P(KernelsTest, Matmul16BitWeightsMatchFloat64OfRoundedWeights) {
  for (const auto& s : kShapes) {
    const auto x = random_floats(size_t(s.N * s.K), 3), wf = random_floats(size_t(s.M * s.K), 4, 3.0f);
    std::vector<uint16_t> wb(wf.size()), wh(wf.size());
    std::vector<float> rb(wf.size()), rh(wf.size());
    for (size_t i = 0; i < wf.size(); ++i) {
      wb[i] = f32_to_bf16(wf[i]);
      wh[i] = f32_to_f16(wf[i]);
      rb[i] = bf16_to_f32(wb[i]);
      rh[i] = f16_to_f32(wh[i]);
    }
    std::vector<float> y(static_cast<size_t>(s.N * s.ldy), -7.0f);
    k().matmul_bf16(y.data(), x.data(), wb.data(), s.N, s.K, s.m0, s.m1, s.ldy);
    expect_close(y, reference(x, rb, s), 3 * s.K, "bf16");
    std::fill(y.begin(), y.end(), -7.0f);
    k().matmul_f16(y.data(), x.data(), wh.data(), s.N, s.K, s.m0, s.m1, s.ldy);
    expect_close(y, reference(x, rh, s), 3 * s.K, "f16");
  }
}

// The packed f32 kernel: each output one FMA chain in k order, so every
// level that has it gives the scalar definition's bits exactly, on odd shapes
// (N tails of every tile size, partial groups, column ranges off the group,
// ldy > M, K past the kernel's block of k), and a row's bits do not depend
// on how many rows share the call (decode equals prefill); accumulating
// continues the chains from y.
TEST_P(KernelsTest, PackedF32MatchesItsDefinitionBitForBit) {
  const bool here = k().matmul_f32_packed != nullptr;
  if (!here && GetParam() != Isa::scalar) GTEST_SKIP() << kernels::isa_name(GetParam()) << " has no packed f32 kernel";
  auto matmul = here ? k().matmul_f32_packed : &kernels::scalar::matmul_f32_packed;
  const Shape shapes[] = {{1, 1, 0, 1, 1, 1},        {2, 17, 0, 5, 5, 5},        {3, 33, 2, 11, 13, 16},
                          {4, 64, 0, 48, 48, 48},    {5, 100, 1, 50, 52, 60},    {9, 576, 3, 40, 48, 48},
                          {15, 129, 0, 37, 37, 41},  {23, 48, 5, 99, 100, 100},  {8, 1000, 16, 80, 96, 96},
                          {17, 2500, 7, 70, 70, 72}, {1, 3000, 0, 200, 200, 200}};
  for (const auto& s : shapes) {
    const auto x = random_floats(size_t(s.N * s.K), 3), w = random_floats(size_t(s.M * s.K), 4, 2.0f);
    std::vector<std::byte> packed(size_t(kernels::packed_bytes(DType::f32, s.M, s.K)));
    EXPECT_EQ(packed.size(), size_t((s.M + 15) / 16 * 16 * s.K * 4));
    std::byte* p = packed.data();
    kernels::pack_rows(DType::f32, p, w.data(), s.M, s.K);
    std::vector<float> y(static_cast<size_t>(s.N * s.ldy), -7.0f), want(y.size(), -7.0f);
    matmul(y.data(), x.data(), p, s.N, s.K, s.m0, s.m1, s.ldy, false);
    for (int64_t n = 0; n < s.N; ++n)
      for (int64_t m = s.m0; m < s.m1; ++m) {
        float acc = 0;
        for (int64_t i = 0; i < s.K; ++i) acc = std::fma(x[size_t(n * s.K + i)], w[size_t(m * s.K + i)], acc);
        want[size_t(n * s.ldy + m)] = acc;
      }
    EXPECT_EQ(y, want) << "N " << s.N << " K " << s.K << " columns [" << s.m0 << ", " << s.m1 << ")";
    // Against float64: a K-term f32 chain errs by at most K u sum|terms| (u = 2^-24).
    expect_within_sum_bound(y, x, w, s, double(s.K) * 0x1p-24, 0, "packed f32");
    for (int64_t n = 0; n < s.N; n += 5) {
      std::vector<float> one(size_t(s.ldy), -7.0f);
      matmul(one.data(), x.data() + n * s.K, p, 1, s.K, s.m0, s.m1, s.ldy, false);
      for (int64_t m = s.m0; m < s.m1; ++m) EXPECT_EQ(one[size_t(m)], y[size_t(n * s.ldy + m)]) << "row " << n << " alone";
    }
    // x given transposed (x^T with a row stride past N): the same bits.
    if (here || GetParam() == Isa::scalar) {
      auto matmul_xt = here ? k().matmul_f32_packed_xt : &kernels::scalar::matmul_f32_packed_xt;
      const int64_t ldx = s.N + 3;
      std::vector<float> xt(size_t(s.K * ldx), NAN), yt(y.size(), -7.0f);
      for (int64_t n = 0; n < s.N; ++n)
        for (int64_t i = 0; i < s.K; ++i) xt[size_t(i * ldx + n)] = x[size_t(n * s.K + i)];
      matmul_xt(yt.data(), xt.data(), ldx, p, s.N, s.K, s.m0, s.m1, s.ldy, false);
      EXPECT_EQ(yt, want) << "x transposed, N " << s.N << " K " << s.K;
    }
    // Accumulating continues each chain from y's value: the definition's bits
    // again, and the entries outside the column range stay as they were.
    std::vector<float> acc = y;
    matmul(acc.data(), x.data(), p, s.N, s.K, s.m0, s.m1, s.ldy, true);
    for (int64_t n = 0; n < s.N; ++n)
      for (int64_t m = 0; m < s.ldy; ++m) {
        const size_t at = size_t(n * s.ldy + m);
        float e = y[at];
        for (int64_t i = 0; m >= s.m0 && m < s.m1 && i < s.K; ++i) e = std::fma(x[size_t(n * s.K + i)], w[size_t(m * s.K + i)], e);
        ASSERT_EQ(acc[at], e) << "accumulate (" << n << ", " << m << ")";
      }
  }
}

// The softmax pieces: the maximum exactly, exp within 1e-6 relative of
// float64's, written to dst (in place too) or only summed (the same sum), on
// lengths with tails; a very negative input gives (nearly) zero, never NaN.
TEST_P(KernelsTest, MaxAndExpSumMatchFloat64) {
  const bool here = k().max_f32 && k().exp_sum_f32;
  if (!here && GetParam() != Isa::scalar) GTEST_SKIP() << kernels::isa_name(GetParam()) << " has no vector softmax kernels";
  auto max_f32 = here ? k().max_f32 : &kernels::scalar::max_f32;
  auto exp_sum = here ? k().exp_sum_f32 : &kernels::scalar::exp_sum_f32;
  for (int64_t n : {1, 15, 16, 33, 100, 49152}) {
    auto x = random_floats(size_t(n), uint64_t(n), 8.0f);
    x[size_t(n / 2)] = -1e4f;
    const float mx = max_f32(x.data(), n);
    EXPECT_EQ(mx, *std::max_element(x.begin(), x.end())) << n;
    std::vector<float> e(size_t(n), -1.0f);
    const float sum = exp_sum(e.data(), x.data(), mx, n);
    double want = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double r = std::exp(double(x[size_t(i)]) - mx);
      want += r;
      EXPECT_NEAR(e[size_t(i)], r, 1e-6 * r + 1e-37) << n << " at " << i;
    }
    // An f32 sum of n positive terms errs by at most (n - 1) u of the total.
    EXPECT_NEAR(sum, want, (1e-6 + double(n) * 0x1p-24) * want) << n;
    EXPECT_EQ(exp_sum(nullptr, x.data(), mx, n), sum) << n;
    exp_sum(x.data(), x.data(), mx, n);
    EXPECT_EQ(x, e) << n;
  }
}

// SwiGLU forward and backward within 1e-6 relative of float64 (plus a
// little absolute slack where the terms cancel), on lengths with tails, for
// gates from -100 to 100 (exp's clamped range: no NaN, sigmoid 0 or 1), and
// with the up-gradient written over dh as the block's backward does.
TEST_P(KernelsTest, SwigluMatchesFloat64) {
  if (!k().swiglu_f32 || !k().swiglu_backward_f32) GTEST_SKIP() << kernels::isa_name(GetParam()) << " has no vector SwiGLU";
  for (int64_t n : {1, 15, 16, 33, 1536}) {
    auto gate = random_floats(size_t(n), uint64_t(n) + 1, 12.0f);
    const auto up = random_floats(size_t(n), uint64_t(n) + 2, 3.0f), dh = random_floats(size_t(n), uint64_t(n) + 3, 2.0f);
    gate[0] = -100.0f;
    if (n > 1) gate[1] = 100.0f;
    const auto len = static_cast<size_t>(n);
    std::vector<float> h(len), dgate(len), dup(len);
    k().swiglu_f32(h.data(), gate.data(), up.data(), n);
    k().swiglu_backward_f32(dgate.data(), dup.data(), dh.data(), gate.data(), up.data(), n);
    auto in_place = dh;
    std::vector<float> dgate2(len);
    k().swiglu_backward_f32(dgate2.data(), in_place.data(), in_place.data(), gate.data(), up.data(), n);
    EXPECT_EQ(in_place, dup) << n;
    EXPECT_EQ(dgate2, dgate) << n;
    for (int64_t i = 0; i < n; ++i) {
      const double g = gate[size_t(i)], u = up[size_t(i)], d = dh[size_t(i)], sg = 1.0 / (1.0 + std::exp(-g));
      const double want_h = g * sg * u, want_dg = d * u * sg * (1.0 + g * (1.0 - sg)), want_du = d * g * sg;
      EXPECT_NEAR(h[size_t(i)], want_h, 1e-6 * std::abs(want_h) + 1e-30) << n << " at " << i;
      // act'(g) = s (1 + g (1 - s)) cancels near g = -1.28: slack relative to its terms.
      EXPECT_NEAR(dgate[size_t(i)], want_dg, 1e-6 * std::abs(d * u * sg) * (1.0 + std::abs(g)) + 1e-30) << n << " at " << i;
      EXPECT_NEAR(dup[size_t(i)], want_du, 1e-6 * std::abs(want_du) + 1e-30) << n << " at " << i;
    }
  }
}

// The bf16 backward's operand layouts from f32 in one pass, bit for bit the
// rounding of f32_to_bf16 followed by the scalar layout: odd row counts (the
// last pair's high half zero), partial groups and tiles, ld past the width,
// more columns than one panel, and special values (NaN, infinity,
// subnormal, a halfway case).
TEST_P(KernelsTest, Bf16OperandLayoutsMatchRoundThenPack) {
  if (!k().pack_bf16_transposed_f32 || !k().transpose_bf16_pairs)
    GTEST_SKIP() << kernels::isa_name(GetParam()) << " has no bf16 operand layouts";
  for (const auto& [rows, cols] : {std::pair<int64_t, int64_t>{1, 1}, {2, 16}, {7, 33}, {33, 40}, {64, 48}, {37, 1100}}) {
    const int64_t ld = cols + 3;
    auto src = random_floats(size_t(rows * ld), uint64_t(rows * 100 + cols), 4.0f);
    src[0] = std::nanf("");
    if (src.size() > 3) {
      src[1] = -INFINITY;
      src[2] = 1e-40f;
      src[3] = std::bit_cast<float>(0x3f808000u);  // halfway between two bf16: rounds to even
    }
    std::vector<uint16_t> rounded(src.size());
    for (size_t i = 0; i < src.size(); ++i) rounded[i] = f32_to_bf16(src[i]);
    // pack_bf16_transposed: the groups of 16 columns, each as its own call.
    const int64_t groups = (cols + kernels::kPackRows - 1) / kernels::kPackRows;
    // (packed_bytes wants an even row length; an odd one gets a zero pair half.)
    const auto bytes = static_cast<size_t>(groups * kernels::kPackRows * ((rows + 1) / 2) * 4);
    std::vector<std::byte> want(bytes, std::byte{0x5a}), got(bytes);
    kernels::pack_bf16_transposed(want.data(), rounded.data(), cols, rows, ld, 0, groups);
    for (int64_t g = 0; g < groups; ++g) k().pack_bf16_transposed_f32(got.data(), src.data(), cols, rows, ld, g, g + 1);
    EXPECT_EQ(std::memcmp(want.data(), got.data(), want.size()), 0) << rows << " x " << cols;
    // transpose_bf16_pairs: columns [3, cols) into rows 5 apart wider than the pairs.
    const int64_t pairs = (rows + 1) / 2, ldd = pairs + 5, m0 = cols > 3 ? 3 : 0;
    std::vector<uint32_t> pt(size_t((cols - m0) * ldd), 0xdeadbeefu);
    k().transpose_bf16_pairs(pt.data(), ldd, src.data(), ld, rows, m0, cols);
    for (int64_t m = m0; m < cols; ++m)
      for (int64_t j = 0; j < ldd; ++j) {
        uint32_t expect = 0xdeadbeefu;  // past the pairs: untouched
        if (j < pairs) {
          expect = rounded[size_t(2 * j * ld + m)];
          if (2 * j + 1 < rows) expect |= uint32_t(rounded[size_t((2 * j + 1) * ld + m)]) << 16;
        }
        ASSERT_EQ(pt[size_t((m - m0) * ldd + j)], expect) << rows << " x " << cols << " at " << m << ", " << j;
      }
  }
}

// The AdamW update within 1e-6 relative of float64 (the same operations on
// the same float inputs), on lengths with tails, decayed and not, with
// zero gradients and moments (v = 0: the step is m / eps), and with
// gradients of 1e4 (v near 1e7).
TEST_P(KernelsTest, AdamWMatchesFloat64) {
  if (!k().adamw_f32) GTEST_SKIP() << kernels::isa_name(GetParam()) << " has no vector AdamW";
  for (int64_t n : {1, 15, 16, 33, 1000}) {
    for (const float decay : {1.0f, 0.9999f}) {
      const auto len = static_cast<size_t>(n);
      auto p = random_floats(len, uint64_t(n) + 1, 1.0f), g = random_floats(len, uint64_t(n) + 2, 0.5f);
      auto m = random_floats(len, uint64_t(n) + 3, 0.1f), v = random_floats(len, uint64_t(n) + 4, 0.01f);
      for (auto& x : v) x = std::abs(x);
      g[0] = 0.0f;
      m[0] = 0.0f;
      v[0] = 0.0f;
      if (n > 1) g[1] = 1e4f;
      const kernels::AdamWCoeffs c{0.9f, 0.95f, 1e-3f / 0.271f, 1.0f / std::sqrt(0.1426f), 1e-8f, decay};
      const auto p0 = p, g0 = g, m0 = m, v0 = v;
      k().adamw_f32(p.data(), g.data(), m.data(), v.data(), n, c);
      EXPECT_EQ(g, g0);
      for (size_t i = 0; i < len; ++i) {
        const double gi = g0[i], mi = double(c.b1) * m0[i] + (1.0 - double(c.b1)) * gi;
        const double vi = double(c.b2) * v0[i] + (1.0 - double(c.b2)) * gi * gi;
        const double pi = double(p0[i]) * c.decay - double(c.step) * mi / (std::sqrt(vi) * c.inv_sqrt_bc2 + c.eps);
        // m's two terms may cancel: slack relative to them.
        EXPECT_NEAR(m[i], mi, 1e-6 * (std::abs(m0[i]) + std::abs(gi) * (1.0 - double(c.b1))) + 1e-30)
            << n << " at " << i;
        EXPECT_NEAR(v[i], vi, 1e-6 * std::abs(vi) + 1e-30) << n << " at " << i;
        // p - update: slack relative to both terms (they may cancel).
        EXPECT_NEAR(p[i], pi, 1e-6 * (std::abs(p0[i]) + std::abs(pi - p0[i] * double(c.decay))) + 1e-30)
            << n << " at " << i;
      }
    }
  }
}

// The bf16 dot kernels: activations rounded to bf16 bit for bit as
// f32_to_bf16 rounds them (NaN, infinities, halfway cases, subnormals), and
// the packed matmul against float64 over the rounded operands (the scalar
// definition, and every level that has the kernel, on odd shapes: N tails,
// partial groups of 16 rows, column ranges off the group, ldy > M).
TEST_P(KernelsTest, Bf16DotKernelsMatchTheRoundedOperandsInFloat64) {
  using kernels::scalar::matmul_bf16_packed;
  const bool here = k().to_bf16 && k().matmul_bf16_packed;
  auto to_bf16 = here ? k().to_bf16 : kernels::scalar::to_bf16;
  auto matmul = here ? k().matmul_bf16_packed : &matmul_bf16_packed;
  if (!here && GetParam() != Isa::scalar) GTEST_SKIP() << kernels::isa_name(GetParam()) << " has no bf16 dot kernels";
  std::vector<float> special = random_floats(37, 9, 1e3f);
  for (float v : {0.0f, -0.0f, 1.0f + 0x1p-8f, 1.0f + 0x1p-8f + 0x1p-23f, 1.0f + 3 * 0x1p-8f, 0x1p-140f, -0x1p-133f,
                  3.4e38f, INFINITY, -INFINITY, NAN})
    special.push_back(v);
  std::vector<uint16_t> got(special.size());
  to_bf16(got.data(), special.data(), int64_t(special.size()));
  for (size_t i = 0; i < special.size(); ++i) EXPECT_EQ(got[i], f32_to_bf16(special[i])) << special[i];

  const Shape shapes[] = {{1, 2, 0, 1, 1, 1},       {1, 64, 0, 40, 40, 40},    {3, 96, 5, 30, 33, 40},
                          {7, 128, 16, 64, 64, 64}, {13, 576, 1, 49, 50, 52},  {1, 1000, 3, 100, 100, 100},
                          // Prefill tiles over several groups at once, and every row tail.
                          {15, 200, 0, 96, 96, 96}, {22, 64, 3, 130, 130, 130},
                          // Rows long enough to run in blocks of k (a vocabulary-long K), the last block partial.
                          {8, 20000, 5, 40, 40, 41}, {1, 16386, 0, 70, 70, 70}};
  for (const auto& s : shapes) {
    const auto x = random_floats(size_t(s.N * s.K), 3), wf = random_floats(size_t(s.M * s.K), 4, 3.0f);
    std::vector<uint16_t> wb(wf.size()), xb(x.size());
    std::vector<float> rw(wf.size()), rx(x.size());
    for (size_t i = 0; i < wf.size(); ++i) rw[i] = bf16_to_f32(wb[i] = f32_to_bf16(wf[i]));
    for (size_t i = 0; i < x.size(); ++i) rx[i] = bf16_to_f32(f32_to_bf16(x[i]));
    to_bf16(xb.data(), x.data(), int64_t(x.size()));
    std::vector<std::byte> packed(size_t(kernels::packed_bytes(DType::bf16, s.M, s.K)));
    EXPECT_EQ(packed.size(), size_t((s.M + 15) / 16 * 16 * s.K * 2));
    kernels::pack_rows(DType::bf16, packed.data(), wb.data(), s.M, s.K);
    std::vector<float> y(static_cast<size_t>(s.N * s.ldy), -7.0f);
    matmul(y.data(), xb.data(), packed.data(), s.N, s.K, s.m0, s.m1, s.ldy, false);
    // accumulate: y + the same sum (one block of k: exactly 2y; blocks of a
    // long row are added to y one by one), columns outside [m0, m1) untouched.
    auto y2 = y;
    matmul(y2.data(), xb.data(), packed.data(), s.N, s.K, s.m0, s.m1, s.ldy, true);
    for (int64_t n = 0; n < s.N; ++n)
      for (int64_t m = 0; m < s.ldy; ++m) {
        const size_t at = size_t(n * s.ldy + m);
        if (m < s.m0 || m >= s.m1) EXPECT_EQ(y2[at], -7.0f) << n << ", " << m;
        else if (s.K <= 16384) EXPECT_EQ(y2[at], 2 * y[at]) << n << ", " << m;
        else EXPECT_NEAR(y2[at], 2 * y[at], 1e-5 * std::abs(y[at]) + 1e-3) << n << ", " << m;
      }
    if (s.K <= 16384) {
      expect_close(y, reference(rx, rw, s), 3 * s.K, "bf16 dot");
      continue;
    }
    // Long rows: f32 rounding of a K-term sum, bounded statistically by
    // 4 sqrt(K) ulps of the sum of |terms| (a fixed atol does not scale).
    expect_within_sum_bound(y, rx, rw, s, 4 * 0x1p-24 * std::sqrt(double(s.K)), 1e-6, "bf16 dot, long rows");
  }
}

// f32 packing on every level (the AVX-512 levels transpose 16 x 16 tiles in
// registers, the others loop) gives the layout packed.h states: element
// (r, k) of group g at chunk k, lane r; zero lanes past the last row. Odd
// row counts and K off the tile; pack_f32_transposed of the transpose too.
TEST(PackF32Test, EveryLevelGivesTheStatedLayout) {
  for (auto [M, K] : {std::pair<int64_t, int64_t>{1, 1}, {16, 16}, {17, 5}, {37, 40}, {50, 97}}) {
    const auto w = random_floats(size_t(M * K), 13, 2.0f);
    const int64_t groups = (M + 15) / 16;
    std::vector<float> want(size_t(groups * 16 * K), 0.0f);
    for (int64_t m = 0; m < M; ++m)
      for (int64_t k = 0; k < K; ++k) want[size_t((m / 16) * 16 * K + 16 * k + m % 16)] = w[size_t(m * K + k)];
    for (auto isa : kernels::supported_isas()) {
      kernels::set_isa(isa);
      std::vector<float> got(want.size(), NAN);
      kernels::pack_rows(DType::f32, reinterpret_cast<std::byte*>(got.data()), w.data(), M, K);
      EXPECT_EQ(got, want) << kernels::isa_name(isa) << " " << M << " x " << K;
    }
    kernels::set_isa(kernels::supported_isas().back());
    // The transpose of w with a row stride past M, packed group by group.
    const int64_t ld = M + 3;
    std::vector<float> wt(size_t(K * ld), NAN), got(want.size(), NAN);
    for (int64_t m = 0; m < M; ++m)
      for (int64_t k = 0; k < K; ++k) wt[size_t(k * ld + m)] = w[size_t(m * K + k)];
    for (int64_t g = groups; g > 0; --g)
      kernels::pack_f32_transposed(reinterpret_cast<std::byte*>(got.data()), wt.data(), M, K, ld, g - 1, g);
    EXPECT_EQ(got, want) << "transposed " << M << " x " << K;
  }
}

// The transposed bf16 packing (training's W^T and x^T) gives the bytes
// pack_rows gives for the transposed matrix, group range by group range,
// with a row stride past the width; an odd K pads one zero column.
TEST(PackBf16Test, TransposedPackingMatchesPackingTheTranspose) {
  for (auto [M, K] : {std::pair<int64_t, int64_t>{1, 2}, {16, 8}, {37, 22}, {50, 7}, {3, 33}}) {
    const auto w = random_floats(size_t(M * K), 11, 2.0f);
    const int64_t Kp = K + (K & 1), ld = M + 3;
    // Want: pack_rows of w [M, K] (zero-padded to Kp); input: w^T [K, M] with row stride ld.
    std::vector<uint16_t> b(size_t(M * Kp), 0), wt(size_t(K * ld), 0xffff);
    for (int64_t m = 0; m < M; ++m)
      for (int64_t k = 0; k < K; ++k) wt[size_t(k * ld + m)] = b[size_t(m * Kp + k)] = f32_to_bf16(w[size_t(m * K + k)]);
    std::vector<std::byte> want(size_t(kernels::packed_bytes(DType::bf16, M, Kp)));
    kernels::pack_rows(DType::bf16, want.data(), b.data(), M, Kp);
    std::vector<std::byte> got(want.size(), std::byte{0x5a});
    for (int64_t g = (M + 15) / 16; g > 0; --g) kernels::pack_bf16_transposed(got.data(), wt.data(), M, K, ld, g - 1, g);
    EXPECT_EQ(got, want) << M << " x " << K;
  }
}

// y[n, m] (+)= sum_k x[n, k] w[k, m] with row strides larger than the
// widths, column ranges that start and end off the vector width, K blocks.
TEST_P(KernelsTest, GemmNnAndTnMatchFloat64AndAccumulate) {
  struct NnShape {
    int64_t N, K, m0, m1, ldx, ldw, ldy;
  };
  const NnShape shapes[] = {{1, 1, 0, 1, 1, 1, 1},      {3, 0, 0, 5, 1, 5, 5},        {7, 5, 2, 19, 6, 20, 21},
                            {8, 32, 0, 32, 32, 32, 32}, {13, 300, 3, 50, 301, 64, 55}, {9, 17, 0, 16, 17, 16, 16},
                            {17, 600, 5, 77, 600, 80, 80}};
  for (const auto& s : shapes) {
    for (bool transposed : {false, true})
    for (bool accumulate : {false, true}) {
      // TN reads element (n, k) of x at x[k*ldx + n]: ldx is then at least N.
      const int64_t ldx = transposed ? s.N + 3 : s.ldx;
      auto xat = [&](int64_t n, int64_t i) { return transposed ? size_t(i * ldx + n) : size_t(n * ldx + i); };
      const auto x = random_floats(size_t(std::max<int64_t>(s.N, s.K) * (ldx + 1)) + 1, 11), w = random_floats(size_t(std::max<int64_t>(s.K, 1) * s.ldw), 12);
      const auto y0 = random_floats(size_t(s.N * s.ldy), 13);
      auto y = y0;
      (transposed ? k().gemm_tn_f32 : k().gemm_nn_f32)(y.data(), x.data(), w.data(), s.N, s.K, s.m0, s.m1, ldx,
                                                       s.ldw, s.ldy, accumulate);
      for (int64_t n = 0; n < s.N; ++n)
        for (int64_t m = 0; m < s.ldy; ++m) {
          const size_t at = size_t(n * s.ldy + m);
          if (m < s.m0 || m >= s.m1) {
            EXPECT_EQ(y[at], y0[at]) << "wrote outside the column range at n=" << n << " m=" << m;
            continue;
          }
          double ref = accumulate ? y0[at] : 0.0, magnitude = std::abs(ref);
          for (int64_t i = 0; i < s.K; ++i) {
            const double term = double(x[xat(n, i)]) * w[size_t(i * s.ldw + m)];
            ref += term;
            magnitude += std::abs(term);
          }
          // Sequential f32 sums: rounding grows like eps * sqrt(K) * sum |terms|.
          EXPECT_NEAR(y[at], ref, 1e-7 * magnitude * std::sqrt(double(s.K)) + 1e-6)
              << "N=" << s.N << " K=" << s.K << " m=" << m << (transposed ? " TN" : " NN");
        }
    }
  }
}

TEST_P(KernelsTest, VectorKernelsMatchScalar) {
  const auto& ref = kernels::kernels_for(Isa::scalar);
  for (int64_t n : {0, 1, 7, 8, 15, 16, 17, 31, 33, 64, 100, 1023}) {
    const auto a = random_floats(size_t(n) + 1, 5), b = random_floats(size_t(n) + 1, 6);
    EXPECT_NEAR(k().dot_f32(a.data(), b.data(), n), ref.dot_f32(a.data(), b.data(), n), 1e-5 * (1 + n / 64.0));
    auto y1 = a, y2 = a;
    k().axpy_f32(y1.data(), 0.37f, b.data(), n);
    ref.axpy_f32(y2.data(), 0.37f, b.data(), n);
    EXPECT_TRUE(all_close(y1, y2, {1e-7, 1e-6})) << n;
    EXPECT_EQ(y1[size_t(n)], a[size_t(n)]) << "wrote past the end, n=" << n;
    k().scale_f32(y1.data(), -1.5f, n);
    ref.scale_f32(y2.data(), -1.5f, n);
    EXPECT_TRUE(all_close(y1, y2, {1e-7, 1e-6})) << n;
    std::vector<uint16_t> h(size_t(n) + 1);
    for (size_t i = 0; i < h.size(); ++i) h[i] = uint16_t(i * 2654435761u >> 7);
    std::vector<float> w1(h.size(), 5.0f), w2(h.size(), 5.0f);
    k().bf16_to_f32(w1.data(), h.data(), n);
    ref.bf16_to_f32(w2.data(), h.data(), n);
    for (int64_t i = 0; i < n; ++i)
      if (!std::isnan(w2[size_t(i)])) {
        EXPECT_EQ(w1[size_t(i)], w2[size_t(i)]) << i;
      }
    EXPECT_EQ(w1[size_t(n)], 5.0f);
    k().f16_to_f32(w1.data(), h.data(), n);
    ref.f16_to_f32(w2.data(), h.data(), n);
    for (int64_t i = 0; i < n; ++i)
      if (!std::isnan(w2[size_t(i)])) {
        EXPECT_EQ(w1[size_t(i)], w2[size_t(i)]) << i;
      }
  }
}

INSTANTIATE_TEST_SUITE_P(AllIsas, KernelsTest, ::testing::ValuesIn(kernels::supported_isas()), isa_param_name);

TEST(DtypeTest, HalfConversionsAreExactForEveryCode) {
  for (uint32_t code = 0; code < 65536; ++code) {
    const uint16_t h = uint16_t(code);
    const float f = f16_to_f32(h);
    if (std::isnan(f)) continue;
    EXPECT_EQ(f32_to_f16(f), h) << code;  // every half value round-trips
    const float b = bf16_to_f32(h);
    if (!std::isnan(b)) {
      EXPECT_EQ(f32_to_bf16(b), h) << code;
    }
  }
  EXPECT_EQ(f32_to_bf16(1.0f + 1.0f / 256), f32_to_bf16(1.0f));  // ties to even
  EXPECT_EQ(f16_to_f32(f32_to_f16(65520.0f)), INFINITY);          // rounds past max to inf
  EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.0f, -24));           // smallest subnormal
}

TEST(DispatchTest, ForcedIsaAndNames) {
  for (auto isa : kernels::supported_isas()) {
    kernels::set_isa(isa);
    EXPECT_EQ(kernels::kernels().isa, isa);
  }
  EXPECT_EQ(kernels::supported_isas().front(), Isa::scalar);
  kernels::set_isa(kernels::supported_isas().back());
}

std::set<std::string> words(std::string_view s) {
  std::set<std::string> out;
  for (size_t i = 0; i < s.size();) {
    const size_t j = std::min(s.find(' ', i), s.size());
    if (j > i) out.emplace(s.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

// A level's unit runs on any CPU that passes its check, so it must be compiled
// with nothing the check leaves out: every -m flag CMake gives it and every
// feature its compiler enabled (the implied ones included) is required, and
// nothing more is (that would refuse CPUs for no reason).
TEST(DispatchTest, EachLevelRequiresExactlyWhatItsUnitWasCompiledWith) {
  const auto levels = kernels::isa_levels();
  ASSERT_FALSE(levels.empty());
  EXPECT_EQ(levels.front().isa, Isa::scalar);
  std::vector<Isa> runnable;
  for (const auto& level : levels) {
    SCOPED_TRACE(std::string(kernels::isa_name(level.isa)));
    std::set<std::string> required;
    bool all_present = true;
    for (const auto f : level.cpu_features) {
      EXPECT_TRUE(required.emplace(f).second) << f << " listed twice";
      bool present = false;
      EXPECT_NO_THROW(present = kernels::cpu_supports(f));
      all_present = all_present && present;
    }
    for (const auto& flag : words(level.compile_flags)) {
      ASSERT_EQ(flag.rfind("-m", 0), 0u) << "'" << flag << "': only -m<feature> flags belong in TPP_FLAGS_<ISA>";
      EXPECT_TRUE(required.count(flag.substr(2))) << "compiled with " << flag << ", which dispatch does not check";
    }
    EXPECT_EQ(words(level.compiled_features), required) << "compiled: " << level.compiled_features;
    if (all_present) runnable.push_back(level.isa);
  }
  // Not vacuous: the flags and the compiler's features did reach the table.
  EXPECT_TRUE(words(levels.back().compile_flags).count("-mavx512f"));
  EXPECT_TRUE(words(levels.back().compiled_features).count("avx512f"));
  EXPECT_TRUE(words(levels.front().compiled_features).empty());
  // The levels this CPU runs are the ones tests are instantiated for.
  EXPECT_EQ(runnable, std::vector<Isa>(kernels::supported_isas().begin(), kernels::supported_isas().end()));
  EXPECT_THROW(kernels::cpu_supports("avx512_no_such_feature"), Error);
}

TEST(DispatchTest, EnvironmentForcesAPathAndRejectsUnknownOnes) {
  std::string out;
  EXPECT_EQ(run_command("TPP_ISA=scalar " + tpp_binary() + " --version", &out), 0);
  EXPECT_NE(out.find("SIMD: scalar"), std::string::npos) << out;
  EXPECT_NE(run_command("TPP_ISA=neon " + tpp_binary() + " --version", &out), 0);
  EXPECT_NE(out.find("TPP_ISA=neon"), std::string::npos) << out;
}

}  // namespace
}  // namespace tpp::test
