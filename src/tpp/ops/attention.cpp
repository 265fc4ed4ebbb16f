#include "tpp/ops/attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "tpp/core/error.h"
#include "tpp/kernels/api.h"

namespace tpp {
namespace {

constexpr int kMaxHeadDim = 512;

void check_shape(const AttentionShape& s) {
  TPP_CHECK(s.n_heads > 0 && s.n_kv_heads > 0 && s.n_heads % s.n_kv_heads == 0,
            "attention: n_heads {} must be a positive multiple of n_kv_heads {}", s.n_heads,
            s.n_kv_heads);
  TPP_CHECK(s.head_dim > 0 && s.head_dim <= kMaxHeadDim, "attention: head_dim {} not in [1, {}]",
            s.head_dim, kMaxHeadDim);
  TPP_CHECK(s.n_heads / s.n_kv_heads <= kernels::kAttnMaxGroup,
            "attention: {} query heads per KV head exceed the kernel's group limit {}",
            s.n_heads / s.n_kv_heads, kernels::kAttnMaxGroup);
}

// The visible key range for a query at position qp.
inline void visible(int64_t qp, int64_t window, const KvSegment& seg, int64_t* lo, int64_t* hi) {
  *lo = std::max(seg.pos_begin, window > 0 ? qp - window + 1 : int64_t(0));
  *hi = std::min(seg.pos_end, qp + 1);
}

// Online-softmax state of G queries: running max m, sum l, unnormalised acc [G, k].
struct Partial {
  float m[kernels::kAttnMaxGroup];
  float l[kernels::kAttnMaxGroup];
};

// One query row and one KV head: the G = h/g query heads of its group walk
// the visible keys with the online softmax, run by run (a rolling buffer's
// visible range is at most two contiguous runs of rows). Split `s` of
// `splits` takes the s-th equal share of each segment's visible range; the
// state is left unnormalised in (st, acc).
void attend_group(Partial& st, float* acc, const float* q, int64_t qp, int kv_head, int G, int s, int splits,
                  std::span<const KvSegment> segments, const AttentionShape& sh, const kernels::Kernels& kr) {
  const int k = sh.head_dim;
  for (int g = 0; g < G; ++g) {
    // plus_one is a phantom key with score 0 and value 0: start from m = 0, l = 1 (once).
    const bool phantom = sh.plus_one && s == 0;
    st.m[g] = phantom ? 0.0f : -INFINITY;
    st.l[g] = phantom ? 1.0f : 0.0f;
  }
  std::fill(acc, acc + int64_t(G) * k, 0.0f);
  for (const auto& seg : segments) {
    int64_t lo, hi;
    visible(qp, sh.window, seg, &lo, &hi);
    if (lo >= hi) continue;
    const int64_t count = hi - lo;
    hi = lo + count * (s + 1) / splits;
    lo = lo + count * s / splits;
    const float* kb = seg.k + kv_head * seg.head_stride;
    const float* vb = seg.v + kv_head * seg.head_stride;
    while (lo < hi) {
      const int64_t row = seg.row(lo);
      const int64_t run = seg.ring > 0 ? std::min(hi - lo, seg.ring - row) : hi - lo;
      kr.attn_step_f32(acc, st.m, st.l, q, G, k, kb + row * seg.pos_stride, vb + row * seg.pos_stride,
                       seg.pos_stride, run, sh.scale, sh.softcap);
      lo += run;
    }
  }
}

// Decode attends with one query row: split each KV head's keys into chunks
// of about this many so both cores share even a single head's work. The
// split depends on the key count only, never on the thread count, so results
// stay identical for any number of threads.
constexpr int64_t kDecodeSplitKeys = 256;
constexpr int kMaxSplits = 8;

}  // namespace

namespace {

int64_t visible_count(int64_t qp, std::span<const KvSegment> segments, int64_t window) {
  int64_t total = 0;
  for (const auto& seg : segments) {
    int64_t lo, hi;
    visible(qp, window, seg, &lo, &hi);
    total += std::max<int64_t>(0, hi - lo);
  }
  return total;
}

}  // namespace

void attention_forward(float* out, const float* q, int64_t n, int64_t q_pos0,
                       std::span<const KvSegment> segments, const AttentionShape& sh,
                       ThreadPool& pool) {
  check_shape(sh);
  const int h = sh.n_heads, k = sh.head_dim, group = sh.n_heads / sh.n_kv_heads;
  const auto& kr = kernels::kernels();
  const int g = sh.n_kv_heads;
  if (n == 1) {
    // Decode: work items are (KV head, key split); partial states are merged
    // in split order: m = max m_s, l = sum l_s e^{m_s - m}, acc likewise.
    const int splits = int(std::clamp<int64_t>(visible_count(q_pos0, segments, sh.window) / kDecodeSplitKeys, 1, kMaxSplits));
    // The caller's scratch, grown once and then reused (the workers reach it
    // through these references, not through their own thread_local copies).
    thread_local std::vector<float> scratch_tl;
    thread_local std::vector<Partial> states_tl;
    std::vector<float>& scratch = scratch_tl;
    std::vector<Partial>& states = states_tl;
    scratch.resize(size_t(g) * size_t(splits) * size_t(group) * size_t(k));
    states.resize(size_t(g) * size_t(splits));
    float* acc_all = scratch.data();
    pool.parallel_for(size_t(g * splits), 1, [&](size_t begin, size_t end, size_t) {
      for (size_t item = begin; item < end; ++item) {
        const int j = int(item) / splits, sp = int(item) % splits;
        attend_group(states[item], acc_all + int64_t(item) * group * k, q + int64_t(j) * group * k, q_pos0, j,
                     group, sp, splits, segments, sh, kr);
      }
    });
    for (int j = 0; j < g; ++j)
      for (int gi = 0; gi < group; ++gi) {
        float m = -INFINITY;
        for (int sp = 0; sp < splits; ++sp) m = std::max(m, states[size_t(j * splits + sp)].m[gi]);
        float* o = out + (int64_t(j) * group + gi) * k;
        std::fill(o, o + k, 0.0f);
        float l = 0;
        for (int sp = 0; sp < splits; ++sp) {
          const Partial& st = states[size_t(j * splits + sp)];
          if (st.l[gi] == 0) continue;
          const float w = std::exp(st.m[gi] - m);
          l += st.l[gi] * w;
          kr.axpy_f32(o, w, acc_all + (int64_t(j * splits + sp) * group + gi) * k, k);
        }
        if (l > 0) kr.scale_f32(o, 1.0f / l, k);
      }
    return;
  }
  // Prefill: work items are (row, KV head) pairs. Query heads of one group
  // are adjacent in q and out.
  pool.parallel_for(size_t(n * g), 1, [&](size_t begin, size_t end, size_t) {
    Partial st;
    for (size_t item = begin; item < end; ++item) {
      // Rows in zig-zag order (0, n-1, 1, n-2, ...): a causal row's cost grows
      // with t, and contiguous static ranges of this order cost the same.
      const int64_t r = int64_t(item) / g;
      const int64_t t = r % 2 == 0 ? r / 2 : n - 1 - r / 2;
      const int j = int(int64_t(item) % g);
      const int64_t at = (t * h + int64_t(j) * group) * k;
      attend_group(st, out + at, q + at, q_pos0 + t, j, group, 0, 1, segments, sh, kr);
      for (int gi = 0; gi < group; ++gi)
        if (st.l[gi] > 0) kr.scale_f32(out + at + int64_t(gi) * k, 1.0f / st.l[gi], k);
    }
  });
}

void attention_naive(float* out, const float* q, int64_t n, int64_t q_pos0,
                     std::span<const KvSegment> segments, const AttentionShape& sh) {
  check_shape(sh);
  const int h = sh.n_heads, k = sh.head_dim, group = sh.n_heads / sh.n_kv_heads;
  std::vector<double> scores;
  std::vector<const float*> values;
  for (int64_t t = 0; t < n; ++t) {
    const int64_t qp = q_pos0 + t;
    for (int head = 0; head < h; ++head) {
      const float* qv = q + (t * h + head) * k;
      const int kv = head / group;
      scores.clear();
      values.clear();
      for (const auto& seg : segments) {
        int64_t lo, hi;
        visible(qp, sh.window, seg, &lo, &hi);
        for (int64_t p = lo; p < hi; ++p) {
          const float* kv_k = seg.k + kv * seg.head_stride + seg.row(p) * seg.pos_stride;
          double s = 0;
          for (int i = 0; i < k; ++i) s += double(qv[i]) * kv_k[i];
          s *= sh.scale;
          if (sh.softcap > 0) s = sh.softcap * std::tanh(s / sh.softcap);
          scores.push_back(s);
          values.push_back(seg.v + kv * seg.head_stride + seg.row(p) * seg.pos_stride);
        }
      }
      double mx = sh.plus_one ? 0.0 : -INFINITY;
      for (double s : scores) mx = std::max(mx, s);
      double denom = sh.plus_one ? std::exp(-mx) : 0.0;
      for (double& s : scores) denom += (s = std::exp(s - mx));
      float* o = out + (t * h + head) * k;
      for (int i = 0; i < k; ++i) {
        double acc = 0;
        for (size_t j = 0; j < scores.size(); ++j) acc += scores[j] * values[j][i];
        o[i] = denom > 0 ? float(acc / denom) : 0.0f;
      }
    }
  }
}

}  // namespace tpp

