// Differential tests of the forward pass: every fast path against its slow
// path, over every golden configuration (each switch and family shape), plus
// the config identities of STYLE §10.
#include <filesystem>
#include <memory>

#include <gtest/gtest.h>

#include "common/test_util.h"
#include "model/model_test_util.h"
#include "tpp/core/error.h"

namespace tpp::test {
namespace {

// f32 paths that reorder sums differ by a few ulps of the logits.
constexpr Tolerance kPaths{2e-5, 1e-5};

class ForwardPathTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    model_ = std::make_unique<Model>(load_model(GetParam()));
    tokens_ = load_golden(GetParam()).tokens;
    reference_ = forward_logits(*model_, tokens_, {.naive_attention = true, .rolling = false});
  }
  bool length_dependent() const {
    return model_->config.rope_scaling.type == RopeScalingType::dynamic_ntk;
  }
  std::unique_ptr<Model> model_;
  std::vector<int32_t> tokens_;
  std::vector<float> reference_;  // one-shot, naive attention, full cache
};

std::string case_name(const ::testing::TestParamInfo<std::string>& info) {
  return std::filesystem::path(info.param).filename().string();
}

TEST_P(ForwardPathTest, FusedAttentionEqualsNaive) {
  EXPECT_TRUE(all_close(forward_logits(*model_, tokens_), reference_, kPaths));
}

TEST_P(ForwardPathTest, KvCacheDecodeEqualsFullForward) {
  if (length_dependent()) GTEST_SKIP() << "dynamic NTK rescales with the processed length by design";
  EXPECT_TRUE(all_close(forward_logits(*model_, tokens_, {.token_by_token = true}), reference_, kPaths));
}

// A 16-bit cache: rows enter it rounded, so decoding token by token through
// the cache, in pieces, with the naive attention, and the prompt at once all
// see the same keys and values, up to the rare element whose rounding an
// f32-path difference (kPaths) tips to the neighbouring value: the paths
// agree far more closely than the type agrees with an f32 cache, and that
// costs at most the type's precision.
TEST_P(ForwardPathTest, SixteenBitKvCacheDecodeEqualsFullForward) {
  if (length_dependent()) GTEST_SKIP() << "dynamic NTK rescales with the processed length by design";
  for (DType t : {DType::f16, DType::bf16}) {
    const auto one_shot = forward_logits(*model_, tokens_, {.kv_type = t});
    const double cost = nmse(one_shot, reference_);
    for (const ForwardOptions& o : {ForwardOptions{.token_by_token = true, .kv_type = t},
                                    ForwardOptions{.chunk = 3, .kv_type = t},
                                    ForwardOptions{.naive_attention = true, .token_by_token = true, .kv_type = t}}) {
      const double paths = nmse(forward_logits(*model_, tokens_, o), one_shot);
      EXPECT_LE(paths, 1e-12 + 0.1 * cost) << dtype_name(t) << " chunk " << o.chunk << " naive " << o.naive_attention;
    }
    // f16 keeps 11 significant bits, bf16 8 (relative rounding 2^-12, 2^-9);
    // f16 loses bits below 2^-14, where the Hugging Face-initialised cases'
    // small values (std 0.02 weights) reach.
    EXPECT_LT(cost, t == DType::f16 ? 1e-4 : 1e-3) << dtype_name(t);
  }
}

TEST_P(ForwardPathTest, ChunkedPrefillEqualsOneShot) {
  if (length_dependent()) GTEST_SKIP() << "dynamic NTK rescales with the processed length by design";
  for (int chunk : {2, 3, 5})
    EXPECT_TRUE(all_close(forward_logits(*model_, tokens_, {.chunk = chunk}), reference_, kPaths)) << "chunk " << chunk;
  // The internal chunking of one long call, too.
  EXPECT_TRUE(all_close(forward_logits(*model_, tokens_, {.max_chunk = 4}), reference_, kPaths));
}

TEST_P(ForwardPathTest, RollingWindowBufferEqualsFullCacheWithMask) {
  if (length_dependent()) GTEST_SKIP() << "dynamic NTK rescales with the processed length by design";
  const auto rolling = forward_logits(*model_, tokens_, {.rolling = true, .chunk = 3});
  const auto full = forward_logits(*model_, tokens_, {.rolling = false, .chunk = 3});
  // Same keys; the ring splits a run at its wrap point, so tiles (and f32 sums) differ slightly.
  EXPECT_TRUE(all_close(rolling, full, kPaths));
}

TEST_P(ForwardPathTest, ThreadsEqualOneThread) {
  const auto one = forward_logits(*model_, tokens_, {.threads = 1});
  const auto two = forward_logits(*model_, tokens_, {.threads = 2});
  const auto three = forward_logits(*model_, tokens_, {.threads = 3});
  EXPECT_TRUE(all_close(two, one, {0, 0}));  // static partitions: bitwise
  EXPECT_TRUE(all_close(three, one, {0, 0}));
}

// Continuous batching: three sequences of different lengths, each with its
// own cache, advance together (prefill pieces and single decode steps mixed
// in one batch). Each sequence's logits must be the bits it gets alone with
// the same pieces, and match its one-shot forward.
TEST_P(ForwardPathTest, BatchOfSequencesEqualsEachAlone) {
  const ModelConfig& c = model_->config;
  const int64_t T = int64_t(tokens_.size()), V = c.vocab_size;
  std::vector<std::vector<int32_t>> seqs = {tokens_, {}, {}};
  for (int64_t t = 0; t < T; ++t) seqs[1].push_back(tokens_[size_t((t * 7 + 3) % T)]);
  seqs[2].assign(tokens_.begin() + 2, tokens_.end());
  // Pieces per step, per sequence (0 = idle this step).
  const std::vector<std::vector<int64_t>> steps = {{5, 3, 7}, {1, 6, 1}, {4, 0, 2}, {1, 1, 1}, {3, 2, 1}};
  ThreadPool pool(2);
  Transformer batched(*model_);
  std::vector<KvCache> caches;
  for (size_t i = 0; i < seqs.size(); ++i) caches.emplace_back(c, T);
  std::vector<std::vector<float>> got(seqs.size());
  std::vector<int64_t> done(seqs.size(), 0);
  for (const auto& step : steps) {
    std::vector<Transformer::Request> reqs;
    std::vector<std::vector<float>> out(seqs.size());
    for (size_t i = 0; i < seqs.size(); ++i) {
      const int64_t n = std::min<int64_t>(step[i], int64_t(seqs[i].size()) - done[i]);
      if (n <= 0) continue;
      out[i].resize(size_t(n * V));
      reqs.push_back({&caches[i], std::span(seqs[i]).subspan(size_t(done[i]), size_t(n)), out[i].data(), true});
      done[i] += n;
    }
    batched.forward_batch(reqs, pool);
    for (size_t i = 0; i < seqs.size(); ++i) got[i].insert(got[i].end(), out[i].begin(), out[i].end());
  }
  for (size_t i = 0; i < seqs.size(); ++i) {
    const std::vector<int32_t> fed(seqs[i].begin(), seqs[i].begin() + done[i]);
    // Alone, with the same pieces.
    Transformer alone(*model_);
    KvCache cache(c, T);
    std::vector<float> ref;
    int64_t at = 0;
    for (const auto& step : steps) {
      const int64_t n = std::min<int64_t>(step[i], int64_t(fed.size()) - at);
      if (n <= 0) continue;
      std::vector<float> out(size_t(n * V));
      alone.forward(cache, std::span(fed).subspan(size_t(at), size_t(n)), out.data(), true, pool);
      ref.insert(ref.end(), out.begin(), out.end());
      at += n;
    }
    EXPECT_TRUE(all_close(got[i], ref, {0, 0})) << "sequence " << i;
    if (!length_dependent()) {
      EXPECT_TRUE(all_close(got[i], forward_logits(*model_, fed), kPaths)) << "sequence " << i << " vs one shot";
    }
  }
  // Not vacuous: a request continues its own cache only.
  std::vector<float> a(static_cast<size_t>(V)), b(static_cast<size_t>(V));
  KvCache fresh(c, T);
  const int32_t tok = seqs[0][size_t(done[0] - 1)];
  batched.forward(fresh, std::span(&tok, 1), a.data(), false, pool);
  caches[0].set_n_past(done[0] - 1);
  batched.forward(caches[0], std::span(&tok, 1), b.data(), false, pool);
  EXPECT_FALSE(all_close(a, b, kPaths)) << "the cache made no difference";
}

INSTANTIATE_TEST_SUITE_P(Cases, ForwardPathTest, ::testing::ValuesIn(golden_cases()), case_name);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(ForwardPathTest);

// ---------------------------------------------------------------------------
// Config identities on randomly initialised models (scale 25: std 0.5, so
// attention is far from uniform and every weight matters).

ModelConfig small_config() {
  ModelConfig c;
  c.d_model = 32;
  c.n_layers = 3;
  c.n_heads = 4;
  c.n_kv_heads = {2};
  c.d_ff = 48;
  c.vocab_size = 50;
  c.max_seq_len = 64;
  c.rope_theta = 10000;
  return c;
}

std::vector<int32_t> some_tokens(int n, int vocab) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) t[size_t(i)] = (i * 7 + 3) % vocab;
  return t;
}

// Copy a [rows, cols] f32 matrix's rows (row r of the result = row map(r) of m).
MatrixRef expand_rows(const MatrixRef& m, int64_t rows, const std::function<int64_t(int64_t)>& map,
                      std::vector<std::shared_ptr<const void>>& storage) {
  auto buf = std::make_shared<std::vector<float>>(size_t(rows * m.cols));
  for (int64_t r = 0; r < rows; ++r) m.row_f32(map(r), buf->data() + r * m.cols);
  storage.push_back(buf);
  return MatrixRef{DType::f32, buf->data(), rows, m.cols};
}

TEST(ConfigIdentityTest, GqaEqualsMhaWithRepeatedKvHeads) {
  ModelConfig gqa = small_config();
  const Model g = init_model(gqa, 7, DType::f32, 25.0);
  ModelConfig mha_cfg = gqa;
  mha_cfg.n_kv_heads = {4};
  Model mha = g;
  mha.config = mha_cfg;
  const int64_t k = gqa.head_dim_resolved(), h = gqa.n_heads, groups = 2;
  // MHA head i must see GQA KV head floor(i * g / h).
  auto map = [&](int64_t r) { return (r / k) * groups / h * k + r % k; };
  for (auto& L : mha.weights.layers) {
    L[TensorId::attn_k] = expand_rows(L[TensorId::attn_k], h * k, map, mha.weights.storage);
    L[TensorId::attn_v] = expand_rows(L[TensorId::attn_v], h * k, map, mha.weights.storage);
  }
  const auto tokens = some_tokens(13, gqa.vocab_size);
  const auto a = forward_logits(g, tokens), b = forward_logits(mha, tokens);
  EXPECT_TRUE(all_close(a, b, kPaths));
  // And the identity is not vacuous: a different mapping changes the logits.
  Model wrong = g;
  wrong.config = mha_cfg;
  auto wrong_map = [&](int64_t r) { return (r / k) % groups * k + r % k; };
  for (auto& L : wrong.weights.layers) {
    L[TensorId::attn_k] = expand_rows(L[TensorId::attn_k], h * k, wrong_map, wrong.weights.storage);
    L[TensorId::attn_v] = expand_rows(L[TensorId::attn_v], h * k, wrong_map, wrong.weights.storage);
  }
  EXPECT_FALSE(all_close(forward_logits(wrong, tokens), a, kPaths));
}

// SPEC's MQA example has 32 query heads on one KV head; any h/g must run
// (the fused kernel takes at most 16 heads per pass and loops over parts).
TEST(ConfigIdentityTest, MqaWithManyHeadsRunsAndMatchesNaive) {
  ModelConfig c = small_config();
  c.d_model = 64;
  c.n_heads = 32;
  c.head_dim = 8;
  c.n_kv_heads = {1};
  const Model m = init_model(c, 11, DType::f32, 25.0);
  const auto tokens = some_tokens(9, c.vocab_size);
  const auto fused = forward_logits(m, tokens, {.chunk = 4});
  EXPECT_TRUE(all_close(fused, forward_logits(m, tokens, {.naive_attention = true}), kPaths));
  EXPECT_TRUE(all_close(forward_logits(m, tokens, {.token_by_token = true}), fused, kPaths));
}

TEST(ConfigIdentityTest, WindowAtLeastSequenceEqualsGlobal) {
  ModelConfig c = small_config();
  const auto tokens = some_tokens(12, c.vocab_size);
  const Model global = init_model(c, 3, DType::f32, 25.0);
  Model local = global;
  local.config.sliding_window = 12;
  EXPECT_TRUE(all_close(forward_logits(local, tokens, {.chunk = 5}), forward_logits(global, tokens), kPaths));
  local.config.sliding_window = 5;
  EXPECT_FALSE(all_close(forward_logits(local, tokens), forward_logits(global, tokens), kPaths));
}

TEST(ConfigIdentityTest, RotaryDimZeroEqualsNoPositions) {
  ModelConfig c = small_config();
  c.rotary_dim = 0;
  const auto tokens = some_tokens(9, c.vocab_size);
  const Model a = init_model(c, 5, DType::f32, 25.0);
  Model b = a;
  b.config.pos_encoding = PosEncoding::none;
  b.config.rotary_dim = -1;
  EXPECT_TRUE(all_close(forward_logits(a, tokens), forward_logits(b, tokens), {0, 0}));
}

TEST(ConfigIdentityTest, LongSequenceRollingBufferWrapsCorrectly) {
  ModelConfig c = small_config();
  c.sliding_window = 5;
  c.layer_types = {LayerType::local, LayerType::global};
  c.cla_share = 1;
  const Model m = init_model(c, 11, DType::f32, 25.0);
  const auto tokens = some_tokens(40, c.vocab_size);
  const auto reference = forward_logits(m, tokens, {.naive_attention = true, .rolling = false});
  // 40 positions of std-0.5 weights: logits reach ~10, so allow 1e-4 absolute.
  for (int chunk : {1, 4, 7, 40})
    EXPECT_TRUE(all_close(forward_logits(m, tokens, {.chunk = chunk}), reference, {1e-4, 1e-5})) << "chunk " << chunk;
}

TEST(ConfigIdentityTest, Bf16WeightsTrackF32) {
  ModelConfig c = small_config();
  const Model f32 = init_model(c, 2, DType::f32, 25.0);
  const Model bf16 = init_model(c, 2, DType::bf16, 25.0);
  const auto tokens = some_tokens(10, c.vocab_size);
  const auto a = forward_logits(f32, tokens), b = forward_logits(bf16, tokens);
  EXPECT_LT(nmse(b, a), 2e-3);  // bf16 weight rounding (2^-9 relative) through 3 layers at std 0.5
  EXPECT_GT(nmse(b, a), 0.0);  // the weights really are rounded
}

// Every KV cache type on models with head_dim 32 (q8_0's block): GQA, sliding
// windows on a rolling buffer, ALiBi (whose keys are widened a tile at a
// time), soft-capping with the plus-one softmax. Decoding token by token,
// in pieces and with the naive attention agree with the prompt at once in
// the same type far more closely than the type agrees with an f32 cache
// (see SixteenBitKvCacheDecodeEqualsFullForward), and that cost stays
// within the type's precision and is not zero.
TEST(KvCacheTypeTest, EveryTypeDecodesAsItPrefillsAndTracksF32) {
  ModelConfig base = small_config();
  base.d_model = 64;
  base.n_heads = 4;
  base.head_dim = 32;
  base.n_kv_heads = {2};
  ModelConfig window = base;
  window.sliding_window = 6;
  window.layer_types = {LayerType::local, LayerType::global, LayerType::local};
  ModelConfig alibi = base;
  alibi.pos_encoding = PosEncoding::alibi;
  ModelConfig capped = base;
  capped.attn_softcap = 20;
  capped.softmax = Softmax::plus_one;
  const auto tokens = some_tokens(40, base.vocab_size);
  for (const auto& [name, c] : {std::pair{"gqa", base}, {"window", window}, {"alibi", alibi}, {"softcap", capped}}) {
    const Model m = init_model(c, 17, DType::f32, 4.0);
    const auto f32 = forward_logits(m, tokens);
    for (DType t : {DType::f16, DType::bf16, DType::q8_0}) {
      const std::string what = std::string(name) + " " + std::string(dtype_name(t));
      const auto one_shot = forward_logits(m, tokens, {.kv_type = t});
      const double cost = nmse(one_shot, f32);
      for (const ForwardOptions& o : {ForwardOptions{.token_by_token = true, .kv_type = t},
                                      ForwardOptions{.chunk = 7, .kv_type = t},
                                      ForwardOptions{.naive_attention = true, .rolling = false, .chunk = 5, .kv_type = t}}) {
        const double paths = nmse(forward_logits(m, tokens, o), one_shot);
        EXPECT_LE(paths, 1e-12 + 0.1 * cost) << what << " chunk " << o.chunk << " naive " << o.naive_attention;
      }
      // Rounding of K and V: f16 2^-12 relative, bf16 2^-9, q8_0 up to 1/254
      // of each block's largest element.
      EXPECT_LT(cost, t == DType::f16 ? 1e-6 : 1e-3) << what;
      EXPECT_GT(cost, 0.0) << what << ": the cache type made no difference";
    }
  }
}

TEST(KvCacheTypeTest, AllocatesWhatKvCacheBytesReportsAndRefusesBadTypes) {
  ModelConfig c = small_config();
  c.d_model = 64;
  c.head_dim = 32;
  c.sliding_window = 6;
  c.layer_types = {LayerType::local, LayerType::global};
  c.cla_share = 1;
  for (DType t : {DType::f32, DType::f16, DType::bf16, DType::q8_0})
    for (int64_t T : {1, 6, 20}) {
      const KvCache cache(c, T, t);
      EXPECT_EQ(cache.bytes(), kv_cache_bytes(c, T, t)) << dtype_name(t) << " T=" << T;
    }
  // Per position of one head: 128, 64, 64 and 34 bytes.
  const ModelConfig& g = c;
  const int64_t owning_kv = [&] {
    int64_t n = 0;
    for (int l = 0; l < g.n_layers; ++l) n += g.owns_kv(l) ? g.kv_heads(l) : 0;
    return n;
  }();
  EXPECT_EQ(kv_cache_bytes(c, 1, DType::q8_0), 2 * owning_kv * 34);
  EXPECT_EQ(kv_cache_bytes(c, 1, DType::f16), 2 * owning_kv * 64);
  EXPECT_THROW(KvCache(c, 8, DType::q4_0), Error);
  ModelConfig odd = small_config();  // head_dim 8: not a q8_0 block
  EXPECT_THROW(KvCache(odd, 8, DType::q8_0), Error);
  try {
    KvCache(odd, 8, DType::q8_0);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("head_dim is 8"), std::string::npos) << e.what();
  }
}

TEST(TransformerTest, RejectsOutOfRangeTokensAndOverflowingCache) {
  ModelConfig c = small_config();
  const Model m = init_model(c, 1);
  ThreadPool pool(1);
  Transformer tr(m);
  KvCache cache(c, 4);
  std::vector<float> logits(static_cast<size_t>(c.vocab_size) * 8);
  std::vector<int32_t> bad = {1, 50};
  EXPECT_THROW(tr.forward(cache, bad, logits.data(), true, pool), Error);
  std::vector<int32_t> too_long = {1, 2, 3, 4, 5};
  EXPECT_THROW(tr.forward(cache, too_long, logits.data(), true, pool), Error);
}

}  // namespace
}  // namespace tpp::test
