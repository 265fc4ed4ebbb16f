// perplexity(): each figure against a direct computation from the logits of
// the chunks (log-softmax in double, written out here), the chunking and BOS
// rule, a model against itself, and the refusals.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "common/test_util.h"
#include "tpp/infer/perplexity.h"
#include "tpp/model/kv_cache.h"
#include "tpp/model/model.h"
#include "tpp/model/transformer.h"

namespace tpp {
namespace {

using namespace test;

ModelConfig config() {
  ModelConfig c;
  c.d_model = 32;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = {2};
  c.d_ff = 48;
  c.vocab_size = 40;
  c.max_seq_len = 32;
  c.rope_theta = 10000.0;
  c.validate();
  return c;
}

std::vector<int32_t> tokens(int n) {
  std::vector<int32_t> t;
  for (int i = 0; i < n; ++i) t.push_back((i * 13 + i / 5) % 40);
  return t;
}

std::vector<double> log_softmax(const float* x, int V) {
  double mx = x[0];
  for (int v = 1; v < V; ++v) mx = std::max(mx, double(x[v]));
  double s = 0;
  for (int v = 0; v < V; ++v) s += std::exp(double(x[v]) - mx);
  std::vector<double> out(static_cast<size_t>(V));
  for (int v = 0; v < V; ++v) out[size_t(v)] = double(x[v]) - mx - std::log(s);
  return out;
}

struct Direct {
  std::vector<double> nll, base_nll, kld;
  int same = 0;
};

Direct direct(const Model& m, const Model& b, const std::vector<int32_t>& all, int64_t ctx, int64_t chunks,
              int32_t bos) {
  const int V = m.config.vocab_size;
  Direct d;
  ThreadPool pool(2);
  for (int64_t k = 0; k < chunks; ++k) {
    std::vector<int32_t> chunk(all.begin() + k * ctx, all.begin() + (k + 1) * ctx);
    if (bos >= 0) chunk[0] = bos;
    std::vector<float> lm(size_t(ctx * V)), lb(size_t(ctx * V));
    Transformer tm(m), tb(b);
    KvCache cm(m.config, ctx), cb(b.config, ctx);
    tm.forward(cm, chunk, lm.data(), true, pool);
    tb.forward(cb, chunk, lb.data(), true, pool);
    for (int64_t i = ctx / 2; i < ctx - 1; ++i) {
      const auto q = log_softmax(lm.data() + i * V, V), p = log_softmax(lb.data() + i * V, V);
      const int32_t next = chunk[size_t(i + 1)];
      d.nll.push_back(-q[size_t(next)]);
      d.base_nll.push_back(-p[size_t(next)]);
      double kl = 0;
      for (int v = 0; v < V; ++v) kl += std::exp(p[size_t(v)]) * (p[size_t(v)] - q[size_t(v)]);
      d.kld.push_back(kl);
      d.same += std::max_element(q.begin(), q.end()) - q.begin() == std::max_element(p.begin(), p.end()) - p.begin();
    }
  }
  return d;
}

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s / double(v.size());
}

TEST(PerplexityTest, FiguresMatchADirectComputation) {
  const Model m = init_model(config(), 1, DType::f32, 4.0), b = init_model(config(), 2, DType::f32, 4.0);
  const auto all = tokens(100);  // 6 whole chunks of 16; the rest unused
  for (int32_t bos : {-1, 39}) {
    PerplexityOptions o;
    o.ctx = 16;
    o.max_chunks = 5;
    o.bos = bos;
    ThreadPool pool(2);
    int64_t calls = 0;
    const auto r = perplexity(m, &b, all, o, pool, [&](int64_t done, int64_t n, const PerplexityReport&) {
      EXPECT_EQ(done, ++calls);
      EXPECT_EQ(n, 5);
    });
    const Direct d = direct(m, b, all, 16, 5, bos);
    ASSERT_EQ(r.tokens, int64_t(d.nll.size()));
    EXPECT_EQ(r.tokens, 5 * 7);
    EXPECT_EQ(r.chunks, 5);
    EXPECT_NEAR(r.nll.value, mean(d.nll), 1e-9);
    EXPECT_NEAR(r.ppl.value, std::exp(mean(d.nll)), 1e-9 * r.ppl.value);
    EXPECT_NEAR(r.base_nll.value, mean(d.base_nll), 1e-9);
    EXPECT_NEAR(r.kld.value, mean(d.kld), 1e-9);
    EXPECT_NEAR(r.kld_max, *std::max_element(d.kld.begin(), d.kld.end()), 1e-9);
    EXPECT_NEAR(r.same_top.value, double(d.same) / double(d.nll.size()), 1e-12);
    EXPECT_NEAR(r.ln_ratio.value, mean(d.nll) - mean(d.base_nll), 1e-9);
    EXPECT_NEAR(r.dppl.value, std::exp(mean(d.nll)) - std::exp(mean(d.base_nll)), 1e-9 * r.ppl.value);
    // Standard error of the mean loss.
    double var = 0;
    for (double x : d.nll) var += (x - mean(d.nll)) * (x - mean(d.nll));
    var /= double(d.nll.size() - 1);
    EXPECT_NEAR(r.nll.err, std::sqrt(var / double(d.nll.size())), 1e-9);
    EXPECT_GT(r.kld.value, 0.01);  // two different models
  }
}

TEST(PerplexityTest, AModelAgainstItselfDiffersByNothing) {
  const Model m = init_model(config(), 3, DType::f32, 4.0);
  PerplexityOptions o;
  o.ctx = 32;
  ThreadPool pool(2);
  const auto r = perplexity(m, &m, tokens(70), o, pool);
  EXPECT_EQ(r.chunks, 2);
  EXPECT_EQ(r.kld.value, 0.0);
  EXPECT_EQ(r.kld_max, 0.0);
  EXPECT_EQ(r.same_top.value, 1.0);
  EXPECT_EQ(r.dppl.value, 0.0);
  EXPECT_EQ(r.rms_dp, 0.0);
  EXPECT_NEAR(r.dppl.err, 0.0, 1e-9);
  EXPECT_FALSE(perplexity(m, nullptr, tokens(70), o, pool).has_base);
}

TEST(PerplexityTest, RefusesBadInputByName) {
  const Model m = init_model(config(), 4, DType::f32);
  ThreadPool pool(1);
  PerplexityOptions o;
  o.ctx = 16;
  EXPECT_NE(error_message([&] { perplexity(m, nullptr, tokens(15), o, pool); }).find("fewer than one chunk"),
            std::string::npos);
  auto bad = tokens(32);
  bad[20] = 40;
  EXPECT_NE(error_message([&] { perplexity(m, nullptr, bad, o, pool); }).find("position 20"), std::string::npos);
  o.ctx = 64;
  EXPECT_NE(error_message([&] { perplexity(m, nullptr, tokens(128), o, pool); }).find("max_seq_len"),
            std::string::npos);
  ModelConfig other = config();
  other.vocab_size = 41;
  const Model b = init_model(other, 4, DType::f32);
  o.ctx = 16;
  EXPECT_NE(error_message([&] { perplexity(m, &b, tokens(32), o, pool); }).find("vocab"), std::string::npos);
}

}  // namespace
}  // namespace tpp
