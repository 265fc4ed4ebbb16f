// Block quantisation (q8_0, q4_0): tpp's quantiser is byte-identical to an
// independent implementation of GGML's reference rounding (the blocks in the
// GGUF files tools/golden/gen_gguf.py wrote); dequantisation and the fused
// matmul kernels of every SIMD path match a float64 reference over the
// dequantised weights; the linear layer's decode and prefill paths agree.
// The int8 kernels (activations quantised to Q8_0 blocks, packed weights):
// the scalar definition against float64 over the integers and against the
// f32 layer within the activations' rounding bound; every SIMD level
// bit-identical to the scalar definition.
#include "tpp/quant/quant.h"

#include <cmath>
#include <limits>
#include <cstring>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "common/test_util.h"
#include "tpp/core/error.h"
#include "tpp/io/gguf.h"
#include "tpp/kernels/api.h"
#include "tpp/kernels/packed.h"
#include "tpp/kernels/scalar/kernels_scalar.h"
#include "tpp/ops/linear.h"

namespace tpp::test {
namespace {

using kernels::Isa;

std::vector<float> f32_tensor(const io::GgufFile& f, const std::string& name) {
  const io::GgufTensor* t = f.find_tensor(name);
  EXPECT_NE(t, nullptr) << name;
  EXPECT_EQ(t->info().name, "F32");
  std::vector<float> out(size_t(t->nbytes / 4));
  std::memcpy(out.data(), t->data, t->nbytes);
  return out;
}

// The GGUF files of gen_gguf.py hold the same matrices in f32 and quantised by
// its own (numpy) implementation of ggml's reference quantisers.
TEST(QuantTest, QuantiserIsByteIdenticalToTheReference) {
  const auto f32 = io::GgufFile::open(source_path("tests/golden/gguf/llama_f32.gguf"));
  for (const auto& [file, dtype] : {std::pair{"llama_q8_0", DType::q8_0}, std::pair{"llama_q4_0", DType::q4_0}}) {
    const auto q = io::GgufFile::open(source_path(std::string("tests/golden/gguf/") + file + ".gguf"));
    int compared = 0;
    for (const auto& t : q.tensors()) {
      if (t.info().dtype != dtype) continue;
      const auto x = f32_tensor(f32, t.name);
      std::vector<std::byte> mine(size_t(dtype_bytes(dtype, int64_t(x.size()))));
      quant::quantize_row(dtype, x.data(), int64_t(x.size()), mine.data());
      ASSERT_EQ(mine.size(), t.nbytes) << t.name;
      EXPECT_EQ(std::memcmp(mine.data(), t.data, mine.size()), 0) << file << " " << t.name;
      ++compared;
    }
    EXPECT_GE(compared, 8) << file;
  }
}

TEST(QuantTest, RoundTripErrorIsWithinTheStep) {
  const auto x = random_floats(32 * 64, 11, 3.0f);
  for (DType t : {DType::q8_0, DType::q4_0}) {
    std::vector<std::byte> q(size_t(dtype_bytes(t, int64_t(x.size()))));
    quant::quantize_row(t, x.data(), int64_t(x.size()), q.data());
    std::vector<float> back(x.size());
    quant::dequantize_row(t, q.data(), int64_t(x.size()), back.data());
    for (size_t b = 0; b < x.size() / 32; ++b) {
      float amax = 0;
      for (size_t j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[b * 32 + j]));
      // Half a step of rounding (q4_0: a whole step for the value opposite the
      // extreme, clamped from 16 to 15), plus the f16 rounding of the scale
      // (relative 2^-11) times the largest integer.
      const float qmax = t == DType::q8_0 ? 127 : 8;
      const float step = amax / qmax;
      const float bound = ((t == DType::q8_0 ? 0.5f : 1.0f) + qmax * 0x1p-11f) * step * 1.001f + 1e-6f;
      for (size_t j = 0; j < 32; ++j)
        ASSERT_LE(std::fabs(back[b * 32 + j] - x[b * 32 + j]), bound)
            << dtype_name(t) << " block " << b << " element " << j;
    }
  }
  // A zero block stays zero (scale 0, no division by zero).
  std::vector<float> zeros(32, 0.0f), back(32, 1.0f);
  std::vector<std::byte> q(34);
  quant::quantize_row(DType::q8_0, zeros.data(), 32, q.data());
  quant::dequantize_row(DType::q8_0, q.data(), 32, back.data());
  EXPECT_EQ(back, zeros);
  EXPECT_THROW(quant::quantize_row(DType::q8_0, zeros.data(), 31, q.data()), Error);
  // Non-finite input has no quantised value: refused, not cast.
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    std::vector<float> x(32, 1.0f);
    x[5] = bad;
    EXPECT_THROW(quant::quantize_row(DType::q4_0, x.data(), 32, q.data()), Error);
  }
}

class QuantKernelTest : public ::testing::TestWithParam<Isa> {};

TEST_P(QuantKernelTest, MatmulAndDequantMatchFloat64) {
  const auto& k = kernels::kernels_for(GetParam());
  const auto& ref = kernels::kernels_for(Isa::scalar);
  struct Shape {
    int64_t N, K, m0, m1, M;
  };
  for (const Shape s : {Shape{1, 32, 0, 1, 1}, Shape{1, 64, 0, 7, 7}, Shape{3, 96, 2, 11, 13},
                        Shape{2, 256, 0, 9, 9}, Shape{5, 1024, 1, 6, 8}}) {
    for (DType t : {DType::q8_0, DType::q4_0}) {
      const auto w = random_floats(size_t(s.M * s.K), uint64_t(s.K + s.M), 1.0f);
      const auto x = random_floats(size_t(s.N * s.K), uint64_t(s.K * 3 + s.N), 1.0f);
      std::vector<std::byte> q(size_t(s.M * dtype_bytes(t, s.K)));
      quant::quantize_row(t, w.data(), int64_t(w.size()), q.data());
      // Dequantisation: identical on every path (one multiply per element).
      std::vector<float> deq(w.size()), deq_ref(w.size());
      (t == DType::q8_0 ? k.dequant_q8_0 : k.dequant_q4_0)(deq.data(), q.data(), int64_t(w.size()));
      (t == DType::q8_0 ? ref.dequant_q8_0 : ref.dequant_q4_0)(deq_ref.data(), q.data(), int64_t(w.size()));
      ASSERT_EQ(deq, deq_ref) << dtype_name(t);
      std::vector<float> y(size_t(s.N * s.M), -7.0f);
      (t == DType::q8_0 ? k.matmul_q8_0 : k.matmul_q4_0)(y.data(), x.data(), q.data(), s.N, s.K, s.m0, s.m1, s.M);
      std::vector<double> got, want;
      for (int64_t n = 0; n < s.N; ++n)
        for (int64_t m = 0; m < s.M; ++m) {
          double acc = -7.0;
          if (m >= s.m0 && m < s.m1) {
            acc = 0;
            for (int64_t i = 0; i < s.K; ++i) acc += double(x[size_t(n * s.K + i)]) * deq_ref[size_t(m * s.K + i)];
          }
          got.push_back(y[size_t(n * s.M + m)]);
          want.push_back(acc);
        }
      const double atol = 4e-7 * std::sqrt(double(s.K)) * 4 + 1e-6;
      EXPECT_TRUE(all_close(got, want, {atol, 1e-5})) << dtype_name(t) << " K=" << s.K << " N=" << s.N;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllIsas, QuantKernelTest, ::testing::ValuesIn(kernels::supported_isas()),
                         [](const ::testing::TestParamInfo<Isa>& info) { return std::string(kernels::isa_name(info.param)); });

// linear_forward on quantised W: the register path (N < 4) and the widened
// buffer path (N >= 4) both equal the f32 layer over the dequantised matrix.
TEST(QuantLinearTest, DecodeAndPrefillPathsEqualTheDequantisedLayer) {
  ThreadPool pool(2);
  const int64_t M = 70, K = 160;
  const auto w = random_floats(size_t(M * K), 5, 1.0f);
  const std::vector<float> bias = random_floats(size_t(M), 6, 1.0f);
  for (DType t : {DType::q8_0, DType::q4_0}) {
    std::vector<std::byte> q(size_t(M * dtype_bytes(t, K)));
    quant::quantize_row(t, w.data(), M * K, q.data());
    std::vector<float> deq(w.size());
    quant::dequantize_row(t, q.data(), M * K, deq.data());
    const MatrixRef Wq{t, q.data(), M, K}, Wf{DType::f32, deq.data(), M, K};
    EXPECT_EQ(Wq.bytes(), int64_t(q.size()));
    std::vector<float> row(static_cast<size_t>(K));
    Wq.row_f32(3, row.data());
    EXPECT_EQ(row, std::vector<float>(deq.begin() + 3 * K, deq.begin() + 4 * K));
    for (int64_t N : {1, 3, 4, 37}) {
      const auto x = random_floats(size_t(N * K), uint64_t(N), 1.0f);
      std::vector<float> yq(size_t(N * M)), yf(size_t(N * M));
      linear_forward(yq.data(), x.data(), N, Wq, bias, pool);
      linear_forward(yf.data(), x.data(), N, Wf, bias, pool);
      EXPECT_TRUE(all_close(yq, yf, {2e-5, 1e-5})) << dtype_name(t) << " N=" << N;
    }
  }
}

// Int8 path. x quantised to Q8_0 blocks (scale in f32), by the definition.
struct QuantisedX {
  std::vector<int8_t> q;
  std::vector<float> d, s;
};
QuantisedX quantise_x(const std::vector<float>& x, int64_t N, int64_t K) {
  QuantisedX out{std::vector<int8_t>(x.size()), std::vector<float>(x.size() / 32), std::vector<float>(x.size() / 32)};
  kernels::scalar::quantize_q8(out.q.data(), out.d.data(), out.s.data(), x.data(), N, K);
  return out;
}

TEST(Int8Test, ActivationQuantisationFollowsItsDefinition) {
  const int64_t N = 3, K = 96;
  auto x = random_floats(size_t(N * K), 11, 2.0f);
  for (int i = 32; i < 64; ++i) x[size_t(i)] = 0.0f;  // an all-zero block
  const QuantisedX qx = quantise_x(x, N, K);
  for (int64_t b = 0; b < N * K / 32; ++b) {
    float amax = 0;
    int64_t sum = 0;
    for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[size_t(32 * b + i)]));
    EXPECT_EQ(qx.d[size_t(b)], amax / 127.0f) << "block " << b;
    for (int i = 0; i < 32; ++i) {
      const int q = qx.q[size_t(32 * b + i)];
      sum += q;
      ASSERT_LE(std::abs(q), 127);
      // Nearest integer to x/d: within half a step (and exact 0 for a zero block).
      if (amax == 0) ASSERT_EQ(q, 0);
      else ASSERT_LE(std::fabs(double(x[size_t(32 * b + i)]) - double(q) * qx.d[size_t(b)]), 0.5 * qx.d[size_t(b)] * 1.0001);
    }
    EXPECT_EQ(qx.s[size_t(b)], qx.d[size_t(b)] * float(sum));
  }
  EXPECT_EQ(qx.d[1], 0.0f);
}

TEST(Int8Test, PackedMatmulDefinitionMatchesFloat64AndTheF32Layer) {
  const int64_t N = 5, K = 128, M = 37;  // M: two full groups of 16 and a padded one
  for (DType t : {DType::q8_0, DType::q4_0}) {
    const auto w = random_floats(size_t(M * K), 21, 1.0f), x = random_floats(size_t(N * K), 22, 1.0f);
    std::vector<std::byte> wq(size_t(M * dtype_bytes(t, K)));
    quant::quantize_row(t, w.data(), M * K, wq.data());
    std::vector<float> deq(w.size());
    quant::dequantize_row(t, wq.data(), M * K, deq.data());
    std::vector<std::byte> packed(size_t(kernels::packed_bytes(t, M, K)));
    EXPECT_EQ(kernels::packed_bytes(t, M, K), 3 * dtype_bytes(t, 16 * K));  // the GGUF size, rows rounded up to 16
    kernels::pack_rows(t, packed.data(), wq.data(), M, K);
    const QuantisedX qx = quantise_x(x, N, K);
    std::vector<float> y(size_t(N * M), -7.0f);
    (t == DType::q8_0 ? kernels::scalar::matmul_q8_0_packed : kernels::scalar::matmul_q4_0_packed)(
        y.data(), qx.q.data(), qx.d.data(), qx.s.data(), packed.data(), N, K, 0, M, M);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t m = 0; m < M; ++m) {
        // float64 over the dequantised integers of both sides.
        double exact = 0, bound = 0, layer = 0;
        for (int64_t i = 0; i < K; ++i) {
          const double xd = double(qx.q[size_t(n * K + i)]) * qx.d[size_t(n * K / 32 + i / 32)];
          exact += xd * deq[size_t(m * K + i)];
          layer += double(x[size_t(n * K + i)]) * deq[size_t(m * K + i)];
          // The activation's rounding: at most half its block's step.
          bound += 0.5 * qx.d[size_t(n * K / 32 + i / 32)] * std::fabs(deq[size_t(m * K + i)]);
        }
        const double got = y[size_t(n * M + m)];
        ASSERT_NEAR(got, exact, 1e-5 * (1 + std::fabs(exact))) << dtype_name(t) << " n=" << n << " m=" << m;
        ASSERT_LE(std::fabs(got - layer), bound * 1.0001 + 1e-5) << dtype_name(t) << " n=" << n << " m=" << m;
      }
  }
}

class Int8KernelTest : public ::testing::TestWithParam<Isa> {};

TEST_P(Int8KernelTest, EveryLevelIsBitIdenticalToTheDefinition) {
  const auto& k = kernels::kernels_for(GetParam());
  if (!k.quantize_q8) GTEST_SKIP() << kernels::isa_name(GetParam()) << " has no int8 kernels";
  ASSERT_TRUE(k.matmul_q8_0_packed && k.matmul_q4_0_packed);
  struct Shape {
    int64_t N, K, m0, m1, M, ldy;
  };
  for (const Shape s : {Shape{1, 32, 0, 1, 1, 1}, Shape{1, 64, 0, 37, 37, 37}, Shape{3, 96, 5, 30, 33, 40},
                        Shape{4, 256, 16, 48, 64, 64}, Shape{6, 128, 1, 17, 17, 20}, Shape{9, 1024, 0, 48, 48, 48},
                        // Decode over four groups at a time, then two, then one.
                        Shape{1, 160, 3, 115, 120, 120},
                        // Small batches (up to 8 rows): four groups, two rows (and one) at a time.
                        Shape{2, 160, 3, 115, 120, 120}, Shape{5, 96, 0, 80, 80, 80}, Shape{8, 64, 7, 100, 100, 104}}) {
    for (DType t : {DType::q8_0, DType::q4_0}) {
      SCOPED_TRACE(fmt::format("{} N={} K={} m=[{}, {}) M={}", dtype_name(t), s.N, s.K, s.m0, s.m1, s.M));
      const auto w = random_floats(size_t(s.M * s.K), uint64_t(s.K + s.M), 1.0f);
      auto x = random_floats(size_t(s.N * s.K), uint64_t(s.K * 3 + s.N), 3.0f);
      std::fill(x.begin(), x.begin() + 32, 0.0f);  // a zero block
      std::vector<std::byte> wq(size_t(s.M * dtype_bytes(t, s.K)));
      quant::quantize_row(t, w.data(), s.M * s.K, wq.data());
      std::vector<std::byte> packed(size_t(kernels::packed_bytes(t, s.M, s.K)));
      kernels::pack_rows(t, packed.data(), wq.data(), s.M, s.K);
      const QuantisedX want = quantise_x(x, s.N, s.K);
      QuantisedX got{std::vector<int8_t>(x.size()), std::vector<float>(x.size() / 32), std::vector<float>(x.size() / 32)};
      k.quantize_q8(got.q.data(), got.d.data(), got.s.data(), x.data(), s.N, s.K);
      ASSERT_EQ(got.q, want.q);
      ASSERT_EQ(got.d, want.d);
      ASSERT_EQ(got.s, want.s);
      std::vector<float> y(size_t(s.N * s.ldy), -7.0f), y_ref = y;
      (t == DType::q8_0 ? k.matmul_q8_0_packed : k.matmul_q4_0_packed)(
          y.data(), got.q.data(), got.d.data(), got.s.data(), packed.data(), s.N, s.K, s.m0, s.m1, s.ldy);
      (t == DType::q8_0 ? kernels::scalar::matmul_q8_0_packed : kernels::scalar::matmul_q4_0_packed)(
          y_ref.data(), want.q.data(), want.d.data(), want.s.data(), packed.data(), s.N, s.K, s.m0, s.m1, s.ldy);
      ASSERT_EQ(y, y_ref);  // entries outside [m0, m1) stay -7 in both
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllIsas, Int8KernelTest, ::testing::ValuesIn(kernels::supported_isas()),
                         [](const ::testing::TestParamInfo<Isa>& info) { return std::string(kernels::isa_name(info.param)); });

// Groups of 16 rows pack independently (pack_weights packs ranges of groups
// in parallel): packing [0, 16) and [16, M) at their offsets gives the bytes
// of packing [0, M) at once, for every packed dtype.
TEST(Int8Test, RangesOfGroupsPackToTheSameBytes) {
  const int64_t K = 96, M = 37;
  for (DType t : {DType::q8_0, DType::q4_0, DType::bf16}) {
    const auto w = random_floats(size_t(M * K), 23, 1.0f);
    std::vector<std::byte> stored(size_t(M * dtype_bytes(t, K)));
    if (t == DType::bf16) {
      for (int64_t i = 0; i < M * K; ++i) {
        const uint16_t h = f32_to_bf16(w[size_t(i)]);
        std::memcpy(stored.data() + 2 * i, &h, 2);
      }
    } else {
      quant::quantize_row(t, w.data(), M * K, stored.data());
    }
    const size_t bytes = size_t(kernels::packed_bytes(t, M, K));
    std::vector<std::byte> whole(bytes, std::byte{0x5a}), parts(bytes, std::byte{0xa5});
    kernels::pack_rows(t, whole.data(), stored.data(), M, K);
    kernels::pack_rows(t, parts.data(), stored.data(), 16, K);
    kernels::pack_rows(t, parts.data() + kernels::packed_bytes(t, 16, K), stored.data() + 16 * dtype_bytes(t, K),
                       M - 16, K);
    EXPECT_EQ(whole, parts) << dtype_name(t);
  }
}

// linear_forward with a packed copy runs the int8 kernels where the table has
// them: within the activations' rounding of the f32 layer, and the same for
// one row alone as inside a batch (decode equals prefill, bit for bit).
TEST(Int8Test, LinearUsesThePackedCopyAndRowsDoNotDependOnTheBatch) {
  if (!kernels::kernels_for(kernels::supported_isas().back()).quantize_q8)
    GTEST_SKIP() << "this CPU has no level with int8 kernels";
  ThreadPool pool(2);
  const int64_t M = 70, K = 160;
  const auto w = random_floats(size_t(M * K), 5, 1.0f);
  for (DType t : {DType::q8_0, DType::q4_0}) {
    std::vector<std::byte> wq(size_t(M * dtype_bytes(t, K)));
    quant::quantize_row(t, w.data(), M * K, wq.data());
    std::vector<std::byte> packed(size_t(kernels::packed_bytes(t, M, K)));
    kernels::pack_rows(t, packed.data(), wq.data(), M, K);
    MatrixRef Wq{t, wq.data(), M, K};
    Wq.packed = packed.data();
    const int64_t N = 37;
    const auto x = random_floats(size_t(N * K), 9, 1.0f);
    const QuantisedX qx = quantise_x(x, N, K);
    std::vector<float> want(size_t(N * M));
    (t == DType::q8_0 ? kernels::scalar::matmul_q8_0_packed : kernels::scalar::matmul_q4_0_packed)(
        want.data(), qx.q.data(), qx.d.data(), qx.s.data(), packed.data(), N, K, 0, M, M);
    for (auto isa : kernels::supported_isas()) {
      if (!kernels::kernels_for(isa).quantize_q8) continue;
      kernels::set_isa(isa);
      std::vector<float> y(size_t(N * M)), one(static_cast<size_t>(M));
      linear_forward(y.data(), x.data(), N, Wq, {}, pool);
      EXPECT_EQ(y, want) << kernels::isa_name(isa);
      for (int64_t n : {0, 17, 36}) {
        linear_forward(one.data(), x.data() + n * K, 1, Wq, {}, pool);
        EXPECT_TRUE(std::equal(one.begin(), one.end(), y.begin() + n * M)) << kernels::isa_name(isa) << " row " << n;
      }
    }
    kernels::set_isa(kernels::supported_isas().back());
  }
}

}  // namespace
}  // namespace tpp::test
