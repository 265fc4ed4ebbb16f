// The fused (online-softmax, tiled) attention against the naive materialised
// one: odd lengths, GQA/MQA, windows, soft-caps, plus_one, several segments
// and a rolling buffer; on every SIMD path and thread count. Then both
// against the formula of attention.h written out here in double (outputs and
// the log-sum-exp), the FlashAttention-2 backward against finite differences
// of the double forward, the long-T backward in float against double, every
// ISA against the scalar one, and N threads against one.
#include <cmath>
#include <cstring>
#include <string>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "common/test_util.h"
#include "ops/op_test_util.h"
#include "tpp/kernels/api.h"
#include "tpp/ops/attention.h"
#include "tpp/quant/quant.h"

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

// Several sequences' decode rows in one attention_decode pass: each row gets
// the bits attention_forward gives it alone (cache lengths on both sides of
// the key-split threshold, a window on one, threads 1 and 3).
TEST(AttentionTest, DecodeBatchEqualsEachRowAlone) {
  const int h = 6, g = 2, k = 32;
  const int64_t lengths[] = {1, 40, 700, 257};
  std::vector<std::vector<float>> ks, vs, qs;
  std::vector<std::vector<KvSegment>> segs;
  for (size_t i = 0; i < std::size(lengths); ++i) {
    const int64_t T = lengths[i];
    ks.push_back(random_floats(size_t(g * T * k), 10 + i, 2.0f));
    vs.push_back(random_floats(size_t(g * T * k), 20 + i, 1.0f));
    qs.push_back(random_floats(size_t(h * k), 30 + i, 2.0f));
    // The cached positions, then the row's own.
    segs.push_back({{ks[i].data(), vs[i].data(), T * k, k, 0, T - 1, 0},
                    {ks[i].data() + (T - 1) * k, vs[i].data() + (T - 1) * k, T * k, k, T - 1, T, 0}});
  }
  for (int threads : {1, 3})
    for (int64_t window : {int64_t(0), int64_t(300)}) {
      const AttentionShape shape{h, g, k, 0.2f, 0, false, window};
      ThreadPool pool(threads);
      std::vector<std::vector<float>> batched(std::size(lengths), std::vector<float>(size_t(h * k)));
      std::vector<std::vector<float>> lse(std::size(lengths), std::vector<float>(size_t(h)));
      std::vector<DecodeRow> rows;
      for (size_t i = 0; i < std::size(lengths); ++i)
        rows.push_back({batched[i].data(), qs[i].data(), lengths[i] - 1, segs[i], lse[i].data()});
      attention_decode(rows, shape, pool);
      for (size_t i = 0; i < std::size(lengths); ++i) {
        std::vector<float> alone(static_cast<size_t>(h * k)), alone_lse(static_cast<size_t>(h));
        attention_forward(alone.data(), qs[i].data(), 1, lengths[i] - 1, segs[i], shape, pool, alone_lse.data());
        EXPECT_TRUE(all_close(batched[i], alone, {0, 0})) << "row " << i << " threads " << threads;
        EXPECT_TRUE(all_close(lse[i], alone_lse, {0, 0})) << "row " << i;
      }
    }
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


// ---- Against the formula, in double ----------------------------------------

struct AttnCase {
  std::string name;
  int h, g, k;
  int64_t window;
  float softcap;
  bool plus_one;
  float scale;
  bool alibi;
};

AttentionShape shape_of(const AttnCase& c) {
  return AttentionShape{.n_heads = c.h, .n_kv_heads = c.g, .head_dim = c.k, .scale = c.scale,
                        .softcap = c.softcap, .plus_one = c.plus_one, .window = c.window, .alibi = c.alibi};
}

// The cases the forward and the backward are checked on (scale 0.5 and
// inputs ~N(0, 1) give scores of a few units, so the soft-cap of 1.5 bends them).
const std::vector<AttnCase>& attn_cases() {
  static const std::vector<AttnCase> cases = {
      {"causal_mha", 2, 2, 4, 0, 0, false, 0.5f, false},
      {"gqa", 4, 2, 4, 0, 0, false, 0.5f, false},
      {"mqa_h32", 32, 1, 4, 0, 0, false, 0.5f, false},  // h/g = 32 > kAttnMaxGroup: in parts
      {"window", 2, 1, 4, 2, 0, false, 0.5f, false},
      {"softcap", 2, 2, 4, 0, 1.5f, false, 0.5f, false},
      {"plus_one", 4, 2, 4, 0, 0, true, 0.5f, false},
      {"gqa_window_softcap_plus_one", 6, 3, 3, 3, 1.5f, true, 0.5f, false},
      {"alibi", 4, 2, 4, 0, 0, false, 0.5f, true},
      {"alibi_h6_window_softcap_plus_one", 6, 3, 3, 3, 1.5f, true, 0.5f, true},  // h not a power of two
  };
  return cases;
}

// ALiBi slopes as transformers' build_alibi_tensor computes them: for the
// largest power of two P <= h, (2^(-8/P))^(1..P); for h > P, the odd powers
// 1, 3, 5, ... of 2^(-8/(2P)) for the remaining h - P heads.
std::vector<double> alibi_reference(int h) {
  int P = 1;
  while (2 * P <= h) P *= 2;
  std::vector<double> m;
  for (int i = 1; i <= P; ++i) m.push_back(std::pow(std::pow(2.0, -8.0 / P), i));
  for (int i = 0; i < h - P; ++i) m.push_back(std::pow(std::pow(2.0, -8.0 / (2 * P)), 2 * i + 1));
  return m;
}

TEST(AttentionTest, AlibiSlopesMatchFormula) {
  for (int h : {1, 2, 4, 6, 8, 12, 32}) {
    const auto got = alibi_slopes(h);
    EXPECT_TRUE(all_close(to_f64(got), alibi_reference(h), {0, 1e-7})) << h;  // f32 slopes
  }
  // h = 8: 2^-1 .. 2^-8 (Press et al.'s geometric sequence).
  EXPECT_EQ(alibi_slopes(8).front(), 0.5f);
  EXPECT_EQ(alibi_slopes(8).back(), 1.0f / 256);
}

// o and lse for queries at positions q_pos0 + t over keys at positions
// 0 .. T-1, straight from attention.h's header:
//   s_j = cap((q . k_j) * scale - m_i (p_q - p_j)), visible: p_j <= p_q and p_j > p_q - w,
//   lse = log(sum_j e^{s_j} (+ 1 with plus_one)), o = sum_j e^{s_j - lse} v_j,
// query head i reading KV head floor(i g / h).
// q: [n, h, k]   K, V: [T, g, k]   out: [n, h, k]   lse: [n, h]
void attention_reference(std::vector<double>& out, std::vector<double>& lse, const std::vector<double>& q,
                         const std::vector<double>& K, const std::vector<double>& V, int64_t n, int64_t q_pos0,
                         int64_t T, const AttnCase& c) {
  out.assign(size_t(n * c.h * c.k), 0.0);
  lse.assign(size_t(n * c.h), 0.0);
  for (int64_t t = 0; t < n; ++t)
    for (int i = 0; i < c.h; ++i) {
      const int64_t qp = q_pos0 + t;
      const int j = int(int64_t(i) * c.g / c.h);
      std::vector<double> s;
      std::vector<int64_t> pos;
      for (int64_t p = 0; p < T; ++p) {
        if (p > qp || (c.window > 0 && p <= qp - c.window)) continue;
        double dotv = 0;
        for (int e = 0; e < c.k; ++e) dotv += q[size_t((t * c.h + i) * c.k + e)] * K[size_t((p * c.g + j) * c.k + e)];
        double v = dotv * double(c.scale);
        // The op keeps the slopes in f32 (alibi_slopes): use the same values.
        if (c.alibi) v -= double(alibi_slopes(c.h)[size_t(i)]) * double(qp - p);
        if (c.softcap > 0) v = c.softcap * std::tanh(v / c.softcap);
        s.push_back(v);
        pos.push_back(p);
      }
      long double sum = c.plus_one ? 1.0L : 0.0L;
      for (double v : s) sum += std::exp((long double)v);
      const double l = double(std::log(sum));
      lse[size_t(t * c.h + i)] = l;
      for (size_t m = 0; m < s.size(); ++m)
        for (int e = 0; e < c.k; ++e)
          out[size_t((t * c.h + i) * c.k + e)] += std::exp(s[m] - l) * V[size_t((pos[m] * c.g + j) * c.k + e)];
    }
}

// One forward over a [T, g, k] K/V buffer at positions 0 .. T-1 for the
// queries of positions q_pos0 .. q_pos0 + n - 1.
template <class R>
void run_attention(std::vector<R>& out, std::vector<R>& lse, const std::vector<double>& q,
                   const std::vector<double>& K, const std::vector<double>& V, int64_t n, int64_t q_pos0, int64_t T,
                   const AttnCase& c, ThreadPool& pool) {
  const std::vector<R> qr(q.begin(), q.end()), kr(K.begin(), K.end()), vr(V.begin(), V.end());
  const KvSegmentT<R> seg{kr.data(), vr.data(), c.k, int64_t(c.g) * c.k, 0, T, 0};
  out.assign(size_t(n * c.h * c.k), R(0));
  lse.assign(size_t(n * c.h), R(0));
  attention_forward<R>(out.data(), qr.data(), n, q_pos0, std::span(&seg, 1), shape_of(c), pool, lse.data());
}

TEST(AttentionTest, ForwardMatchesFormula) {
  ThreadPool pool(2);
  // (n queries, T keys): a full causal prefill, a chunk at the end of its
  // keys, and a single decode query.
  const std::pair<int64_t, int64_t> shapes[] = {{7, 7}, {3, 8}, {1, 9}};
  for (const auto& c : attn_cases())
    for (const auto& [n, T] : shapes) {
      const auto q = normals(size_t(n * c.h * c.k), 1), K = normals(size_t(T * c.g * c.k), 2),
                 V = normals(size_t(T * c.g * c.k), 3);
      std::vector<double> ref, ref_lse, out, lse;
      attention_reference(ref, ref_lse, q, K, V, n, T - n, T, c);
      run_attention<double>(out, lse, q, K, V, n, T - n, T, c, pool);
      const std::string what = c.name + " n " + std::to_string(n) + " T " + std::to_string(T);
      EXPECT_TRUE(all_close(out, ref, {1e-14, 1e-12})) << what;
      EXPECT_TRUE(all_close(lse, ref_lse, {1e-14, 1e-12})) << what;
      // Float: the fused kernel (f32 reductions of length k and T: atol 1e-5,
      // rtol 1e-4) and the naive one.
      std::vector<float> out32, lse32;
      run_attention<float>(out32, lse32, q, K, V, n, T - n, T, c, pool);
      EXPECT_TRUE(all_close(to_f64(out32), ref, kF32Reduction)) << what;
      EXPECT_TRUE(all_close(to_f64(lse32), ref_lse, kF32Reduction)) << what;
      const auto q32 = to_f32(q), K32 = to_f32(K), V32 = to_f32(V);
      const KvSegment seg{K32.data(), V32.data(), c.k, int64_t(c.g) * c.k, 0, T, 0};
      std::vector<float> naive(out32.size());
      attention_naive(naive.data(), q32.data(), n, T - n, std::span(&seg, 1), shape_of(c));
      EXPECT_TRUE(all_close(to_f64(naive), ref, kF32Reduction)) << what;
    }
  // Not vacuous: the window, the cap and plus_one each change the result.
  const auto q = normals(7 * 2 * 4, 1), K = normals(7 * 2 * 4, 2), V = normals(7 * 2 * 4, 3);
  std::vector<double> base, base_lse, other, other_lse;
  attention_reference(base, base_lse, q, K, V, 7, 0, 7, attn_cases()[0]);
  for (AttnCase c : {AttnCase{"w", 2, 2, 4, 2, 0, false, 0.5f, false},
                     AttnCase{"cap", 2, 2, 4, 0, 1.5f, false, 0.5f, false},
                     AttnCase{"p1", 2, 2, 4, 0, 0, true, 0.5f, false},
                     AttnCase{"alibi", 2, 2, 4, 0, 0, false, 0.5f, true}}) {
    run_attention<double>(other, other_lse, q, K, V, 7, 0, 7, c, pool);
    EXPECT_FALSE(all_close(other, base, {1e-6, 1e-6})) << c.name;
  }
}

class AttentionIsaTest : public ::testing::TestWithParam<kernels::Isa> {};

// The fused forward (attn_step kernel) on each ISA against the scalar ISA and
// double: f32 reduction bound (atol 1e-5, rtol 1e-4), for prefill and decode
// (T = 600: the decode keys are split in two and merged).
TEST_P(AttentionIsaTest, ForwardFloatMatchesScalarIsaAndDouble) {
  ThreadPool pool(2);
  const std::pair<int64_t, int64_t> shapes[] = {{1, 40}, {1, 600}, {20, 40}};
  for (const auto& c : attn_cases())
    for (const auto& [n, T] : shapes) {
      const auto q = normals(size_t(n * c.h * c.k), 4), K = normals(size_t(T * c.g * c.k), 5),
                 V = normals(size_t(T * c.g * c.k), 6);
      std::vector<float> out, lse, out_s, lse_s;
      {
        ScopedIsa isa(GetParam());
        run_attention<float>(out, lse, q, K, V, n, T - n, T, c, pool);
      }
      {
        ScopedIsa isa(kernels::Isa::scalar);
        run_attention<float>(out_s, lse_s, q, K, V, n, T - n, T, c, pool);
      }
      std::vector<double> ref, ref_lse;
      run_attention<double>(ref, ref_lse, q, K, V, n, T - n, T, c, pool);
      EXPECT_TRUE(all_close(out, out_s, kF32Reduction)) << c.name << " n " << n;
      EXPECT_TRUE(all_close(lse, lse_s, kF32Reduction)) << c.name << " n " << n;
      EXPECT_TRUE(all_close(to_f64(out), ref, kF32Reduction)) << c.name << " n " << n;
      EXPECT_TRUE(all_close(to_f64(lse), ref_lse, kF32Reduction)) << c.name << " n " << n;
    }
}

// ---- Backward: FlashAttention-2 from the saved log-sum-exp -----------------

// Sequences packed in one batch (training): q [N, h*k], k/v [N, g*k], r the
// loss projection L = sum out * r (so dout = r).
struct Batch {
  std::vector<AttnSeq> seqs;
  int64_t N = 0;
  std::vector<double> q, k, v, r;
};

Batch make_batch(const AttnCase& c, std::vector<AttnSeq> seqs, uint64_t stream) {
  Batch b;
  b.seqs = std::move(seqs);
  for (const auto& s : b.seqs) b.N = std::max(b.N, s.row0 + s.n);
  b.q = normals(size_t(b.N * c.h * c.k), stream);
  b.k = normals(size_t(b.N * c.g * c.k), stream + 1);
  b.v = normals(size_t(b.N * c.g * c.k), stream + 2);
  b.r = normals(size_t(b.N * c.h * c.k), stream + 3);
  return b;
}

template <class R>
struct AttnGrads {
  std::vector<R> out, lse, dq, dk, dv;
};

// The forward of each sequence (its own rows as one segment at its
// positions), saving lse.
template <class R>
void batch_forward(std::vector<R>& out, std::vector<R>& lse, const Batch& b, const std::vector<R>& q,
                   const std::vector<R>& k, const std::vector<R>& v, const AttnCase& c, ThreadPool& pool) {
  const int64_t hk = int64_t(c.h) * c.k, gk = int64_t(c.g) * c.k;
  out.assign(size_t(b.N * hk), R(0));
  lse.assign(size_t(b.N * c.h), R(0));
  for (const auto& s : b.seqs) {
    const KvSegmentT<R> seg{k.data() + s.row0 * gk, v.data() + s.row0 * gk, c.k, gk, s.pos0, s.pos0 + s.n, 0};
    attention_forward<R>(out.data() + s.row0 * hk, q.data() + s.row0 * hk, s.n, s.pos0, std::span(&seg, 1),
                         shape_of(c), pool, lse.data() + s.row0 * c.h);
  }
}

template <class R>
AttnGrads<R> batch_forward_backward(const Batch& b, const AttnCase& c, ThreadPool& pool) {
  const std::vector<R> q(b.q.begin(), b.q.end()), k(b.k.begin(), b.k.end()), v(b.v.begin(), b.v.end()),
      dout(b.r.begin(), b.r.end());
  AttnGrads<R> g;
  batch_forward(g.out, g.lse, b, q, k, v, c, pool);
  g.dq.assign(q.size(), R(0));
  g.dk.assign(k.size(), R(0));
  g.dv.assign(v.size(), R(0));
  const AttentionBackward<R> a{dout.data(), q.data(), k.data(), v.data(), g.out.data(), g.lse.data(),
                               g.dq.data(), g.dk.data(), g.dv.data()};
  attention_backward<R>(a, b.seqs, shape_of(c), pool);
  return g;
}

TEST(AttentionTest, BackwardMatchesFiniteDifferences) {
  // Two sequences in one batch (5 rows at positions 0.., 4 rows at 3..).
  // The masks (causal, window) depend on positions only, never on the
  // inputs, and tanh and exp are smooth: no kinks to avoid.
  ThreadPool pool(1);
  for (const auto& c : attn_cases()) {
    Batch b = make_batch(c, {{0, 5, 0}, {5, 4, 3}}, 10);
    const auto an = batch_forward_backward<double>(b, c, pool);
    auto loss = [&] {
      std::vector<double> out, lse;
      batch_forward<double>(out, lse, b, b.q, b.k, b.v, c, pool);
      return dot(out, b.r);
    };
    const auto fd_q = fd_grad(b.q, loss), fd_k = fd_grad(b.k, loss), fd_v = fd_grad(b.v, loss);
    EXPECT_TRUE(all_close(an.dq, fd_q, kFdTol)) << c.name << " dq";
    EXPECT_TRUE(all_close(an.dk, fd_k, kFdTol)) << c.name << " dk";
    EXPECT_TRUE(all_close(an.dv, fd_v, kFdTol)) << c.name << " dv";
    // Companion: a gradient off by 1e-4 fails.
    EXPECT_TRUE(fails_when_perturbed(an.dk, fd_k, kFdTol)) << c.name;
  }
}

TEST(AttentionTest, BackwardAccumulatesIntoDkDv) {
  // dq is written; dk and dv add (CLA groups share K/V).
  ThreadPool pool(2);
  const AttnCase& c = attn_cases()[1];
  const Batch b = make_batch(c, {{0, 6, 0}}, 20);
  const auto once = batch_forward_backward<double>(b, c, pool);
  auto g = once;
  const AttentionBackward<double> a{b.r.data(), b.q.data(), b.k.data(), b.v.data(), g.out.data(), g.lse.data(),
                                    g.dq.data(), g.dk.data(), g.dv.data()};
  attention_backward<double>(a, b.seqs, shape_of(c), pool);
  auto doubled = [](std::vector<double> v) {
    for (auto& e : v) e *= 2;
    return v;
  };
  EXPECT_TRUE(all_close(g.dq, once.dq, {1e-15, 1e-14}));
  EXPECT_TRUE(all_close(g.dk, doubled(once.dk), {1e-15, 1e-14}));
  EXPECT_TRUE(all_close(g.dv, doubled(once.dv), {1e-15, 1e-14}));
}

// Longer than the backward's 64-row blocks: sequences of 150 and 70 rows,
// windows that cross block edges (40: block 2's first keys sit in block 1;
// 100: in block 0), global, and soft-cap with plus_one.
const std::vector<AttnCase>& long_cases() {
  static const std::vector<AttnCase> cases = {
      {"long_window40", 4, 2, 16, 40, 0, false, 0.25f, false},
      {"long_window100_softcap_plus_one", 4, 1, 16, 100, 2.0f, true, 0.25f, false},
      {"long_global", 2, 2, 8, 0, 0, false, 0.35f, false},
      {"long_mqa_h32", 32, 1, 8, 70, 0, false, 0.35f, false},
      {"long_alibi_h6_window90", 6, 2, 8, 90, 0, false, 0.35f, true},
  };
  return cases;
}
const std::vector<AttnSeq> kLongSeqs = {{0, 150, 0}, {150, 70, 10}};

// f32 against f64 for T = 150: the f32 backward recomputes P = exp(S - lse)
// from an f32 lse and sums over up to 150 keys and G heads; the gradients are
// O(1), so the f32 reduction bound (atol 1e-5, rtol 1e-4) applies.
TEST(AttentionTest, LongBackwardFloatMatchesDouble) {
  ThreadPool pool(2);
  for (const auto& c : long_cases()) {
    const Batch b = make_batch(c, kLongSeqs, 30);
    const auto f = batch_forward_backward<float>(b, c, pool);
    const auto d = batch_forward_backward<double>(b, c, pool);
    EXPECT_TRUE(all_close(to_f64(f.out), d.out, kF32Reduction)) << c.name << " out";
    EXPECT_TRUE(all_close(to_f64(f.dq), d.dq, kF32Reduction)) << c.name << " dq";
    EXPECT_TRUE(all_close(to_f64(f.dk), d.dk, kF32Reduction)) << c.name << " dk";
    EXPECT_TRUE(all_close(to_f64(f.dv), d.dv, kF32Reduction)) << c.name << " dv";
  }
}

// The float backward (gemm kernels) on each ISA against the scalar ISA and
// double: f32 reduction bound, as above.
TEST_P(AttentionIsaTest, BackwardFloatMatchesScalarIsaAndDouble) {
  ThreadPool pool(2);
  for (const auto& c : long_cases()) {
    const Batch b = make_batch(c, kLongSeqs, 40);
    const auto simd = with_isa(GetParam(), [&] { return batch_forward_backward<float>(b, c, pool); });
    const auto scalar = with_isa(kernels::Isa::scalar, [&] { return batch_forward_backward<float>(b, c, pool); });
    const auto d = batch_forward_backward<double>(b, c, pool);
    EXPECT_TRUE(all_close(simd.dq, scalar.dq, kF32Reduction)) << c.name;
    EXPECT_TRUE(all_close(simd.dk, scalar.dk, kF32Reduction)) << c.name;
    EXPECT_TRUE(all_close(simd.dv, scalar.dv, kF32Reduction)) << c.name;
    EXPECT_TRUE(all_close(to_f64(simd.dq), d.dq, kF32Reduction)) << c.name;
    EXPECT_TRUE(all_close(to_f64(simd.dk), d.dk, kF32Reduction)) << c.name;
    EXPECT_TRUE(all_close(to_f64(simd.dv), d.dv, kF32Reduction)) << c.name;
    EXPECT_TRUE(fails_when_perturbed(simd.dv, scalar.dv, kF32Reduction)) << c.name;
  }
}

// K and V rows of the cache stored in f16, bf16 and q8_0 (encoded by the
// scalar reference conversions) are read in place: the result is that of an
// f32 cache holding the decoded rows (1e-6: the same products, summed in the
// same order where the level has a kernel for the type; the widening
// fallback elsewhere). Cases: decode over split keys, prefill chunks over a
// cache, a rolling buffer, ALiBi (always widened), soft-cap with plus-one,
// and head_dim 40 (a partial 16-lane chunk) for the 16-bit types.
TEST_P(AttentionIsaTest, TypedKvCacheEqualsItsDecodedRows) {
  ScopedIsa isa(GetParam());
  ThreadPool pool(2);
  struct TypedCase {
    int h, g, k;
    int64_t n_cache, n_new, ring, window;
    float softcap;
    bool plus_one, alibi;
  };
  const TypedCase cases[] = {{8, 2, 64, 600, 1, 0, 0, 0, false, false}, {4, 2, 64, 37, 9, 0, 0, 0, false, false},
                             {4, 1, 32, 20, 3, 6, 6, 0, false, false},  {4, 2, 64, 50, 4, 0, 0, 0, false, true},
                             {4, 4, 32, 70, 1, 0, 0, 5.0f, true, false}, {4, 2, 40, 45, 2, 0, 0, 0, false, false}};
  for (const auto& c : cases)
    for (DType t : {DType::f16, DType::bf16, DType::q8_0}) {
      if (t == DType::q8_0 && c.k % 32 != 0) continue;
      const int64_t rows = c.ring > 0 ? c.ring : c.n_cache, T = c.n_cache + c.n_new;
      const auto kc = random_floats(size_t(c.g * rows * c.k), 11, 2.0f), vc = random_floats(size_t(c.g * rows * c.k), 12);
      const auto kn = random_floats(size_t(c.n_new * c.g * c.k), 13, 2.0f), vn = random_floats(size_t(c.n_new * c.g * c.k), 14);
      const auto q = random_floats(size_t(c.n_new * c.h * c.k), 15, 2.0f);
      // Each cache row encoded, and decoded back into the f32 copy.
      const int64_t row_bytes = dtype_bytes(t, c.k);
      std::vector<std::byte> kq(size_t(c.g * rows * row_bytes)), vq(kq.size());
      std::vector<float> kd(kc.size()), vd(vc.size());
      for (int64_t r = 0; r < c.g * rows; ++r)
        for (auto [src, bytes, dst] : {std::tuple{&kc, &kq, &kd}, std::tuple{&vc, &vq, &vd}}) {
          const float* x = src->data() + r * c.k;
          std::byte* b = bytes->data() + r * row_bytes;
          float* y = dst->data() + r * c.k;
          if (t == DType::q8_0) {
            quant::quantize_row(t, x, c.k, b);
            quant::dequantize_row(t, b, c.k, y);
            continue;
          }
          for (int i = 0; i < c.k; ++i) {
            const uint16_t u = t == DType::f16 ? f32_to_f16(x[i]) : f32_to_bf16(x[i]);
            std::memcpy(b + 2 * i, &u, 2);
            y[i] = t == DType::f16 ? f16_to_f32(u) : bf16_to_f32(u);
          }
        }
      KvSegment typed;
      typed.type = t;
      typed.kq = kq.data();
      typed.vq = vq.data();
      typed.head_bytes = rows * row_bytes;
      typed.row_bytes = row_bytes;
      typed.pos_begin = c.ring > 0 ? c.n_cache - c.ring : 0;
      typed.pos_end = c.n_cache;
      typed.ring = c.ring;
      KvSegment decoded{kd.data(), vd.data(), rows * c.k, c.k, typed.pos_begin, c.n_cache, c.ring};
      const KvSegment fresh{kn.data(), vn.data(), c.k, int64_t(c.g) * c.k, c.n_cache, T, 0};
      const KvSegment with_typed[2] = {typed, fresh}, with_decoded[2] = {decoded, fresh};
      AttentionShape shape{c.h, c.g, c.k, 1.0f / std::sqrt(float(c.k)), c.softcap, c.plus_one, c.window, c.alibi};
      std::vector<float> a(q.size()), b(q.size()), naive(q.size());
      attention_forward(a.data(), q.data(), c.n_new, c.n_cache, with_typed, shape, pool);
      attention_forward(b.data(), q.data(), c.n_new, c.n_cache, with_decoded, shape, pool);
      attention_naive(naive.data(), q.data(), c.n_new, c.n_cache, with_typed, shape);
      const std::string what = std::string(dtype_name(t)) + " k " + std::to_string(c.k) + " cache " +
                               std::to_string(c.n_cache) + " new " + std::to_string(c.n_new);
      EXPECT_TRUE(all_close(a, b, {1e-6, 1e-6})) << what;
      EXPECT_TRUE(all_close(a, naive, {1e-6, 1e-5})) << what;
      // Not vacuous: the rows as f32 (before rounding) give another result.
      KvSegment raw{kc.data(), vc.data(), rows * c.k, c.k, typed.pos_begin, c.n_cache, c.ring};
      const KvSegment with_raw[2] = {raw, fresh};
      std::vector<float> r(q.size());
      attention_forward(r.data(), q.data(), c.n_new, c.n_cache, with_raw, shape, pool);
      EXPECT_FALSE(all_close(a, r, {1e-7, 1e-7})) << what;
    }
}

INSTANTIATE_TEST_SUITE_P(AllIsas, AttentionIsaTest, ::testing::ValuesIn(kernels::supported_isas()),
                         isa_param_name);

TEST(AttentionTest, WindowCoveringEverythingEqualsGlobal) {
  // Config identity (STYLE §10): a window >= T changes nothing, forward and
  // backward, bitwise. Not vacuous: a window of 40 does change the result.
  ThreadPool pool(2);
  AttnCase global = long_cases()[2], wide = global, narrow = global;
  wide.window = 220;
  narrow.window = 40;
  const Batch b = make_batch(global, kLongSeqs, 60);
  const auto a = batch_forward_backward<float>(b, global, pool), w = batch_forward_backward<float>(b, wide, pool);
  EXPECT_TRUE(bitwise_equal(a.out, w.out));
  EXPECT_TRUE(bitwise_equal(a.dq, w.dq));
  EXPECT_TRUE(bitwise_equal(a.dk, w.dk));
  EXPECT_TRUE(bitwise_equal(a.dv, w.dv));
  EXPECT_FALSE(all_close(batch_forward_backward<float>(b, narrow, pool).dk, a.dk, kF32Reduction));
}

TEST(AttentionTest, BackwardThreadsBitwise) {
  // Work items are (sequence, KV head) pairs, each writing its own rows of
  // dq/dk/dv: any thread count gives the same bits. The forward's items are
  // (row, KV head): likewise.
  ThreadPool one(1), three(3);
  for (const auto& c : long_cases()) {
    const Batch b = make_batch(c, kLongSeqs, 50);
    const auto a = batch_forward_backward<float>(b, c, one), z = batch_forward_backward<float>(b, c, three);
    EXPECT_TRUE(bitwise_equal(a.out, z.out)) << c.name;
    EXPECT_TRUE(bitwise_equal(a.lse, z.lse)) << c.name;
    EXPECT_TRUE(bitwise_equal(a.dq, z.dq)) << c.name;
    EXPECT_TRUE(bitwise_equal(a.dk, z.dk)) << c.name;
    EXPECT_TRUE(bitwise_equal(a.dv, z.dv)) << c.name;
  }
}

}  // namespace
}  // namespace tpp::test
