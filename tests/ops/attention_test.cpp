// The fused (online-softmax, tiled) attention against the naive materialised
// one: odd lengths, GQA/MQA, windows, soft-caps, plus_one, several segments
// and a rolling buffer; on every SIMD path and thread count.
#include <cmath>

#include <gtest/gtest.h>

#include "common/test_util.h"
#include "tpp/kernels/api.h"
#include "tpp/ops/attention.h"

namespace tpp::test {
namespace {

struct Case {
  int h, g, k;
  int64_t n_cache, n_new;  // cached positions, then the chunk of queries
  int64_t window;
  float softcap;
  bool plus_one;
};

// Build K/V for positions [0, n_cache + n_new) in one [g, T, k] buffer and
// split it into a cache segment and a chunk segment like the model does.
void run_case(const Case& c, int threads, kernels::Isa isa) {
  kernels::set_isa(isa);
  const int64_t T = c.n_cache + c.n_new;
  const auto k = random_floats(size_t(c.g * T * c.k), 1, 2.0f);
  const auto v = random_floats(size_t(c.g * T * c.k), 2, 1.0f);
  const auto q = random_floats(size_t(c.n_new * c.h * c.k), 3, 2.0f);
  KvSegment cache{k.data(), v.data(), T * c.k, c.k, 0, c.n_cache, 0};
  KvSegment chunk{k.data() + c.n_cache * c.k, v.data() + c.n_cache * c.k, T * c.k, c.k, c.n_cache, T, 0};
  const KvSegment segs[2] = {cache, chunk};
  AttentionShape shape{c.h, c.g, c.k, 1.0f / std::sqrt(float(c.k)), c.softcap, c.plus_one, c.window};
  std::vector<float> fused(static_cast<size_t>(c.n_new * c.h * c.k)), naive(fused.size());
  ThreadPool pool(threads);
  attention_forward(fused.data(), q.data(), c.n_new, c.n_cache, segs, shape, pool);
  attention_naive(naive.data(), q.data(), c.n_new, c.n_cache, segs, shape);
  EXPECT_TRUE(all_close(fused, naive, {1e-6, 1e-5}))
      << "h " << c.h << " g " << c.g << " k " << c.k << " cache " << c.n_cache << " new " << c.n_new
      << " window " << c.window << " cap " << c.softcap << " plus_one " << c.plus_one << " isa "
      << kernels::isa_name(isa) << " threads " << threads;
}

TEST(AttentionTest, FusedEqualsNaive) {
  const std::vector<Case> cases = {
      {4, 4, 8, 0, 1, 0, 0, false},      {4, 2, 8, 0, 13, 0, 0, false},   {4, 1, 16, 7, 5, 0, 0, false},
      {8, 2, 64, 0, 131, 0, 0, false},   {8, 2, 64, 100, 31, 17, 0, false}, {6, 3, 24, 0, 70, 0, 5.0f, false},
      {4, 2, 8, 3, 9, 4, 0, true},       {2, 1, 40, 65, 1, 0, 0, true},   {4, 4, 12, 129, 3, 64, 3.0f, true},
      {9, 3, 64, 200, 1, 0, 0, false},   {4, 2, 8, 0, 200, 1, 0, false},
      // Decode over long caches: the keys are split across work items and merged.
      {4, 2, 16, 700, 1, 0, 0, true},    {8, 2, 64, 1000, 1, 600, 2.0f, false}, {9, 3, 64, 2500, 1, 0, 0, false},
  };
  for (auto isa : kernels::supported_isas())
    for (const auto& c : cases)
      for (int threads : {1, 3}) run_case(c, threads, isa);
  kernels::set_isa(kernels::supported_isas().back());
}

TEST(AttentionTest, RollingBufferSegmentEqualsLinearStorage) {
  // Positions 0..19 of one head in a ring of 6 rows; queries 20..22, window 6.
  const int k = 8;
  const int64_t total = 23, ring = 6, window = 6;
  const auto kall = random_floats(size_t(total * k), 4, 1.5f), vall = random_floats(size_t(total * k), 5);
  std::vector<float> kr(static_cast<size_t>(ring * k)), vr(static_cast<size_t>(ring * k));
  for (int64_t p = 0; p < 20; ++p)
    for (int i = 0; i < k; ++i) {
      kr[size_t((p % ring) * k + i)] = kall[size_t(p * k + i)];
      vr[size_t((p % ring) * k + i)] = vall[size_t(p * k + i)];
    }
  const auto q = random_floats(size_t(3 * k), 6, 1.5f);
  AttentionShape shape{1, 1, k, 0.3f, 0, false, window};
  const KvSegment chunk{kall.data() + 20 * k, vall.data() + 20 * k, 0, k, 20, 23, 0};
  const KvSegment ring_segs[2] = {{kr.data(), vr.data(), 0, k, 20 - ring, 20, ring}, chunk};
  const KvSegment flat_segs[2] = {{kall.data(), vall.data(), 0, k, 0, 20, 0}, chunk};
  std::vector<float> a(static_cast<size_t>(3 * k)), b(a.size());
  ThreadPool pool(1);
  attention_forward(a.data(), q.data(), 3, 20, ring_segs, shape, pool);
  attention_naive(b.data(), q.data(), 3, 20, flat_segs, shape);
  EXPECT_TRUE(all_close(a, b, {1e-6, 1e-5}));
}

TEST(AttentionTest, PlusOneWithNoStrongKeyShrinksOutput) {
  // With every score very negative, plus_one attends to "nothing": output -> 0.
  const int k = 4;
  std::vector<float> kv(static_cast<size_t>(3 * k), 1.0f), q(static_cast<size_t>(k), -10.0f), out(static_cast<size_t>(k));
  const KvSegment seg{kv.data(), kv.data(), 0, k, 0, 3, 0};
  ThreadPool pool(1);
  attention_forward(out.data(), q.data(), 1, 2, std::span(&seg, 1), {1, 1, k, 1.0f, 0, true, 0}, pool);
  for (float o : out) EXPECT_LT(std::fabs(o), 1e-10);
  attention_forward(out.data(), q.data(), 1, 2, std::span(&seg, 1), {1, 1, k, 1.0f, 0, false, 0}, pool);
  for (float o : out) EXPECT_FLOAT_EQ(o, 1.0f);
}

}  // namespace
}  // namespace tpp::test
