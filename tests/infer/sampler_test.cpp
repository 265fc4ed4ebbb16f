// Sampling rules, and the generation loop against a full forward.
#include <cmath>
#include <map>

#include <gtest/gtest.h>

#include "tpp/core/error.h"
#include "tpp/infer/generate.h"
#include "tpp/infer/sampler.h"
#include "tpp/model/model.h"

namespace tpp {
namespace {

std::vector<float> logits_of(std::initializer_list<float> v) { return v; }

TEST(SamplerTest, GreedyAndTopKOnePickTheArgmax) {
  auto l = logits_of({0.1f, 2.0f, -1.0f, 1.9f});
  Sampler greedy({.temperature = 0});
  EXPECT_EQ(greedy.sample(l, {}), 1);
  Sampler top1({.temperature = 1.0f, .top_k = 1, .top_p = 1.0f, .min_p = 0});
  for (int i = 0; i < 20; ++i) EXPECT_EQ(top1.sample(l, {}), 1);
}

TEST(SamplerTest, SeededSamplingIsRepeatableAndFollowsTheDistribution) {
  const auto base = logits_of({0.0f, std::log(3.0f), -50.0f});  // p = 1/4, 3/4, ~0
  SamplingParams p{.temperature = 1.0f, .top_k = 0, .top_p = 1.0f, .min_p = 0, .seed = 9};
  Sampler a(p), b(p);
  std::map<int, int> counts;
  for (int i = 0; i < 4000; ++i) {
    auto l1 = base, l2 = base;
    const int t = a.sample(l1, {});
    EXPECT_EQ(t, b.sample(l2, {}));
    counts[t]++;
  }
  EXPECT_NEAR(counts[1] / 4000.0, 0.75, 0.03);
  EXPECT_EQ(counts[2], 0);
}

TEST(SamplerTest, TopPAndMinPCutTheTail) {
  const auto base = logits_of({3.0f, 2.9f, 0.0f, -1.0f});
  Sampler top_p({.temperature = 1.0f, .top_k = 0, .top_p = 0.5f, .min_p = 0, .seed = 1});
  Sampler min_p({.temperature = 1.0f, .top_k = 0, .top_p = 1.0f, .min_p = 0.5f, .seed = 1});
  for (int i = 0; i < 200; ++i) {
    auto l = base;
    EXPECT_EQ(top_p.sample(l, {}), 0);  // 0 alone already holds >= 50 %
    l = base;
    EXPECT_LE(min_p.sample(l, {}), 1);  // tokens 2, 3 are < 0.5 x p_max
  }
}

TEST(SamplerTest, RepeatPenaltyFollowsTheSignRule) {
  auto l = logits_of({2.0f, -2.0f, 1.0f});
  const std::vector<int32_t> recent = {0, 1, 0};
  Sampler s({.temperature = 0, .repeat_penalty = 2.0f});
  s.sample(l, recent);
  EXPECT_FLOAT_EQ(l[0], 1.0f);   // positive: divided once, though it occurs twice
  EXPECT_FLOAT_EQ(l[1], -4.0f);  // negative: multiplied
  EXPECT_FLOAT_EQ(l[2], 1.0f);
}

TEST(SamplerTest, BadParametersAreRefused) {
  EXPECT_THROW(Sampler({.temperature = -1}), Error);
  EXPECT_THROW(Sampler({.top_p = 0}), Error);
  EXPECT_THROW(Sampler({.min_p = 1.5f}), Error);
}

TEST(GenerateTest, GreedyDecodeMatchesArgmaxOfFullForwards) {
  ModelConfig c;
  c.d_model = 32;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = {2};
  c.d_ff = 48;
  c.vocab_size = 40;
  c.max_seq_len = 64;
  const Model m = init_model(c, 3, DType::f32, 25.0);
  ThreadPool pool(2);
  Transformer tr(m);
  KvCache cache(c, 64);
  const std::vector<int32_t> prompt = {1, 2, 3, 4, 5};
  GenerateOptions o;
  o.max_new_tokens = 10;
  o.sampling.temperature = 0;
  const auto out = generate(tr, cache, prompt, o, pool);
  ASSERT_EQ(out.size(), 10u);
  // Recompute each step from scratch: the argmax of a full forward of the prefix.
  std::vector<int32_t> seq = prompt;
  for (int32_t expected : out) {
    KvCache fresh(c, 64);
    std::vector<float> logits(size_t(c.vocab_size));
    tr.forward(fresh, seq, logits.data(), false, pool);
    EXPECT_EQ(int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin()), expected);
    seq.push_back(expected);
  }
  // A stop token ends generation early and is not returned.
  KvCache again(c, 64);
  o.stop_tokens = {out[3]};
  const auto stopped = generate(tr, again, prompt, o, pool);
  EXPECT_LE(stopped.size(), 3u);

  // A prompt split between a filled cache and the rest samples as the whole
  // prompt does, the repeat penalty included, once the context is given.
  o.stop_tokens.clear();
  o.sampling.repeat_penalty = 3.0f;
  KvCache whole(c, 64);
  const auto expected = generate(tr, whole, prompt, o, pool);
  KvCache split(c, 64);
  std::vector<float> logits(size_t(c.vocab_size));
  tr.forward(split, std::span(prompt).first(3), logits.data(), false, pool);
  o.context = std::span(prompt).first(3);
  EXPECT_EQ(generate(tr, split, std::span(prompt).subspan(3), o, pool), expected);
  KvCache blind(c, 64);
  tr.forward(blind, std::span(prompt).first(3), logits.data(), false, pool);
  o.context = {};
  EXPECT_NE(generate(tr, blind, std::span(prompt).subspan(3), o, pool), expected)
      << "without the context the penalty sees fewer tokens (the check can fail)";
}

}  // namespace
}  // namespace tpp
