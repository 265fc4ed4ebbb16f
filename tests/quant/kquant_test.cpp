// K-quants (Q4_K, Q5_K, Q6_K): tpp's decoding against the gguf Python
// package's numpy dequantisers (tests/golden/kquants, tools/golden/gen_kquants.py),
// bit for bit; tpp's encoding against the bytes GGML's own reference
// quantisers write (tools/golden/gen_kquant_encode.c), byte for byte; the
// round trip's error per type; the linear layer's decode and prefill paths
// against float64 over the decoded weights; and a whole GGUF model with
// K-quant matrices against the same model with those matrices decoded to f32.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>

#include <gtest/gtest.h>

#include "common/test_util.h"
#include "model/model_test_util.h"
#include "tpp/convert/quantize.h"
#include "tpp/core/rng.h"
#include "tpp/io/gguf.h"
#include "tpp/kernels/api.h"
#include "tpp/kernels/kquants.h"
#include "tpp/model/model.h"
#include "tpp/ops/linear.h"
#include "tpp/quant/quant.h"

namespace tpp::test {
namespace {

std::vector<char> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in) << path;
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

struct KType {
  const char* name;
  DType dtype;
  std::vector<int> scale_at;  // byte offsets of the f16 super-block scales
};
const KType kTypes[] = {{"q4_k", DType::q4_k, {0, 2}}, {"q5_k", DType::q5_k, {0, 2}}, {"q6_k", DType::q6_k, {208}}};

TEST(KQuantTest, DecodingMatchesTheGgufPackageBitForBit) {
  for (const auto& t : kTypes) {
    const auto blocks = read_bytes(source_path(std::string("tests/golden/kquants/") + t.name + ".blocks"));
    const auto values = read_bytes(source_path(std::string("tests/golden/kquants/") + t.name + ".f32"));
    const int64_t n = int64_t(values.size() / 4);
    ASSERT_EQ(n % 256, 0) << t.name;
    ASSERT_EQ(int64_t(blocks.size()), dtype_bytes(t.dtype, n)) << t.name;
    std::vector<float> want(static_cast<size_t>(n)), got(static_cast<size_t>(n), -1.0f);
    std::memcpy(want.data(), values.data(), values.size());
    quant::dequantize_row(t.dtype, reinterpret_cast<const std::byte*>(blocks.data()), n, got.data());
    int nonzero = 0;
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_EQ(std::memcmp(&got[size_t(i)], &want[size_t(i)], 4), 0)
          << t.name << " weight " << i << ": " << got[size_t(i)] << " vs " << want[size_t(i)];
      nonzero += got[size_t(i)] != 0;
    }
    EXPECT_GT(nonzero, n / 2) << t.name;
    // The last golden block is all zeros.
    for (int64_t i = n - 256; i < n; ++i) EXPECT_EQ(got[size_t(i)], 0.0f);
  }
  EXPECT_NE(error_message([] {
              float out[256];
              std::byte in[144] = {};
              quant::dequantize_row(DType::q4_k, in, 128, out);
            }).find("multiple of 256"),
            std::string::npos);
}

using EncodeFn = void (*)(void*, const float*, int64_t);
EncodeFn encoder(DType t) {
  return t == DType::q4_k ? kernels::quantize_q4_k : t == DType::q5_k ? kernels::quantize_q5_k : kernels::quantize_q6_k;
}

// The golden inputs are twelve super-blocks, one case each (bell-shaped at
// two scales, outliers, zeros, f16-subnormal and vanishing scales, two
// constants, negative only, positive only, sub-blocks decades apart, zero
// sub-blocks between others; see gen_kquant_encode.c).
TEST(KQuantTest, EncodingMatchesGgmlsReferenceQuantisersByteForByte) {
  const auto values = read_bytes(source_path("tests/golden/kquants/encode_input.f32"));
  const int64_t n = int64_t(values.size() / 4);
  ASSERT_EQ(n, 12 * 256);
  std::vector<float> x(static_cast<size_t>(n));
  std::memcpy(x.data(), values.data(), values.size());
  for (const auto& t : kTypes) {
    const auto want = read_bytes(source_path(std::string("tests/golden/kquants/encode_") + t.name + ".blocks"));
    const int64_t size = dtype_size(t.dtype);
    ASSERT_EQ(int64_t(want.size()), dtype_bytes(t.dtype, n)) << t.name;
    std::vector<std::byte> got(want.size());
    quant::quantize_row(t.dtype, x.data(), n, got.data());
    for (int64_t b = 0; b < n / 256; ++b)
      for (int64_t i = 0; i < size; ++i)
        ASSERT_EQ(uint8_t(got[size_t(b * size + i)]), uint8_t(want[size_t(b * size + i)]))
            << t.name << " super-block " << b << " byte " << i;
    // The kernel entry point writes the same bytes.
    std::vector<std::byte> direct(want.size());
    encoder(t.dtype)(direct.data(), x.data(), n);
    EXPECT_EQ(direct, got) << t.name;
    // And the check can fail: one weight moved changes its super-block.
    std::vector<float> moved = x;
    moved[7] *= 1.5f;
    encoder(t.dtype)(direct.data(), moved.data(), n);
    EXPECT_NE(std::memcmp(direct.data(), want.data(), size_t(size)), 0) << t.name;
  }
}

// Bell-shaped weights (standard normal from tpp's counter RNG) at several
// scales: the RMS of the round trip's error over the RMS of the input.
// Measured: Q4_K 0.072, Q5_K 0.036, Q6_K 0.018 at scales 1 and 0.02; at
// 1e-3 the f16 scales are subnormal and Q5_K / Q6_K lose a little (0.037,
// 0.021). Bounds are those with about 10 % of margin; each extra bit about
// halves the error. The worst weight is 3 to 6 times the RMS error.
TEST(KQuantTest, RoundTripErrorIsWithinEachTypesBound) {
  const int64_t n = 256 * 64;
  const std::map<DType, double> bound{{DType::q4_k, 0.080}, {DType::q5_k, 0.041}, {DType::q6_k, 0.023}};
  for (double scale : {1.0, 0.02, 1e-3}) {
    const CounterRng rng(31, 7);
    std::vector<float> x(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) x[size_t(i)] = float(scale * rng.normal(uint64_t(i)));
    std::map<DType, double> rel;
    for (const auto& t : kTypes) {
      std::vector<std::byte> blocks(size_t(dtype_bytes(t.dtype, n)));
      quant::quantize_row(t.dtype, x.data(), n, blocks.data());
      std::vector<float> y(static_cast<size_t>(n));
      quant::dequantize_row(t.dtype, blocks.data(), n, y.data());
      double err2 = 0, ref2 = 0, worst = 0;
      for (int64_t i = 0; i < n; ++i) {
        const double e = double(y[size_t(i)]) - double(x[size_t(i)]);
        err2 += e * e;
        ref2 += double(x[size_t(i)]) * double(x[size_t(i)]);
        worst = std::max(worst, std::abs(e));
      }
      rel[t.dtype] = std::sqrt(err2 / ref2);
      EXPECT_LT(rel[t.dtype], bound.at(t.dtype)) << t.name << " scale " << scale;
      EXPECT_GT(rel[t.dtype], bound.at(t.dtype) / 4) << t.name << " scale " << scale;  // not vacuous
      // No weight is off by more than about a step of its sub-block: a few times the RMS error.
      EXPECT_LT(worst, 8 * rel[t.dtype] * scale) << t.name << " scale " << scale;
    }
    EXPECT_LT(rel[DType::q6_k], rel[DType::q5_k]);
    EXPECT_LT(rel[DType::q5_k], rel[DType::q4_k]);
  }
}

TEST(KQuantTest, ZerosAndConstantRows) {
  for (const auto& t : kTypes) {
    // All zeros: every byte 0, decoding to exact zeros.
    std::vector<float> x(512, 0.0f), y(512, -1.0f);
    std::vector<std::byte> blocks(size_t(dtype_bytes(t.dtype, 512)), std::byte{0xff});
    quant::quantize_row(t.dtype, x.data(), 512, blocks.data());
    for (auto b : blocks) ASSERT_EQ(b, std::byte{0}) << t.name;
    quant::dequantize_row(t.dtype, blocks.data(), 512, y.data());
    for (float v : y) ASSERT_EQ(v, 0.0f) << t.name;
    // A constant row decodes to one value, within the f16 scale's rounding
    // (2^-11 relative; constants large enough that d is a normal f16: below
    // about 0.06, Q4_K's d = c / (15 * 63) is subnormal and coarser).
    for (float c : {0.5f, -0.25f, 0.09f, -7.0f}) {
      std::fill(x.begin(), x.end(), c);
      quant::quantize_row(t.dtype, x.data(), 512, blocks.data());
      quant::dequantize_row(t.dtype, blocks.data(), 512, y.data());
      for (float v : y) {
        ASSERT_EQ(v, y[0]) << t.name << " constant " << c;
        ASSERT_NEAR(v, c, 2e-3 * std::abs(c)) << t.name << " constant " << c;
      }
    }
  }
  // Sizes and values the encoders cannot take.
  std::vector<float> x(300, 1.0f);
  std::vector<std::byte> out(1024);
  EXPECT_NE(error_message([&] { quant::quantize_row(DType::q5_k, x.data(), 288, out.data()); })
                .find("multiple of 256"),
            std::string::npos);
  x[3] = std::nanf("");
  EXPECT_NE(error_message([&] { quant::quantize_row(DType::q6_k, x.data(), 256, out.data()); }).find("element 3"),
            std::string::npos);
}

// Random blocks with super-block scales in a model-like range.
std::vector<std::byte> random_blocks(const KType& t, int64_t rows, int64_t cols, uint64_t seed, float scale = 1e-3f) {
  std::vector<std::byte> b(size_t(rows * dtype_bytes(t.dtype, cols)));
  Rng rng(seed);
  for (auto& x : b) x = std::byte(int(rng.uniform() * 256) & 255);
  const int64_t size = dtype_size(t.dtype);
  for (int64_t at = 0; at < int64_t(b.size()); at += size)
    for (int off : t.scale_at) {
      const uint16_t h = f32_to_f16(scale * float(0.2 + rng.uniform()) * (rng.uniform() < 0.5 ? -1.0f : 1.0f));
      std::memcpy(&b[size_t(at + off)], &h, 2);
    }
  return b;
}

TEST(KQuantTest, EveryLevelDecodesBitIdenticallyToTheReference) {
  for (const auto& t : kTypes) {
    // Every byte value in every field: random blocks, scales of both signs.
    const int64_t n = 64 * 256;
    const auto blocks = random_blocks(t, 1, n, 21);
    std::vector<float> want(static_cast<size_t>(n));
    (t.dtype == DType::q4_k ? kernels::dequant_q4_k : t.dtype == DType::q5_k ? kernels::dequant_q5_k
                                                                              : kernels::dequant_q6_k)(
        want.data(), blocks.data(), n);
    for (kernels::Isa isa : kernels::supported_isas()) {
      const auto& k = kernels::kernels_for(isa);
      std::vector<float> got(static_cast<size_t>(n), -1.0f);
      (t.dtype == DType::q4_k ? k.dequant_q4_k : t.dtype == DType::q5_k ? k.dequant_q5_k : k.dequant_q6_k)(
          got.data(), blocks.data(), n);
      EXPECT_EQ(std::memcmp(got.data(), want.data(), size_t(n) * 4), 0)
          << t.name << " on " << kernels::isa_name(isa);
    }
  }
}

TEST(KQuantTest, LinearDecodeAndPrefillMatchFloat64OverTheDecodedWeights) {
  const int64_t M = 37, K = 512;
  for (const auto& t : kTypes) {
    const auto w = random_blocks(t, M, K, 11);
    MatrixRef W;
    W.dtype = t.dtype;
    W.data = w.data();
    W.rows = M;
    W.cols = K;
    std::vector<float> wf(static_cast<size_t>(M * K));
    for (int64_t m = 0; m < M; ++m) W.row_f32(m, wf.data() + m * K);
    ThreadPool pool(2);
    const kernels::Isa in_use = kernels::kernels().isa;
    for (kernels::Isa isa : kernels::supported_isas()) {
      kernels::set_isa(isa);  // each level's decode matmul and prefill path
      for (int64_t N : {1, 2, 3, 9}) {
        const auto x = random_floats(size_t(N * K), 5);
        std::vector<float> y(static_cast<size_t>(N * M));
        linear_forward(y.data(), x.data(), N, W, {}, pool);
        for (int64_t n = 0; n < N; ++n)
          for (int64_t m = 0; m < M; ++m) {
            double ref = 0, mag = 0;
            for (int64_t k = 0; k < K; ++k) {
              ref += double(x[size_t(n * K + k)]) * double(wf[size_t(m * K + k)]);
              mag += std::abs(double(x[size_t(n * K + k)]) * double(wf[size_t(m * K + k)]));
            }
            // Decode on a level with the int8 K-quant kernels rounds the
            // activations to 8 bits (at most half a step of 1/127 of each
            // super-block's largest |x|; KQuantInt8Test pins that path
            // exactly); every other path keeps f32 activations.
            const bool int8 = N < 4 && kernels::kernels().quantize_q8_k != nullptr;
            EXPECT_NEAR(y[size_t(n * M + m)], ref, (int8 ? 1e-2 : 1e-5) * mag + 1e-6)
                << t.name << " on " << kernels::isa_name(isa) << " N " << N << " row " << m;
          }
      }
    }
    kernels::set_isa(in_use);
  }
}

std::vector<float> logits_of(const std::string& path, const std::vector<int32_t>& tokens) {
  return forward_logits(load_model(path), tokens, {.threads = 2});
}

TEST(KQuantTest, GgufModelWithKQuantMatricesRunsAsItsDecodedWeights) {
  const std::string dir = temp_dir("kquant_model");
  ModelConfig c;
  c.d_model = 256;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = {2};
  c.d_ff = 512;
  c.vocab_size = 300;
  c.max_seq_len = 64;
  c.rope_theta = 10000.0;
  c.validate();
  save_model(init_model(c, 9, DType::f32), dir + "/src");
  convert::quantize_model(dir + "/src", dir + "/f32.gguf", {DType::f32, false});
  const io::GgufFile base = io::GgufFile::open(dir + "/f32.gguf");
  std::vector<std::pair<std::string, io::GgufValue>> meta;
  for (const auto& k : base.keys()) meta.emplace_back(k, *base.find(k));
  // Each matrix in one of the three types (in turn), and its decoded f32 twin.
  std::vector<std::vector<std::byte>> store;
  std::vector<io::GgufWriteTensor> kq, f32;
  int i = 0;
  std::map<std::string, DType> chosen;
  for (const auto& t : base.tensors()) {
    if (t.ne.size() != 2) {
      kq.push_back({t.name, t.type, t.shape(), {t.data, size_t(t.nbytes)}});
      f32.push_back(kq.back());
      continue;
    }
    const KType& kt = kTypes[i++ % 3];
    chosen[t.name] = kt.dtype;
    const int64_t rows = t.ne[1], cols = t.ne[0];
    store.push_back(random_blocks(kt, rows, cols, 100 + uint64_t(i), 3e-5f));  // weights of about 0.02
    const auto& blocks = store.back();
    kq.push_back({t.name, uint32_t(kt.dtype == DType::q4_k ? 12 : kt.dtype == DType::q5_k ? 13 : 14), t.shape(),
                  blocks});
    std::vector<std::byte> dec(size_t(rows * cols * 4));
    quant::dequantize_row(kt.dtype, blocks.data(), rows * cols, reinterpret_cast<float*>(dec.data()));
    store.push_back(std::move(dec));
    f32.push_back({t.name, 0, t.shape(), store.back()});
  }
  ASSERT_GE(i, 3);
  io::write_gguf(dir + "/k.gguf", meta, kq);
  io::write_gguf(dir + "/decoded.gguf", meta, f32);
  std::vector<int32_t> tokens;
  for (int j = 0; j < 20; ++j) tokens.push_back((j * 41 + 7) % 300);
  const auto want = logits_of(dir + "/decoded.gguf", tokens), got = logits_of(dir + "/k.gguf", tokens);
  ASSERT_EQ(got.size(), want.size());
  // The levels with the packed K-quant kernels round the activations to 8
  // bits; without them (avx512 forced) the logits are the decoded weights'.
  const kernels::Isa in_use = kernels::kernels().isa;
  if (kernels::kernels().matmul_q4_k_packed) {
    EXPECT_LT(nmse(got, want), kModelLogitsInt8Nmse);
    kernels::set_isa(kernels::Isa::avx512);
    EXPECT_LT(nmse(logits_of(dir + "/k.gguf", tokens), logits_of(dir + "/decoded.gguf", tokens)), 1e-10);
    kernels::set_isa(in_use);
  } else {
    EXPECT_LT(nmse(got, want), 1e-10);
  }
  const Model km = load_model(dir + "/k.gguf");
  EXPECT_EQ(km.weights.layers[0][TensorId::attn_q].dtype, chosen.at("blk.0.attn_q.weight"));
  EXPECT_EQ(km.weights.layers[1][TensorId::ffn_down].dtype, chosen.at("blk.1.ffn_down.weight"));
  // And tpp quantize reads K-quant files (re-encoding them as q8_0).
  const auto s = convert::quantize_model(dir + "/k.gguf", dir + "/q8.gguf", {DType::q8_0, true});
  EXPECT_EQ(s.quantized, int64_t(i));
  EXPECT_LT(nmse(logits_of(dir + "/q8.gguf", tokens), want), 1e-3);
}

}  // namespace
}  // namespace tpp::test
