// MHA -> GQA conversion (tpp/convert/kv_heads.h): the identities the GQA
// paper's method must keep, the group means checked against an independent
// computation, every dependent tensor carried, refusals by name, and the
// written model (directory or GGUF) loading back to the same logits.
#include <cstring>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "common/test_util.h"
#include "tpp/convert/kv_heads.h"
#include "tpp/core/error.h"
#include "tpp/core/thread_pool.h"
#include "tpp/io/gguf.h"
#include "tpp/model/kv_cache.h"
#include "tpp/model/transformer.h"

namespace tpp::test {
namespace {

namespace fs = std::filesystem;

const std::vector<int32_t> kTokens = {3, 17, 250, 42, 42, 9, 100, 7, 1, 255, 64, 31};

std::vector<float> logits_of(const Model& m) {
  std::vector<int32_t> tokens = kTokens;
  for (auto& t : tokens) t %= m.config.vocab_size;
  ThreadPool pool(2);
  Transformer tf(m);
  KvCache cache(m.config, int64_t(tokens.size()));
  std::vector<float> out(tokens.size() * size_t(m.config.vocab_size));
  tf.forward(cache, tokens, out.data(), true, pool);
  return out;
}

ModelConfig mha_config() {
  ModelConfig c;
  c.d_model = 64;
  c.n_layers = 2;
  c.n_heads = 8;
  c.n_kv_heads = {0};
  c.d_ff = 96;
  c.vocab_size = 260;
  c.max_seq_len = 64;
  c.qkv_bias = true;  // Qwen2-style K/V biases must be pooled too
  return c;
}

convert::KvHeadsOptions opts(std::vector<int> g, convert::KvInit m = convert::KvInit::mean, uint64_t seed = 0) {
  convert::KvHeadsOptions o;
  o.kv_heads = std::move(g);
  o.method = m;
  o.seed = seed;
  return o;
}

// Row r of a matrix (or element r of a vector) widened to f32.
std::vector<float> row(const MatrixRef& m, int64_t r) {
  std::vector<float> out(size_t(m.cols));
  m.row_f32(r, out.data());
  return out;
}

// Makes the K and V heads of every group of `group` heads copies of the group's
// first head (the weights of init_model are owned buffers, so writable), and
// packs the changed matrices again.
void make_groups_identical(Model& m, int group) {
  const int64_t k = m.config.head_dim_resolved();
  for (auto& layer : m.weights.layers)
    for (TensorId id : {TensorId::attn_k, TensorId::attn_v, TensorId::attn_k_b, TensorId::attn_v_b}) {
      MatrixRef& t = layer[id];
      if (!t.data) continue;
      auto* bytes = static_cast<std::byte*>(const_cast<void*>(t.data));
      const int64_t row_bytes = dtype_bytes(t.dtype, t.cols);
      for (int64_t head = 0; head < t.rows / k; ++head)
        if (head % group != 0)
          std::memcpy(bytes + head * k * row_bytes, bytes + (head - head % group) * k * row_bytes,
                      size_t(k * row_bytes));
      t.packed = nullptr;
    }
  pack_weights(m);
}

TEST(ConvertKvHeadsTest, KeepingTheHeadCountChangesNoLogit) {
  for (DType dtype : {DType::f32, DType::bf16, DType::f16}) {
    const Model m = init_model(mha_config(), 1, dtype, 4.0);
    const auto want = logits_of(m);
    for (auto method : {convert::KvInit::mean, convert::KvInit::first}) {
      const Model c = convert::convert_kv_heads(m, opts({8}, method));
      EXPECT_EQ(c.weights.layers[0][TensorId::attn_k].dtype, dtype);
      EXPECT_EQ(logits_of(c), want) << dtype_name(dtype) << " " << convert::kv_init_name(method);
    }
  }
}

TEST(ConvertKvHeadsTest, PoolingIdenticalHeadsKeepsTheLogits) {
  Model m = init_model(mha_config(), 2, DType::f32, 4.0);
  make_groups_identical(m, 4);
  const auto want = logits_of(m);
  for (auto method : {convert::KvInit::mean, convert::KvInit::first}) {
    const Model c = convert::convert_kv_heads(m, opts({2}, method));
    EXPECT_EQ(c.config.kv_heads(0), 2);
    const auto got = logits_of(c);
    EXPECT_TRUE(all_close(got, want, {1e-5, 1e-5})) << convert::kv_init_name(method);
  }
  // Pooling heads that differ changes the model (the identity above is not vacuous).
  Model d = init_model(mha_config(), 2, DType::f32, 4.0);
  EXPECT_NE(logits_of(convert::convert_kv_heads(d, opts({2}))), logits_of(d));
}

TEST(ConvertKvHeadsTest, NewHeadsAreTheGroupMeansOrFirstHeads) {
  const Model m = init_model(mha_config(), 3, DType::f32, 4.0);
  const int64_t k = m.config.head_dim_resolved();
  const Model mean = convert::convert_kv_heads(m, opts({2}));
  const Model first = convert::convert_kv_heads(m, opts({2}, convert::KvInit::first));
  for (int l = 0; l < 2; ++l)
    for (TensorId id : {TensorId::attn_k, TensorId::attn_v, TensorId::attn_k_b, TensorId::attn_v_b}) {
      const MatrixRef& old = m.weights.layers[size_t(l)][id];
      const MatrixRef& pooled = mean.weights.layers[size_t(l)][id];
      ASSERT_EQ(pooled.rows, 2 * k);
      ASSERT_EQ(pooled.cols, old.cols);
      for (int j = 0; j < 2; ++j)
        for (int64_t r = 0; r < k; ++r) {
          const auto got = row(pooled, j * k + r), got_first = row(first.weights.layers[size_t(l)][id], j * k + r);
          for (int64_t c = 0; c < old.cols; ++c) {
            double sum = 0;
            for (int s = 0; s < 4; ++s) sum += row(old, (j * 4 + s) * k + r)[size_t(c)];
            EXPECT_NEAR(got[size_t(c)], sum / 4, 1e-7);
            EXPECT_EQ(got_first[size_t(c)], row(old, j * 4 * k + r)[size_t(c)]);
          }
        }
    }
  // What does not depend on the KV heads is the source's own tensor.
  EXPECT_EQ(mean.weights.layers[1][TensorId::attn_q].data, m.weights.layers[1][TensorId::attn_q].data);
  EXPECT_EQ(mean.weights.layers[1][TensorId::attn_output].data, m.weights.layers[1][TensorId::attn_output].data);
  EXPECT_EQ(mean.config.n_params(), m.config.n_params() - 2 * 2 * 6 * k * (64 + 1));
}

TEST(ConvertKvHeadsTest, RandomIsFreshSeededAndZeroBiased) {
  const Model m = init_model(mha_config(), 4, DType::f32, 4.0);
  const Model a = convert::convert_kv_heads(m, opts({4}, convert::KvInit::random, 7));
  const Model b = convert::convert_kv_heads(m, opts({4}, convert::KvInit::random, 7));
  const Model c = convert::convert_kv_heads(m, opts({4}, convert::KvInit::random, 8));
  const MatrixRef& ka = a.weights.layers[0][TensorId::attn_k];
  const auto r0 = row(ka, 0);
  EXPECT_EQ(r0, row(b.weights.layers[0][TensorId::attn_k], 0));
  EXPECT_NE(r0, row(c.weights.layers[0][TensorId::attn_k], 0));
  double sum2 = 0;
  int64_t n = 0;
  for (int64_t r = 0; r < ka.rows; ++r)
    for (float v : row(ka, r)) sum2 += double(v) * v, ++n;
  EXPECT_NEAR(std::sqrt(sum2 / double(n)), 0.02, 0.002);  // N(0, 0.02), as a fresh model's
  for (float v : row(a.weights.layers[0][TensorId::attn_k_b], 0)) EXPECT_EQ(v, 0.0f);
  for (int64_t r = 0; r < ka.rows; ++r) EXPECT_EQ(row(a.weights.layers[1][TensorId::attn_v_b], r)[0], 0.0f);
}

TEST(ConvertKvHeadsTest, KvCacheShrinksByTheFactor) {
  const Model m = init_model(mha_config(), 5, DType::f32);
  for (int g : {8, 4, 2, 1}) {
    const Model c = convert::convert_kv_heads(m, opts({g}));
    EXPECT_EQ(kv_cache_bytes(c.config, 1024, DType::f16) * (8 / g), kv_cache_bytes(m.config, 1024, DType::f16));
    // The engine's cache agrees with the formula.
    EXPECT_EQ(KvCache(c.config, 1024).bytes() * (8 / g), KvCache(m.config, 1024).bytes());
  }
}

TEST(ConvertKvHeadsTest, PerLayerCountsAndClaGroups) {
  ModelConfig cfg = mha_config();
  cfg.n_layers = 4;
  cfg.cla_share = 2;
  Model m = init_model(cfg, 6, DType::f32, 4.0);
  make_groups_identical(m, 8);
  const auto want = logits_of(m);
  const Model c = convert::convert_kv_heads(m, opts({2, 2, 1, 1}));
  EXPECT_EQ(c.config.kv_heads(0), 2);
  EXPECT_EQ(c.config.kv_heads(1), 2);
  EXPECT_EQ(c.config.kv_heads(3), 1);
  EXPECT_FALSE(c.weights.layers[1][TensorId::attn_k].data);  // layer 1 reuses layer 0's K/V
  const auto got = logits_of(c);
  EXPECT_TRUE(all_close(got, want, {1e-5, 1e-5}));
  EXPECT_ERROR(convert::convert_kv_heads(m, opts({2, 1, 1, 1})), "layer 1 reuses layer 0's K/V");
}

TEST(ConvertKvHeadsTest, RefusalsNameTheOptionAndTheLayer) {
  const Model mha = init_model(mha_config(), 7, DType::f32);
  EXPECT_ERROR(convert::convert_kv_heads(mha, opts({3})), "--kv-heads: got 3, which does not divide layer 0's 8");
  EXPECT_ERROR(convert::convert_kv_heads(mha, opts({0})), "--kv-heads: got 0, expected a positive");
  EXPECT_ERROR(convert::convert_kv_heads(mha, opts({4, 4, 4})), "got 3 values, expected one for every layer");
  const Model gqa = convert::convert_kv_heads(mha, opts({2}));
  EXPECT_ERROR(convert::convert_kv_heads(gqa, opts({4})), "layer 0 has 2 KV heads; conversion merges heads");
  EXPECT_ERROR(convert::convert_kv_heads(mha, opts({8, 16})), "--kv-heads[1]: got 16");
}

TEST(ConvertKvHeadsTest, HuggingFaceQwen2Bf16SourceWritesALoadableDirectory) {
  // A real-layout checkpoint: bf16, K/V biases, GQA-2 -> MQA.
  const std::string src = temp_dir("convert_qwen2_src");
  fs::copy(source_path("tests/golden/models/hf_qwen2_bf16"), src, fs::copy_options::recursive);
  write_test_tokenizer(src);
  const Model m = load_model(src);
  ASSERT_EQ(m.config.kv_heads(0), 2);
  const Model same = convert::convert_kv_heads(m, opts({2}));
  EXPECT_EQ(logits_of(same), logits_of(m));
  const Model mqa = convert::convert_kv_heads(m, opts({1}));
  const std::string out = temp_dir("convert_qwen2_out");
  convert::save_converted(mqa, src, out, DType::bf16);
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"})
    EXPECT_TRUE(fs::exists(fs::path(out) / f)) << f;
  const Model back = load_model(out);
  EXPECT_EQ(back.config.kv_heads(0), 1);
  EXPECT_EQ(back.config.rope_layout, m.config.rope_layout);
  EXPECT_EQ(back.weights.layers[0][TensorId::attn_k].dtype, DType::bf16);
  EXPECT_EQ(logits_of(back), logits_of(mqa));
}

TEST(ConvertKvHeadsTest, GgufSourceWritesGgufWithItsMetadata) {
  // llama.cpp's Q8_0 file: interleaved RoPE rows, block-quantised K/V.
  const std::string src = source_path("tests/golden/gguf/llama_q8_0.gguf");
  const Model m = load_model(src);
  const int g = m.config.kv_heads(0);
  ASSERT_GT(g, 1);
  const std::string out = temp_dir("convert_gguf") + "/mqa.gguf";
  const Model mqa = convert::convert_kv_heads(m, opts({1}));
  EXPECT_EQ(mqa.weights.layers[0][TensorId::attn_k].dtype, DType::f32);
  convert::save_converted(mqa, src, out);
  const Model back = load_model(out);
  EXPECT_EQ(back.config.kv_heads(0), 1);
  EXPECT_EQ(logits_of(back), logits_of(mqa));
  // Everything else of the file is carried, tokenizer included.
  const auto a = io::GgufFile::open(src), b = io::GgufFile::open(out);
  for (const auto& key : a.keys()) {
    if (key.find("head_count_kv") == std::string::npos && key != "general.alignment") {
      EXPECT_TRUE(b.find(key)) << key;
    }
  }
  EXPECT_ERROR(convert::save_converted(mqa, src, temp_dir("convert_gguf_dir")), "give --out FILE.gguf");
  EXPECT_ERROR(convert::save_converted(init_model(mha_config(), 1), "", out), "only from a GGUF source");
}

TEST(ConvertKvHeadsTest, GgufWithoutHeadCountKvGetsTheKey) {
  // llama.cpp leaves head_count_kv out of MHA files. Make one: the GQA-2 file's
  // K/V heads repeated to one per query head, the key dropped; pooling the
  // repeats must give back the GQA-2 model.
  const std::string src = source_path("tests/golden/gguf/llama_f32.gguf");
  const auto f = io::GgufFile::open(src);
  const Model gqa = load_model(src);
  const int h = gqa.config.n_heads, g = gqa.config.kv_heads(0);
  const int64_t k = gqa.config.head_dim_resolved();
  ASSERT_LT(g, h);
  std::vector<std::pair<std::string, io::GgufValue>> meta;
  for (const auto& key : f.keys())
    if (key.find("head_count_kv") == std::string::npos) meta.emplace_back(key, *f.find(key));
  std::vector<std::vector<std::byte>> keep;
  std::vector<io::GgufWriteTensor> tensors;
  for (const auto& t : f.tensors()) {
    const bool kv = t.name.find("attn_k.") != std::string::npos || t.name.find("attn_v.") != std::string::npos;
    if (!kv) {
      tensors.push_back({t.name, t.type, t.shape(), {t.data, size_t(t.nbytes)}});
      continue;
    }
    ASSERT_EQ(t.type, 0u);  // F32
    const auto shape = t.shape();
    const size_t head_bytes = size_t(t.nbytes) / size_t(g);
    auto& bytes = keep.emplace_back();
    for (int j = 0; j < h; ++j) bytes.insert(bytes.end(), t.data + size_t(j / (h / g)) * head_bytes,
                                             t.data + size_t(j / (h / g) + 1) * head_bytes);
    std::vector<int64_t> mha = shape;
    mha[0] = shape[0] / g * h;
    tensors.push_back({t.name, t.type, mha, bytes});
  }
  const std::string dir = temp_dir("convert_gguf_mha");
  io::write_gguf(dir + "/mha.gguf", meta, tensors);
  const Model mha = load_model(dir + "/mha.gguf");
  ASSERT_EQ(mha.config.kv_heads(0), h);
  EXPECT_EQ(mha.weights.layers[0][TensorId::attn_k].rows, h * k);
  convert::save_converted(convert::convert_kv_heads(mha, opts({g})), dir + "/mha.gguf", dir + "/back.gguf");
  const Model back = load_model(dir + "/back.gguf");
  EXPECT_EQ(back.config.kv_heads(0), g);
  EXPECT_TRUE(io::GgufFile::open(dir + "/back.gguf").find("llama.attention.head_count_kv"));
  EXPECT_TRUE(all_close(logits_of(back), logits_of(gqa), {1e-5, 1e-5}));
}

TEST(ConvertCliTest, ConvertsAndReportsTheCacheSaving) {
  const std::string dir = temp_dir("convert_cli");
  const Model m = init_model(mha_config(), 9, DType::bf16);
  save_model(m, dir + "/mha", DType::bf16);
  std::string out;
  ASSERT_EQ(run_command(tpp_binary() + " convert -m " + dir + "/mha --kv-heads 2 --out " + dir + "/gqa", &out), 0)
      << out;
  EXPECT_NE(out.find("KV heads 8 -> 2 (mean)"), std::string::npos) << out;
  EXPECT_NE(out.find("4.00x smaller"), std::string::npos) << out;
  EXPECT_EQ(load_model(dir + "/gqa").weights.layers[0][TensorId::attn_k].dtype, DType::bf16);
  EXPECT_NE(run_command(tpp_binary() + " convert -m " + dir + "/mha --kv-heads 3 --out " + dir + "/x", &out), 0);
  EXPECT_NE(out.find("does not divide"), std::string::npos) << out;
  EXPECT_NE(run_command(tpp_binary() + " convert -m " + dir + "/mha --kv-heads 2 --method avg --out " + dir + "/x",
                        &out),
            0);
  EXPECT_NE(out.find("expected mean, first or random"), std::string::npos) << out;
}

}  // namespace
}  // namespace tpp::test
