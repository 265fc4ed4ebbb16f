// K-quants (Q4_K, Q5_K, Q6_K): tpp's decoding against the gguf Python
// package's numpy dequantisers (tests/golden/kquants, tools/golden/gen_kquants.py),
// bit for bit; the linear layer's decode and prefill paths against float64
// over the decoded weights; and a whole GGUF model with K-quant matrices
// against the same model with those matrices decoded to f32.
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
            EXPECT_NEAR(y[size_t(n * M + m)], ref, 1e-5 * mag + 1e-6)
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
  EXPECT_LT(nmse(got, want), 1e-10);
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
