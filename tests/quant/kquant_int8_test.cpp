// The K-quant int8 kernels (Q8_K activations, tpp/kernels/api.h) on every level
// that has them: activation quantisation bit for bit against the scalar
// definition; the matmuls against the scalar definition, against float64 over
// the decoded weights and the dequantised activations, and against f32
// activations within the activation rounding; and the linear layer's decode
// path taking them.
#include <algorithm>
#include <cmath>
#include <cstring>

#include <gtest/gtest.h>

#include "common/test_util.h"
#include "tpp/core/rng.h"
#include "tpp/kernels/api.h"
#include "tpp/kernels/kquants.h"
#include "tpp/kernels/packed.h"
#include "tpp/kernels/scalar/kernels_scalar.h"
#include "tpp/ops/linear.h"
#include "tpp/quant/quant.h"

namespace tpp::test {
namespace {

struct KType {
  DType dtype;
  kernels::MatmulKQ8Fn kernels::Kernels::*matmul;
  kernels::MatmulKQ8Fn kernels::Kernels::*packed;
  kernels::MatmulKQ8Fn reference;
  std::vector<int> scale_at;  // byte offsets of the f16 super-block scales
};
const KType kTypes[] = {
    {DType::q4_k, &kernels::Kernels::matmul_q4_k_q8k, &kernels::Kernels::matmul_q4_k_packed,
     kernels::scalar::matmul_q4_k_q8k, {0, 2}},
    {DType::q5_k, &kernels::Kernels::matmul_q5_k_q8k, &kernels::Kernels::matmul_q5_k_packed,
     kernels::scalar::matmul_q5_k_q8k, {0, 2}},
    {DType::q6_k, &kernels::Kernels::matmul_q6_k_q8k, &kernels::Kernels::matmul_q6_k_packed,
     kernels::scalar::matmul_q6_k_q8k, {208}}};

// Random blocks (every bit pattern of the integer fields is a valid block),
// the f16 super-block scales set to finite values of a realistic size.
std::vector<std::byte> random_blocks(DType t, int64_t rows, int64_t K, const std::vector<int>& scale_at,
                                     uint64_t seed) {
  const int64_t bytes = dtype_bytes(t, K) * rows, per = dtype_size(t);
  std::vector<std::byte> w(static_cast<size_t>(bytes));
  const CounterRng rng(seed, 0);
  for (int64_t i = 0; i < bytes; ++i) w[size_t(i)] = std::byte(rng.bits(uint64_t(i)) & 0xff);
  for (int64_t b = 0; b < bytes / per; ++b)
    for (size_t s = 0; s < scale_at.size(); ++s) {
      const uint16_t h = f32_to_f16(float(0.002 + 0.004 * rng.uniform(uint64_t(bytes + 2 * b + int64_t(s)))));
      std::memcpy(&w[size_t(b * per + scale_at[s])], &h, 2);
    }
  return w;
}

struct Q8K {
  std::vector<int8_t> q;
  std::vector<float> d;
  std::vector<int16_t> bsum;
};

Q8K quantize(kernels::QuantizeQ8KFn fn, const std::vector<float>& x, int64_t N, int64_t K) {
  Q8K a{std::vector<int8_t>(size_t(N * K)), std::vector<float>(size_t(N * K / 256)),
        std::vector<int16_t>(size_t(N * K / 16))};
  fn(a.q.data(), a.d.data(), a.bsum.data(), x.data(), N, K);
  return a;
}

std::vector<kernels::Isa> int8_isas() {
  std::vector<kernels::Isa> out;
  for (auto isa : kernels::supported_isas())
    if (kernels::kernels_for(isa).quantize_q8_k) out.push_back(isa);
  return out;
}

TEST(KQuantInt8Test, ActivationQuantisationMatchesTheDefinitionBitForBit) {
  const int64_t N = 3, K = 768;
  auto x = random_floats(size_t(N * K), 21, 3.0f);
  std::fill(x.begin() + 256, x.begin() + 512, 0.0f);  // an all-zero super-block: d = 0, q = 0
  const Q8K ref = quantize(kernels::scalar::quantize_q8_k, x, N, K);
  EXPECT_EQ(ref.d[1], 0.0f);
  for (auto isa : int8_isas()) {
    const Q8K got = quantize(kernels::kernels_for(isa).quantize_q8_k, x, N, K);
    EXPECT_EQ(got.q, ref.q) << kernels::isa_name(isa);
    EXPECT_EQ(got.d, ref.d) << kernels::isa_name(isa);
    EXPECT_EQ(got.bsum, ref.bsum) << kernels::isa_name(isa);
  }
  // The definition: d = max|x| / 127, q within half a step of x / d, sums per 16.
  for (int64_t b = 0; b < N * K / 256; ++b) {
    float amax = 0;
    for (int i = 0; i < 256; ++i) amax = std::max(amax, std::fabs(x[size_t(256 * b + i)]));
    EXPECT_EQ(ref.d[size_t(b)], amax / 127.0f);
    for (int j = 0; j < 16; ++j) {
      int sum = 0;
      for (int i = 16 * j; i < 16 * j + 16; ++i) {
        const int8_t q = ref.q[size_t(256 * b + i)];
        sum += q;
        if (amax > 0) {
          EXPECT_LE(std::fabs(x[size_t(256 * b + i)] / ref.d[size_t(b)] - q), 0.5f + 1e-4f);
        }
      }
      EXPECT_EQ(ref.bsum[size_t(16 * b + j)], sum);
    }
  }
}

// The scalar definition against float64 over the reference decoder's weights
// and the dequantised activations (only the f32 scaling rounds: 1e-6 of the
// sum of |terms|); every level's kernel against the definition (f32 sums in
// another order: the same bound); and both against f32 activations within
// the activations' rounding (half a step of 1/127 of each super-block's
// largest |x|: 1 % of the sum of |terms| is far above it on random data).
TEST(KQuantInt8Test, MatmulsMatchTheDefinitionAndFloat64) {
  const int64_t M = 37, K = 512;
  for (const auto& t : kTypes) {
    const auto w = random_blocks(t.dtype, M, K, t.scale_at, 30 + uint64_t(t.dtype));
    std::vector<float> wf(size_t(M * K));
    quant::dequantize_row(t.dtype, w.data(), M * K, wf.data());
    for (int64_t N : {1, 2, 3, 5}) {
      const auto x = random_floats(size_t(N * K), 40 + uint64_t(N), 2.0f);
      const Q8K a = quantize(kernels::scalar::quantize_q8_k, x, N, K);
      std::vector<float> ref(size_t(N * M));
      t.reference(ref.data(), a.q.data(), a.d.data(), a.bsum.data(), w.data(), N, K, 0, M, M);
      for (int64_t n = 0; n < N; ++n)
        for (int64_t m = 0; m < M; ++m) {
          double exact = 0, mag = 0, f32 = 0;
          for (int64_t i = 0; i < K; ++i) {
            const double wi = wf[size_t(m * K + i)];
            const double xi = double(a.d[size_t((n * K + i) / 256)]) * a.q[size_t(n * K + i)];
            exact += wi * xi;
            mag += std::fabs(wi * xi);
            f32 += wi * x[size_t(n * K + i)];
          }
          const float r = ref[size_t(n * M + m)];
          EXPECT_NEAR(r, exact, 1e-6 * mag) << dtype_name(t.dtype) << " n " << n << " m " << m;
          EXPECT_NEAR(r, f32, 1e-2 * mag) << dtype_name(t.dtype) << " n " << n << " m " << m;
        }
      for (auto isa : int8_isas()) {
        const auto fn = kernels::kernels_for(isa).*t.matmul;
        ASSERT_NE(fn, nullptr) << kernels::isa_name(isa);
        // A column range and an output stride wider than the range.
        std::vector<float> got(size_t(N * (M + 3)), -1.0f);
        fn(got.data(), a.q.data(), a.d.data(), a.bsum.data(), w.data(), N, K, 5, M, M + 3);
        for (int64_t n = 0; n < N; ++n) {
          for (int64_t m = 0; m < 5; ++m) EXPECT_EQ(got[size_t(n * (M + 3) + m)], -1.0f);
          for (int64_t m = 5; m < M; ++m) {
            double mag = 0;
            for (int64_t i = 0; i < K; ++i)
              mag += std::fabs(double(wf[size_t(m * K + i)]) * a.d[size_t((n * K + i) / 256)] * a.q[size_t(n * K + i)]);
            EXPECT_NEAR(got[size_t(n * (M + 3) + m)], ref[size_t(n * M + m)], 1e-6 * mag)
                << dtype_name(t.dtype) << " " << kernels::isa_name(isa) << " n " << n << " m " << m;
          }
        }
      }
    }
  }
}

// linear_forward's decode rows (N < 4) take the int8 kernel on the levels
// that have it: its result is the kernel's on the quantised activations.
// (Over unpacked W: a packed copy takes the packed kernels, below.)
TEST(KQuantInt8Test, LinearDecodeRunsOnQ8KActivations) {
  const int64_t M = 40, K = 768;
  ThreadPool pool(2);
  for (const auto& t : kTypes) {
    const auto w = random_blocks(t.dtype, M, K, t.scale_at, 50 + uint64_t(t.dtype));
    const MatrixRef W{t.dtype, w.data(), M, K};
    for (auto isa : int8_isas()) {
      kernels::set_isa(isa);
      const auto& k = kernels::kernels();
      for (int64_t N : {1, 3}) {
        const auto x = random_floats(size_t(N * K), 60 + uint64_t(N));
        std::vector<float> y(size_t(N * M)), want(size_t(N * M));
        linear_forward(y.data(), x.data(), N, W, {}, pool);
        const Q8K a = quantize(k.quantize_q8_k, x, N, K);
        (k.*t.matmul)(want.data(), a.q.data(), a.d.data(), a.bsum.data(), w.data(), N, K, 0, M, M);
        EXPECT_EQ(y, want) << dtype_name(t.dtype) << " " << kernels::isa_name(isa) << " N " << N;
      }
    }
    kernels::set_isa(kernels::supported_isas().back());
  }
}

// AVX2's kernels (also the avx512 level's) sum the same exact integers and
// finish each super-block with the definition's float operations: its bits,
// for every row of x, a column range and a wider output stride.
TEST(KQuantInt8Test, Avx2MatmulsGiveTheDefinitionsBits) {
  const auto& isas = kernels::supported_isas();
  if (std::find(isas.begin(), isas.end(), kernels::Isa::avx2) == isas.end()) GTEST_SKIP() << "no AVX2 on this CPU";
  const auto& k = kernels::kernels_for(kernels::Isa::avx2);
  const int64_t M = 21, K = 768;
  for (const auto& t : kTypes) {
    const auto w = random_blocks(t.dtype, M, K, t.scale_at, 110 + uint64_t(t.dtype));
    for (int64_t N : {1, 3, 4}) {
      const auto x = random_floats(size_t(N * K), 120 + uint64_t(N), 2.0f);
      const Q8K a = quantize(k.quantize_q8_k, x, N, K);
      EXPECT_EQ(a.q, quantize(kernels::scalar::quantize_q8_k, x, N, K).q);
      std::vector<float> ref(size_t(N * M)), got(size_t(N * (M + 2)), -1.0f);
      t.reference(ref.data(), a.q.data(), a.d.data(), a.bsum.data(), w.data(), N, K, 0, M, M);
      (k.*t.matmul)(got.data(), a.q.data(), a.d.data(), a.bsum.data(), w.data(), N, K, 3, M, M + 2);
      for (int64_t n = 0; n < N; ++n) {
        for (int64_t m = 0; m < 3; ++m) EXPECT_EQ(got[size_t(n * (M + 2) + m)], -1.0f);
        for (int64_t m = 3; m < M; ++m)
          ASSERT_EQ(got[size_t(n * (M + 2) + m)], ref[size_t(n * M + m)])
              << dtype_name(t.dtype) << " N " << N << " n " << n << " m " << m;
      }
    }
  }
}

// The levels with the packed K-quant kernels (AVX-512 VNNI and up).
std::vector<kernels::Isa> packed_isas() {
  std::vector<kernels::Isa> out;
  for (auto isa : kernels::supported_isas())
    if (kernels::kernels_for(isa).matmul_q4_k_packed) out.push_back(isa);
  return out;
}

std::vector<std::byte> packed_copy(DType t, const std::vector<std::byte>& w, int64_t M, int64_t K) {
  std::vector<std::byte> p(size_t(kernels::packed_bytes(t, M, K)));
  kernels::pack_rows(t, p.data(), w.data(), M, K);
  return p;
}

// The kernels over packed weights (tpp/kernels/packed.h) give the scalar
// definition's bits for every row of x and every output, whatever the tile
// (N = 1 takes four groups at a time, more rows two; 4 rows of x per tile
// and 1-3 left over), the column range (not on a group boundary) and the
// output stride. Packing in two ranges of groups gives the bytes of one.
TEST(KQuantInt8Test, PackedMatmulsGiveTheDefinitionsBits) {
  for (const auto& t : kTypes) {
    for (int64_t M : {37, 80}) {
      const int64_t K = M == 37 ? 512 : 768;
      const auto w = random_blocks(t.dtype, M, K, t.scale_at, 70 + uint64_t(t.dtype) + uint64_t(M));
      const auto p = packed_copy(t.dtype, w, M, K);
      std::vector<std::byte> halves(p.size());
      kernels::pack_rows(t.dtype, halves.data(), w.data(), 32, K);
      kernels::pack_rows(t.dtype, halves.data() + kernels::packed_bytes(t.dtype, 32, K),
                         w.data() + size_t(32 * dtype_bytes(t.dtype, K)), M - 32, K);
      EXPECT_TRUE(halves == p) << dtype_name(t.dtype);
      for (int64_t N : {1, 2, 3, 4, 7, 9}) {
        const auto x = random_floats(size_t(N * K), 80 + uint64_t(N), 2.0f);
        const Q8K a = quantize(kernels::scalar::quantize_q8_k, x, N, K);
        std::vector<float> ref(size_t(N * M));
        t.reference(ref.data(), a.q.data(), a.d.data(), a.bsum.data(), w.data(), N, K, 0, M, M);
        for (auto isa : packed_isas()) {
          const auto fn = kernels::kernels_for(isa).*t.packed;
          ASSERT_NE(fn, nullptr) << kernels::isa_name(isa);
          for (int64_t m0 : {int64_t(0), int64_t(5)}) {
            std::vector<float> got(size_t(N * (M + 3)), -1.0f);
            fn(got.data(), a.q.data(), a.d.data(), a.bsum.data(), p.data(), N, K, m0, M, M + 3);
            for (int64_t n = 0; n < N; ++n) {
              for (int64_t m = 0; m < m0; ++m) EXPECT_EQ(got[size_t(n * (M + 3) + m)], -1.0f);
              for (int64_t m = m0; m < M; ++m)
                ASSERT_EQ(got[size_t(n * (M + 3) + m)], ref[size_t(n * M + m)])
                    << dtype_name(t.dtype) << " " << kernels::isa_name(isa) << " N " << N << " n " << n << " m " << m;
              EXPECT_EQ(got[size_t(n * (M + 3) + M)], -1.0f);
            }
          }
        }
      }
    }
  }
}

// linear_forward over a packed K-quant matrix runs the packed kernel for
// decode and prefill rows alike: the definition's bits on the activations
// quantised to Q8_K.
TEST(KQuantInt8Test, LinearOverPackedWeightsGivesTheDefinitionsBits) {
  const int64_t M = 48, K = 512;
  ThreadPool pool(2);
  for (const auto& t : kTypes) {
    const auto w = random_blocks(t.dtype, M, K, t.scale_at, 90 + uint64_t(t.dtype));
    const auto p = packed_copy(t.dtype, w, M, K);
    MatrixRef W{t.dtype, w.data(), M, K};
    W.packed = p.data();
    for (auto isa : packed_isas()) {
      kernels::set_isa(isa);
      for (int64_t N : {1, 2, 20}) {
        const auto x = random_floats(size_t(N * K), 100 + uint64_t(N));
        std::vector<float> y(size_t(N * M)), want(size_t(N * M));
        linear_forward(y.data(), x.data(), N, W, {}, pool);
        const Q8K a = quantize(kernels::scalar::quantize_q8_k, x, N, K);
        t.reference(want.data(), a.q.data(), a.d.data(), a.bsum.data(), w.data(), N, K, 0, M, M);
        EXPECT_EQ(y, want) << dtype_name(t.dtype) << " " << kernels::isa_name(isa) << " N " << N;
      }
    }
    kernels::set_isa(kernels::supported_isas().back());
  }
}

}  // namespace
}  // namespace tpp::test
