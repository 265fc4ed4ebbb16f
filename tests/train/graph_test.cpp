// The training graph against the inference engine (forward) and against
// central finite differences in double precision (backward), for every golden
// configuration: together they cover every switch of SPEC §1 the engine runs.
#include <cmath>
#include <filesystem>

#include <gtest/gtest.h>

#include "common/test_util.h"
#include "model/model_test_util.h"
#include "tpp/core/dtype.h"
#include "tpp/core/rng.h"
#include "tpp/kernels/api.h"
#include "tpp/train/graph.h"
#include "tpp/train/params.h"

namespace tpp::test {
namespace {

using train::Batch;
using train::Graph;
using train::ParamLayout;

std::string case_name(const ::testing::TestParamInfo<std::string>& info) {
  return std::filesystem::path(info.param).filename().string();
}

// B sequences of T tokens and their next-token targets, from a fixed stream.
struct TokenBatch {
  std::vector<int32_t> tokens, targets;
  Batch batch(int64_t B, int64_t T) const { return {B, T, tokens.data(), targets.data()}; }
};
TokenBatch make_batch(int64_t B, int64_t T, int vocab, uint64_t seed) {
  TokenBatch b;
  const CounterRng rng(seed, 1);
  for (int64_t i = 0; i < B * T; ++i) {
    b.tokens.push_back(int32_t(rng.bits(uint64_t(2 * i)) % uint64_t(vocab)));
    b.targets.push_back(int32_t(rng.bits(uint64_t(2 * i + 1)) % uint64_t(vocab)));
  }
  return b;
}

// Longest sequence the case allows, capped for speed.
int64_t seq_len(const ModelConfig& c, int64_t cap) { return std::min<int64_t>(cap, c.max_seq_len); }

class TrainGraphTest : public ::testing::TestWithParam<std::string> {};

// Training forward (batched, whole sequences) = inference forward (KV cache)
// of a model holding the same f32 weights, packed as loading packs them.
TEST_P(TrainGraphTest, ForwardLogitsMatchInference) {
  const Model model = load_model(GetParam());
  const ModelConfig& c = model.config;
  const ParamLayout layout = train::make_layout(c);
  const auto params = train::params_from_model(model, layout);
  Model f32 = train::model_from_params(c, layout, params);
  pack_weights(f32);
  const int64_t B = 2, T = seq_len(c, 11);
  const TokenBatch tb = make_batch(B, T, c.vocab_size, 7);
  ThreadPool pool(2);
  Graph<float> graph(c, layout);
  const double loss = graph.forward(params.data(), tb.batch(B, T), pool);
  double expect_loss = 0;
  for (int64_t b = 0; b < B; ++b) {
    const std::vector<int32_t> seq(tb.tokens.begin() + b * T, tb.tokens.begin() + (b + 1) * T);
    const auto ref = forward_logits(f32, seq);
    const std::vector<float> got(graph.logits().begin() + b * T * c.vocab_size,
                                 graph.logits().begin() + (b + 1) * T * c.vocab_size);
    // One block computes both: with the same weights and kernels the logits
    // are the same bits (any thread count: no op's result depends on the split).
    EXPECT_TRUE(all_close(got, ref, {0, 0})) << "sequence " << b;
    for (int64_t t = 0; t < T; ++t) {
      const float* z = ref.data() + t * c.vocab_size;
      double mx = z[0], sum = 0;
      for (int i = 1; i < c.vocab_size; ++i) mx = std::max(mx, double(z[i]));
      for (int i = 0; i < c.vocab_size; ++i) sum += std::exp(double(z[i]) - mx);
      expect_loss += std::log(sum) + mx - z[tb.targets[size_t(b * T + t)]];
    }
  }
  EXPECT_NEAR(loss, expect_loss / double(B * T), 1e-4);
}

// Every parameter tensor's gradient against central differences in double.
TEST_P(TrainGraphTest, GradientsMatchFiniteDifferences) {
  const Model model = load_model(GetParam());
  const ModelConfig& c = model.config;
  const ParamLayout layout = train::make_layout(c);
  const auto pf = train::params_from_model(model, layout);
  std::vector<double> params(pf.begin(), pf.end());
  const int64_t B = 2, T = seq_len(c, 9);
  const TokenBatch tb = make_batch(B, T, c.vocab_size, 11);
  ThreadPool pool(1);  // hundreds of tiny forwards: no spinning workers
  Graph<double> graph(c, layout);
  const double f0 = graph.forward(params.data(), tb.batch(B, T), pool);
  std::vector<double> grads(params.size(), 0.0);
  graph.backward(params.data(), grads.data(), 1.0, pool);
  const double eps = 1e-5;
  int checked = 0, kinks = 0;
  for (const auto& e : layout.entries) {
    // A few entries of every tensor, spread over it (the first, the last and some between).
    const CounterRng pick(3, hash_name(e.name));
    std::vector<int64_t> at = {0, e.size - 1};
    for (int i = 0; i < 4; ++i) at.push_back(int64_t(pick.bits(uint64_t(i)) % uint64_t(e.size)));
    for (int64_t i : at) {
      double& p = params[size_t(e.offset + i)];
      const double saved = p;
      p = saved + eps;
      const double up = graph.forward(params.data(), tb.batch(B, T), pool);
      p = saved - eps;
      const double down = graph.forward(params.data(), tb.batch(B, T), pool);
      p = saved;
      const double fd = (up - down) / (2 * eps);
      const double an = grads[size_t(e.offset + i)];
      // A ReLU kink inside [p - eps, p + eps] makes the one-sided slopes
      // disagree; the central difference is meaningless there.
      const double right = (up - f0) / eps, left = (f0 - down) / eps;
      if (std::abs(right - left) > 1e-3 * (1e-4 + std::abs(fd))) {
        ++kinks;
        continue;
      }
      EXPECT_NEAR(an, fd, 1e-7 + 1e-5 * std::abs(fd)) << e.name << "[" << i << "]";
      ++checked;
    }
  }
  EXPECT_GT(checked, 0);
  EXPECT_LE(kinks, checked / 20) << "too many non-smooth points to trust the check";
}

// Sequences longer than the attention row blocks (64), with a window that
// straddles them, local and global layers, soft-cap and plus-one softmax:
// forward against inference, a sample of gradients against finite differences.
// bf16 compute (Bf16Weights: every projection and its backward on bf16 dot
// kernels, activations rounded to bf16 at each matmul input) against the f32
// graph over the same bf16-rounded weights: the loss within 1 %, and every
// matrix's gradient within 5 % in relative L2 norm (bf16 keeps 8 significant
// bits: about 0.4 % per rounding, several roundings deep).
TEST_P(TrainGraphTest, Bf16ComputeTracksF32Gradients) {
  if (!train::Bf16Weights::supported()) GTEST_SKIP() << "this CPU has no bf16 dot kernels";
  const Model model = load_model(GetParam());
  const ModelConfig& c = model.config;
  const ParamLayout layout = train::make_layout(c);
  auto params = train::params_from_model(model, layout);
  for (const auto& e : layout.entries)
    if (e.matrix)
      for (int64_t i = e.offset; i < e.offset + e.size; ++i) params[size_t(i)] = bf16_to_f32(f32_to_bf16(params[size_t(i)]));
  const int64_t B = 2, T = seq_len(c, 12);
  const TokenBatch tb = make_batch(B, T, c.vocab_size, 5);
  ThreadPool pool(2);
  Graph<float> gf(c, layout), gb(c, layout);
  std::vector<float> want(params.size(), 0.0f), got(params.size(), 0.0f);
  const double lf = gf.forward(params.data(), tb.batch(B, T), pool);
  gf.backward(params.data(), want.data(), 1.0f, pool);
  train::Bf16Weights bw(layout);
  const ModelWeights& w = bw.refresh(params.data(), pool);
  EXPECT_EQ(w.layers[0][TensorId::attn_output].dtype, DType::bf16);
  const double lb = gb.forward(w, tb.batch(B, T), pool);
  gb.backward(w, got.data(), 1.0f, pool);
  EXPECT_NEAR(lb, lf, 0.01 * lf);
  int matrices = 0;
  for (const auto& e : layout.entries) {
    // (Vectors aside: some gradients are zero in exact arithmetic, e.g. a
    // K bias, which shifts every score of a query alike.)
    if (!e.matrix) continue;
    double diff = 0, norm = 0;
    for (int64_t i = e.offset; i < e.offset + e.size; ++i) {
      diff += std::pow(double(got[size_t(i)]) - want[size_t(i)], 2);
      norm += std::pow(double(want[size_t(i)]), 2);
    }
    if (norm < 1e-20) continue;
    ++matrices;
    EXPECT_LT(std::sqrt(diff / norm), 0.05) << e.name;
  }
  EXPECT_GT(matrices, 0);
}

TEST(TrainGraphLongTest, BlockedAttentionOverLongSequences) {
  ModelConfig c;
  c.d_model = 16;
  c.n_layers = 2;
  c.n_heads = 2;
  c.n_kv_heads = {1};
  c.d_ff = 24;
  c.vocab_size = 40;
  c.max_seq_len = 256;
  c.sliding_window = 70;
  c.layer_types = {LayerType::local, LayerType::global};
  c.attn_softcap = 3.0;
  c.softmax = Softmax::plus_one;
  const Model model = init_model(c, 5, DType::f32, 3.0);
  const ParamLayout layout = train::make_layout(model.config);
  const auto pf = train::params_from_model(model, layout);
  const int64_t T = 150;
  const TokenBatch tb = make_batch(1, T, c.vocab_size, 3);
  ThreadPool pool(2);
  Graph<float> gf(model.config, layout);
  gf.forward(pf.data(), tb.batch(1, T), pool);
  EXPECT_TRUE(all_close(gf.logits(), forward_logits(model, tb.tokens), kModelLogitsF32));

  std::vector<double> p(pf.size()), grads(pf.size(), 0.0);
  std::copy(pf.begin(), pf.end(), p.begin());
  Graph<double> g(model.config, layout);
  g.forward(p.data(), tb.batch(1, T), pool);
  g.backward(p.data(), grads.data(), 1.0, pool);
  for (const char* name : {"blk.0.attn_q.weight", "blk.0.attn_k.weight", "blk.1.attn_v.weight", "tok_embd.weight"}) {
    const auto* e = layout.find(name);
    ASSERT_NE(e, nullptr);
    const int64_t picks[3] = {0, e->size / 3, e->size - 1};
    for (int64_t i : picks) {
      double& v = p[size_t(e->offset + i)];
      const double saved = v;
      v = saved + 1e-5;
      const double up = g.forward(p.data(), tb.batch(1, T), pool);
      v = saved - 1e-5;
      const double down = g.forward(p.data(), tb.batch(1, T), pool);
      v = saved;
      const double fd = (up - down) / 2e-5;
      EXPECT_NEAR(grads[size_t(e->offset + i)], fd, 1e-7 + 1e-5 * std::abs(fd)) << name << "[" << i << "]";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, TrainGraphTest, ::testing::ValuesIn(golden_cases()), case_name);

}  // namespace
}  // namespace tpp::test
