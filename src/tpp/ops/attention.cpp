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

// One query row and one KV head: the G = h/g query heads of its group walk
// every visible key with the online softmax, run by run (a rolling buffer's
// visible range is at most two contiguous runs of rows).
void attend_group(float* out, const float* q, int64_t qp, int kv_head, int G,
                  std::span<const KvSegment> segments, const AttentionShape& sh,
                  const kernels::Kernels& kr) {
  const int k = sh.head_dim;
  float m[kernels::kAttnMaxGroup], l[kernels::kAttnMaxGroup];
  for (int g = 0; g < G; ++g) {
    // plus_one is a phantom key with score 0 and value 0: start from m = 0, l = 1.
    m[g] = sh.plus_one ? 0.0f : -INFINITY;
    l[g] = sh.plus_one ? 1.0f : 0.0f;
  }
  std::fill(out, out + int64_t(G) * k, 0.0f);
  for (const auto& seg : segments) {
    int64_t lo, hi;
    visible(qp, sh.window, seg, &lo, &hi);
    const float* kb = seg.k + kv_head * seg.head_stride;
    const float* vb = seg.v + kv_head * seg.head_stride;
    while (lo < hi) {
      const int64_t row = seg.row(lo);
      const int64_t run = seg.ring > 0 ? std::min(hi - lo, seg.ring - row) : hi - lo;
      kr.attn_step_f32(out, m, l, q, G, k, kb + row * seg.pos_stride, vb + row * seg.pos_stride,
                       seg.pos_stride, run, sh.scale, sh.softcap);
      lo += run;
    }
  }
  for (int g = 0; g < G; ++g)
    if (l[g] > 0) kr.scale_f32(out + int64_t(g) * k, 1.0f / l[g], k);
}

}  // namespace

void attention_forward(float* out, const float* q, int64_t n, int64_t q_pos0,
                       std::span<const KvSegment> segments, const AttentionShape& sh,
                       ThreadPool& pool) {
  check_shape(sh);
  const int h = sh.n_heads, k = sh.head_dim, group = sh.n_heads / sh.n_kv_heads;
  const auto& kr = kernels::kernels();
  const int g = sh.n_kv_heads;
  // Work items are (row, KV head) pairs: decode (n = 1) still spreads KV heads
  // over workers. Query heads of one group are adjacent in q and out.
  pool.parallel_for(size_t(n * g), 1, [&](size_t begin, size_t end, size_t) {
    for (size_t item = begin; item < end; ++item) {
      // Rows in zig-zag order (0, n-1, 1, n-2, ...): a causal row's cost grows
      // with t, and contiguous static ranges of this order cost the same.
      const int64_t r = int64_t(item) / g;
      const int64_t t = r % 2 == 0 ? r / 2 : n - 1 - r / 2;
      const int j = int(int64_t(item) % g);
      const int64_t at = (t * h + int64_t(j) * group) * k;
      attend_group(out + at, q + at, q_pos0 + t, j, group, segments, sh, kr);
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

