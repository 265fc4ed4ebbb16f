#include "tpp/ops/attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "tpp/core/error.h"
#include "tpp/kernels/api.h"

namespace tpp {
namespace {

// Keys per tile of the online softmax: scores of one tile live on the stack.
constexpr int64_t kTile = 64;
constexpr int kMaxHeadDim = 512;

void check_shape(const AttentionShape& s) {
  TPP_CHECK(s.n_heads > 0 && s.n_kv_heads > 0 && s.n_heads % s.n_kv_heads == 0,
            "attention: n_heads {} must be a positive multiple of n_kv_heads {}", s.n_heads,
            s.n_kv_heads);
  TPP_CHECK(s.head_dim > 0 && s.head_dim <= kMaxHeadDim, "attention: head_dim {} not in [1, {}]",
            s.head_dim, kMaxHeadDim);
}

// The visible key range for a query at position qp.
inline void visible(int64_t qp, int64_t window, const KvSegment& seg, int64_t* lo, int64_t* hi) {
  *lo = std::max(seg.pos_begin, window > 0 ? qp - window + 1 : int64_t(0));
  *hi = std::min(seg.pos_end, qp + 1);
}

inline float cap(float s, float c) { return c > 0 ? c * std::tanh(s / c) : s; }

// One (query row, head): online softmax over every visible key, tile by tile.
void attend_one(float* out, const float* q, int64_t qp, int kv_head,
                std::span<const KvSegment> segments, const AttentionShape& sh,
                const kernels::Kernels& kr) {
  const int k = sh.head_dim;
  // plus_one is a phantom key with score 0 and value 0: start from m = 0, l = 1.
  float m = sh.plus_one ? 0.0f : -INFINITY;
  float l = sh.plus_one ? 1.0f : 0.0f;
  std::fill(out, out + k, 0.0f);
  float scores[kTile];
  for (const auto& seg : segments) {
    int64_t lo, hi;
    visible(qp, sh.window, seg, &lo, &hi);
    const float* kb = seg.k + kv_head * seg.head_stride;
    const float* vb = seg.v + kv_head * seg.head_stride;
    for (int64_t p0 = lo; p0 < hi; p0 += kTile) {
      const int64_t p1 = std::min(hi, p0 + kTile);
      float tile_max = -INFINITY;
      for (int64_t p = p0; p < p1; ++p) {
        const float s = cap(kr.dot_f32(q, kb + seg.row(p) * seg.pos_stride, k) * sh.scale, sh.softcap);
        scores[p - p0] = s;
        tile_max = std::max(tile_max, s);
      }
      const float m_new = std::max(m, tile_max);
      const float correction = std::exp(m - m_new);  // exp(-inf) = 0 on the first tile
      if (correction != 1.0f) kr.scale_f32(out, correction, k);
      l *= correction;
      for (int64_t p = p0; p < p1; ++p) {
        const float e = std::exp(scores[p - p0] - m_new);
        l += e;
        kr.axpy_f32(out, e, vb + seg.row(p) * seg.pos_stride, k);
      }
      m = m_new;
    }
  }
  if (l > 0) kr.scale_f32(out, 1.0f / l, k);
}

}  // namespace

void attention_forward(float* out, const float* q, int64_t n, int64_t q_pos0,
                       std::span<const KvSegment> segments, const AttentionShape& sh,
                       ThreadPool& pool) {
  check_shape(sh);
  const int h = sh.n_heads, k = sh.head_dim, group = sh.n_heads / sh.n_kv_heads;
  const auto& kr = kernels::kernels();
  // Work items are (row, head) pairs: decode (n = 1) still spreads heads over workers.
  pool.parallel_for(size_t(n * h), 1, [&](size_t begin, size_t end, size_t) {
    for (size_t item = begin; item < end; ++item) {
      const int64_t t = int64_t(item) / h;
      const int head = int(int64_t(item) % h);
      attend_one(out + (t * h + head) * k, q + (t * h + head) * k, q_pos0 + t, head / group,
                 segments, sh, kr);
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

