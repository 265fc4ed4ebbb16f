#include "tpp/ops/attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "tpp/core/error.h"
#include "tpp/kernels/api.h"
#include "tpp/ops/gemm.h"

namespace tpp {
namespace {

constexpr int kMaxHeadDim = 512;

void check_shape(const AttentionShape& s) {
  TPP_CHECK(s.n_heads > 0 && s.n_kv_heads > 0 && s.n_heads % s.n_kv_heads == 0,
            "attention: n_heads {} must be a positive multiple of n_kv_heads {}", s.n_heads,
            s.n_kv_heads);
  TPP_CHECK(s.head_dim > 0 && s.head_dim <= kMaxHeadDim, "attention: head_dim {} not in [1, {}]",
            s.head_dim, kMaxHeadDim);
}

// The visible key range for a query at position qp.
template <class R>
inline void visible(int64_t qp, int64_t window, const KvSegmentT<R>& seg, int64_t* lo, int64_t* hi) {
  *lo = std::max(seg.pos_begin, window > 0 ? qp - window + 1 : int64_t(0));
  *hi = std::min(seg.pos_end, qp + 1);
}

// Online-softmax state of G queries: running max m, sum l (acc [G, k] is kept
// by the caller).
struct Partial {
  std::vector<float> mv, lv;
  float* m = nullptr;
  float* l = nullptr;
  void resize(int G) {
    if (int(mv.size()) < G) {
      mv.resize(size_t(G));
      lv.resize(size_t(G));
    }
    m = mv.data();
    l = lv.data();
  }
};

// The online softmax over one run of keys at positions p0 .. p0+n-1 with
// ALiBi biases (the kernels' step has none): one dot per key, the running
// state rescaled when the maximum grows.
void alibi_step(Partial& st, float* acc, const float* q, int64_t qp, int kv_head, int G, const float* K,
                const float* V, int64_t stride, int64_t p0, int64_t n, const AttentionShape& sh, const float* slopes,
                const kernels::Kernels& kr) {
  const int k = sh.head_dim;
  for (int g = 0; g < G; ++g) {
    const float slope = slopes[kv_head * G + g];
    float* a = acc + int64_t(g) * k;
    for (int64_t i = 0; i < n; ++i) {
      float s = kr.dot_f32(q + int64_t(g) * k, K + i * stride, k) * sh.scale - slope * float(qp - (p0 + i));
      if (sh.softcap > 0) s = sh.softcap * std::tanh(s / sh.softcap);
      if (s > st.m[g]) {
        const float c = std::exp(st.m[g] - s);
        kr.scale_f32(a, c, k);
        st.l[g] *= c;
        st.m[g] = s;
      }
      const float w = std::exp(s - st.m[g]);
      st.l[g] += w;
      kr.axpy_f32(a, w, V + i * stride, k);
    }
  }
}

// The rows of KV head j from row `row` on: their bytes and the bytes from
// one row to the next.
struct Rows {
  const std::byte* k;
  const std::byte* v;
  int64_t stride;
};
Rows rows_at(const KvSegment& seg, int j, int64_t row) {
  if (seg.type == DType::f32) {
    const int64_t at = j * seg.head_stride + row * seg.pos_stride;
    return {reinterpret_cast<const std::byte*>(seg.k + at), reinterpret_cast<const std::byte*>(seg.v + at),
            seg.pos_stride * int64_t(sizeof(float))};
  }
  const int64_t at = j * seg.head_bytes + row * seg.row_bytes;
  return {seg.kq + at, seg.vq + at, seg.row_bytes};
}

// The table's step that reads rows of type t in place, or null.
kernels::AttnStepFn step_for(const kernels::Kernels& kr, DType t) {
  switch (t) {
    case DType::f32: return kr.attn_step_f32;
    case DType::f16: return kr.attn_step_f16;
    case DType::bf16: return kr.attn_step_bf16;
    case DType::q8_0: return kr.attn_step_q8_0;
    default: return nullptr;
  }
}

// n rows of type t (k elements each, stride bytes apart) widened to f32 rows
// of k floats at dst.
void widen_rows(float* dst, const std::byte* src, int64_t stride, int64_t n, int k, DType t,
                const kernels::Kernels& kr) {
  for (int64_t i = 0; i < n; ++i) {
    const std::byte* r = src + i * stride;
    float* d = dst + i * k;
    switch (t) {
      case DType::f32: std::memcpy(d, r, size_t(k) * sizeof(float)); break;
      case DType::f16: kr.f16_to_f32(d, reinterpret_cast<const uint16_t*>(r), k); break;
      case DType::bf16: kr.bf16_to_f32(d, reinterpret_cast<const uint16_t*>(r), k); break;
      case DType::q8_0: kr.dequant_q8_0(d, r, k); break;
      default: fail("attention: cannot read KV rows of type {}, expected f32, f16, bf16 or q8_0", dtype_name(t));
    }
  }
}

// Rows widened at a time where no kernel reads the type in place (the
// kernels' own tile, so the results are those of the in-place kernels).
constexpr int64_t kWidenRows = 64;

// One query row and one KV head: the G = h/g query heads of its group walk
// the visible keys with the online softmax, run by run (a rolling buffer's
// visible range is at most two contiguous runs of rows), at most
// kAttnMaxGroup heads per pass. Split `s` of `splits` takes the s-th equal
// share of each segment's visible range; the state is left unnormalised in
// (st, acc). Rows in a 16- or 8-bit type are read in place by the table's
// step for that type, or else widened kWidenRows at a time.
void attend_group(Partial& st, float* acc, const float* q, int64_t qp, int kv_head, int G, int s, int splits,
                  std::span<const KvSegment> segments, const AttentionShape& sh, const float* slopes,
                  const kernels::Kernels& kr) {
  const int k = sh.head_dim;
  for (int g = 0; g < G; ++g) {
    // plus_one is a phantom key with score 0 and value 0: start from m = 0, l = 1 (once).
    const bool phantom = sh.plus_one && s == 0;
    st.m[g] = phantom ? 0.0f : -INFINITY;
    st.l[g] = phantom ? 1.0f : 0.0f;
  }
  std::fill(acc, acc + int64_t(G) * k, 0.0f);
  // Keys [p0, p0 + n) in f32 rows (stride bytes apart).
  auto keys = [&](const void* K, const void* V, int64_t stride, int64_t p0, int64_t n, kernels::AttnStepFn step) {
    if (sh.alibi) {
      alibi_step(st, acc, q, qp, kv_head, G, static_cast<const float*>(K), static_cast<const float*>(V),
                 stride / int64_t(sizeof(float)), p0, n, sh, slopes, kr);
      return;
    }
    for (int g0 = 0; g0 < G; g0 += kernels::kAttnMaxGroup) {
      const int gn = std::min(G - g0, kernels::kAttnMaxGroup);
      step(acc + int64_t(g0) * k, st.m + g0, st.l + g0, q + int64_t(g0) * k, gn, k, K, V, stride, n, sh.scale,
           sh.softcap);
    }
  };
  for (const auto& seg : segments) {
    int64_t lo, hi;
    visible(qp, sh.window, seg, &lo, &hi);
    if (lo >= hi) continue;
    const int64_t count = hi - lo;
    hi = lo + count * (s + 1) / splits;
    lo = lo + count * s / splits;
    const kernels::AttnStepFn step = step_for(kr, seg.type);
    while (lo < hi) {
      const int64_t row = seg.row(lo);
      const int64_t run = seg.ring > 0 ? std::min(hi - lo, seg.ring - row) : hi - lo;
      const Rows rows = rows_at(seg, kv_head, row);
      if (seg.type == DType::f32 || (step && !sh.alibi)) {
        keys(rows.k, rows.v, rows.stride, lo, run, step);
      } else {
        thread_local std::vector<float> wk, wv;
        wk.resize(size_t(kWidenRows * k));
        wv.resize(size_t(kWidenRows * k));
        for (int64_t i = 0; i < run; i += kWidenRows) {
          const int64_t n = std::min(kWidenRows, run - i);
          widen_rows(wk.data(), rows.k + i * rows.stride, rows.stride, n, k, seg.type, kr);
          widen_rows(wv.data(), rows.v + i * rows.stride, rows.stride, n, k, seg.type, kr);
          keys(wk.data(), wv.data(), int64_t(k) * int64_t(sizeof(float)), lo + i, n, kr.attn_step_f32);
        }
      }
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

template <class R>
int64_t visible_count(int64_t qp, std::span<const KvSegmentT<R>> segments, int64_t window) {
  int64_t total = 0;
  for (const auto& seg : segments) {
    int64_t lo, hi;
    visible(qp, window, seg, &lo, &hi);
    total += std::max<int64_t>(0, hi - lo);
  }
  return total;
}

}  // namespace

void attention_decode(std::span<const DecodeRow> rows, const AttentionShape& sh, ThreadPool& pool) {
  check_shape(sh);
  const int h = sh.n_heads, k = sh.head_dim, group = sh.n_heads / sh.n_kv_heads;
  const auto& kr = kernels::kernels();
  const int g = sh.n_kv_heads;
  const std::vector<float> slopes = sh.alibi ? alibi_slopes(h) : std::vector<float>();
  // Work items are (row, KV head, key split), row by row; partial states are
  // merged in split order: m = max m_s, l = sum l_s e^{m_s - m}, acc likewise.
  // The caller's scratch, grown once and then reused (the workers reach it
  // through these references, not through their own thread_local copies).
  thread_local std::vector<float> scratch_tl;
  thread_local std::vector<Partial> states_tl;
  thread_local std::vector<int64_t> first_tl;
  thread_local std::vector<int> splits_tl;
  std::vector<float>& scratch = scratch_tl;
  std::vector<Partial>& states = states_tl;
  std::vector<int64_t>& first = first_tl;  // each row's first item
  std::vector<int>& splits = splits_tl;
  first.resize(rows.size());
  splits.resize(rows.size());
  int64_t items = 0;
  for (size_t r = 0; r < rows.size(); ++r) {
    splits[r] = int(std::clamp<int64_t>(visible_count(rows[r].q_pos0, rows[r].segments, sh.window) / kDecodeSplitKeys,
                                        1, kMaxSplits));
    first[r] = items;
    items += int64_t(g) * splits[r];
  }
  scratch.resize(size_t(items) * size_t(group) * size_t(k));
  states.resize(size_t(items));
  for (auto& st : states) st.resize(group);
  float* acc_all = scratch.data();
  pool.parallel_for(size_t(items), 1, [&](size_t begin, size_t end, size_t) {
    size_t r = size_t(std::upper_bound(first.begin(), first.end(), int64_t(begin)) - first.begin()) - 1;
    for (size_t item = begin; item < end; ++item) {
      while (r + 1 < rows.size() && first[r + 1] <= int64_t(item)) ++r;
      const int64_t local = int64_t(item) - first[r];
      const int j = int(local / splits[r]), sp = int(local % splits[r]);
      attend_group(states[item], acc_all + int64_t(item) * group * k, rows[r].q + int64_t(j) * group * k,
                   rows[r].q_pos0, j, group, sp, splits[r], rows[r].segments, sh, slopes.data(), kr);
    }
  });
  for (size_t r = 0; r < rows.size(); ++r) {
    const int ns = splits[r];
    const Partial* st_r = states.data() + first[r];
    const float* acc_r = acc_all + first[r] * group * k;
    for (int j = 0; j < g; ++j)
      for (int gi = 0; gi < group; ++gi) {
        float m = -INFINITY;
        for (int sp = 0; sp < ns; ++sp) m = std::max(m, st_r[j * ns + sp].m[gi]);
        float* o = rows[r].out + (int64_t(j) * group + gi) * k;
        std::fill(o, o + k, 0.0f);
        float l = 0;
        for (int sp = 0; sp < ns; ++sp) {
          const Partial& st = st_r[j * ns + sp];
          if (st.l[gi] == 0) continue;
          const float w = std::exp(st.m[gi] - m);
          l += st.l[gi] * w;
          kr.axpy_f32(o, w, acc_r + (int64_t(j * ns + sp) * group + gi) * k, k);
        }
        if (l > 0) kr.scale_f32(o, 1.0f / l, k);
        if (rows[r].lse) rows[r].lse[j * group + gi] = m + std::log(l);
      }
  }
}

namespace {

void attention_forward_f32(float* out, const float* q, int64_t n, int64_t q_pos0,
                           std::span<const KvSegment> segments, const AttentionShape& sh, ThreadPool& pool,
                           float* lse) {
  check_shape(sh);
  const int h = sh.n_heads, k = sh.head_dim, group = sh.n_heads / sh.n_kv_heads;
  const auto& kr = kernels::kernels();
  const int g = sh.n_kv_heads;
  const std::vector<float> slopes = sh.alibi ? alibi_slopes(h) : std::vector<float>();
  if (n == 1) {
    const DecodeRow row{out, q, q_pos0, segments, lse};
    attention_decode(std::span(&row, 1), sh, pool);
    return;
  }
  // Prefill: work items are (row, KV head) pairs. Query heads of one group
  // are adjacent in q and out.
  pool.parallel_for(size_t(n * g), 1, [&](size_t begin, size_t end, size_t) {
    Partial st;
    st.resize(group);
    for (size_t item = begin; item < end; ++item) {
      // Rows in zig-zag order (0, n-1, 1, n-2, ...): a causal row's cost grows
      // with t, and contiguous static ranges of this order cost the same.
      const int64_t r = int64_t(item) / g;
      const int64_t t = r % 2 == 0 ? r / 2 : n - 1 - r / 2;
      const int j = int(int64_t(item) % g);
      const int64_t at = (t * h + int64_t(j) * group) * k;
      attend_group(st, out + at, q + at, q_pos0 + t, j, group, 0, 1, segments, sh, slopes.data(), kr);
      for (int gi = 0; gi < group; ++gi) {
        if (st.l[gi] > 0) kr.scale_f32(out + at + int64_t(gi) * k, 1.0f / st.l[gi], k);
        if (lse) lse[t * h + int64_t(j) * group + gi] = st.m[gi] + std::log(st.l[gi]);
      }
    }
  });
}

// Each row's scores materialised and the softmax taken in two passes, in
// double: the reference the fused kernel is tested against (float), and the
// double path of the gradient checks (rows split across the pool when given).
template <class R>
void naive_rows(R* out, const R* q, int64_t n, int64_t q_pos0, std::span<const KvSegmentT<R>> segments,
                const AttentionShape& sh, R* lse, ThreadPool* pool) {
  const int h = sh.n_heads, k = sh.head_dim, group = sh.n_heads / sh.n_kv_heads;
  const std::vector<float> slopes = sh.alibi ? alibi_slopes(h) : std::vector<float>();
  auto rows = [&](size_t t0, size_t t1, size_t) {
    std::vector<double> scores;
    std::vector<R> values;  // the visible rows of V, [scores.size(), k]
    std::vector<R> key(static_cast<size_t>(k));
    // Row p of K (or V) of KV head j, widened from a cache's type into buf.
    auto row_of = [&](const KvSegmentT<R>& seg, const R* base, const std::byte* bytes, int j, int64_t p, R* buf) {
      if (seg.type == DType::f32) return base + j * seg.head_stride + seg.row(p) * seg.pos_stride;
      if constexpr (std::is_same_v<R, float>) {
        widen_rows(buf, bytes + j * seg.head_bytes + seg.row(p) * seg.row_bytes, 0, 1, k, seg.type,
                   kernels::kernels());
        return static_cast<const R*>(buf);
      } else {
        fail("attention: a KV cache of type {} needs float attention", dtype_name(seg.type));
      }
    };
    for (size_t t = t0; t < t1; ++t) {
      const int64_t qp = q_pos0 + int64_t(t);
      for (int head = 0; head < h; ++head) {
        const R* qv = q + (int64_t(t) * h + head) * k;
        const int kv = head / group;
        scores.clear();
        values.clear();
        for (const auto& seg : segments) {
          int64_t lo, hi;
          visible(qp, sh.window, seg, &lo, &hi);
          for (int64_t p = lo; p < hi; ++p) {
            const R* kk = row_of(seg, seg.k, seg.kq, kv, p, key.data());
            double s = 0;
            for (int i = 0; i < k; ++i) s += double(qv[i]) * double(kk[i]);
            s *= double(sh.scale);
            if (sh.alibi) s -= double(slopes[size_t(head)]) * double(qp - p);
            if (sh.softcap > 0) s = double(sh.softcap) * std::tanh(s / double(sh.softcap));
            scores.push_back(s);
            const R* vv = row_of(seg, seg.v, seg.vq, kv, p, key.data());
            values.insert(values.end(), vv, vv + k);
          }
        }
        double mx = sh.plus_one ? 0.0 : -INFINITY;
        for (double s : scores) mx = std::max(mx, s);
        double denom = sh.plus_one ? std::exp(-mx) : 0.0;
        for (double& s : scores) denom += (s = std::exp(s - mx));
        R* o = out + (int64_t(t) * h + head) * k;
        for (int i = 0; i < k; ++i) {
          double acc = 0;
          for (size_t j = 0; j < scores.size(); ++j) acc += scores[j] * double(values[j * size_t(k) + size_t(i)]);
          o[i] = denom > 0 ? R(acc / denom) : R(0);
        }
        if (lse) lse[int64_t(t) * h + head] = R(mx + std::log(denom));
      }
    }
  };
  if (pool)
    pool->parallel_for(size_t(n), 1, rows);
  else
    rows(0, size_t(n), 0);
}

}  // namespace

void attention_naive(float* out, const float* q, int64_t n, int64_t q_pos0,
                     std::span<const KvSegment> segments, const AttentionShape& sh) {
  check_shape(sh);
  naive_rows<float>(out, q, n, q_pos0, segments, sh, nullptr, nullptr);
}

namespace {

constexpr int64_t kRowBlock = 64;

// Scratch of one worker of the backward pass: O(kRowBlock * T + k * T).
template <class R>
struct BackwardScratch {
  std::vector<R> KT, VT, S, P, dS, D;
  void ensure(int64_t T, int k) {
    for (auto* v : {&KT, &VT})
      if (v->size() < size_t(k * T)) v->resize(size_t(k * T));
    for (auto* v : {&S, &P, &dS})
      if (v->size() < size_t(kRowBlock * T)) v->resize(size_t(kRowBlock * T));
    if (D.size() < size_t(T)) D.resize(size_t(T));
  }
};

// First key (relative row) that query row t may see.
inline int64_t key_lo(int64_t t, int64_t window) { return window > 0 ? std::max<int64_t>(0, t - window + 1) : 0; }

// row[c] = exp(row[c] - shift) for c < n; returns sum + their sum. Float rows
// take the level's vector exp (relative error below 1e-6, its own order of
// sums) where it has one; otherwise (and for double) element by element.
template <class R>
R exp_in_place(R* row, int64_t n, R shift, R sum) {
  if constexpr (std::is_same_v<R, float>)
    if (const auto exp_sum = kernels::kernels().exp_sum_f32) return sum + exp_sum(row, row, shift, n);
  for (int64_t c = 0; c < n; ++c) sum += (row[c] = std::exp(row[c] - shift));
  return sum;
}

// row[c] *= a for c < n; float rows on the level's scale kernel (the same
// products).
template <class R>
void scale_row(R* row, int64_t n, R a) {
  if constexpr (std::is_same_v<R, float>) return kernels::kernels().scale_f32(row, a, n);
  for (int64_t c = 0; c < n; ++c) row[c] *= a;
}

// max(floor, row[0], ..., row[n - 1]); float rows on the level's vector max
// where it has one.
template <class R>
R row_max(const R* row, int64_t n, R floor) {
  if constexpr (std::is_same_v<R, float>)
    if (const auto max_f32 = kernels::kernels().max_f32; max_f32 && n > 0) return std::max(floor, max_f32(row, n));
  for (int64_t c = 0; c < n; ++c) floor = std::max(floor, row[c]);
  return floor;
}

// One sequence and one KV head: its G query heads, query rows in blocks of
// kRowBlock, keys [key_lo(t0), t1) of each block. For a block:
//   S = cap(Q K^T * scale), P = exp(S - lse) on visible keys (0 elsewhere)
//   dP = dO V^T,  dS = P (dP - D) cap'(S) scale,  D = rowsum(dO * O)
//   dQ = dS K,  dK += dS^T Q,  dV += P^T dO
template <class R>
void backward_pair(const AttentionBackward<R>& a, const AttnSeq& seq, int j, const AttentionShape& sh,
                   BackwardScratch<R>& s) {
  const int h = sh.n_heads, k = sh.head_dim, G = sh.n_heads / sh.n_kv_heads;
  const int64_t hk = int64_t(h) * k, gk = int64_t(sh.n_kv_heads) * k, T = seq.n;
  const R scale = R(sh.scale), cap = R(sh.softcap);
  const std::vector<float> slopes = sh.alibi ? alibi_slopes(h) : std::vector<float>();
  s.ensure(T, k);
  const R* K = a.k + seq.row0 * gk + int64_t(j) * k;
  const R* V = a.v + seq.row0 * gk + int64_t(j) * k;
  R* dK = a.dk + seq.row0 * gk + int64_t(j) * k;
  R* dV = a.dv + seq.row0 * gk + int64_t(j) * k;
  transpose(s.KT.data(), K, T, k, gk, T);
  transpose(s.VT.data(), V, T, k, gk, T);
  for (int i = j * G; i < (j + 1) * G; ++i) {
    const int64_t at = seq.row0 * hk + int64_t(i) * k;
    const R *Q = a.q + at, *dO = a.dout + at, *O = a.out + at;
    const R* lse = a.lse + seq.row0 * h + i;
    R* dQ = a.dq + at;
    for (int64_t t = 0; t < T; ++t) {
      R acc = 0;
      for (int c = 0; c < k; ++c) acc += dO[t * hk + c] * O[t * hk + c];
      s.D[size_t(t)] = acc;
    }
    for (int64_t t0 = 0; t0 < T; t0 += kRowBlock) {
      const int64_t t1 = std::min(T, t0 + kRowBlock), c0 = key_lo(t0, sh.window), W = t1 - c0, rows = t1 - t0;
      mm_nn(s.S.data(), Q + t0 * hk, s.KT.data() + c0, rows, k, W, hk, T, T, false);
      mm_nn(s.dS.data(), dO + t0 * hk, s.VT.data() + c0, rows, k, W, hk, T, T, false);
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t t = t0 + r, lo = key_lo(t, sh.window) - c0, hi = t - c0;  // visible columns [lo, hi]
        R* Sr = s.S.data() + r * T;
        R* Pr = s.P.data() + r * T;
        R* dSr = s.dS.data() + r * T;
        const R l = lse[t * h], Dt = s.D[size_t(t)];
        std::fill(Pr, Pr + lo, R(0));
        std::fill(dSr, dSr + lo, R(0));
        std::fill(Pr + hi + 1, Pr + W, R(0));
        std::fill(dSr + hi + 1, dSr + W, R(0));
        if (!sh.alibi && cap <= 0) {
          // Plain scores: P's exps in one pass (a vector one for float).
          for (int64_t c = lo; c <= hi; ++c) Pr[c] = Sr[c] * scale;
          exp_in_place(Pr + lo, hi - lo + 1, l, R(0));
          for (int64_t c = lo; c <= hi; ++c) dSr[c] = Pr[c] * (dSr[c] - Dt) * scale;
          continue;
        }
        for (int64_t c = lo; c <= hi; ++c) {
          R v = Sr[c] * scale;
          if (sh.alibi) v -= R(slopes[size_t(i)]) * R(t - (c0 + c));
          R dcap = R(1);
          if (cap > 0) {
            v = cap * std::tanh(v / cap);
            const R th = v / cap;
            dcap = R(1) - th * th;
          }
          const R p = std::exp(v - l);
          Pr[c] = p;
          dSr[c] = p * (dSr[c] - Dt) * dcap * scale;
        }
      }
      mm_nn(dQ + t0 * hk, s.dS.data(), K + c0 * gk, rows, W, k, T, gk, hk, false);
      mm_tn(dK + c0 * gk, s.dS.data(), Q + t0 * hk, W, rows, k, T, hk, gk, true);
      mm_tn(dV + c0 * gk, s.P.data(), dO + t0 * hk, W, rows, k, T, hk, gk, true);
    }
  }
}

// Sequences whose rows attend only to themselves (training sequences, a
// prefill with an empty cache): all keys are the query rows, so a 64-row
// block of queries meets its keys [key_lo(t0), t1) as two GEMMs over 64 x T
// scratch, with the exact softmax in between (FlashAttention-2's forward with
// one key tile per row block). Work items are (sequence, KV head, row block),
// the costliest (latest) blocks first, handed out dynamically: an item's
// result does not depend on which worker takes it.
// q, out: [N, h*k] rows; k, v: [N, g*k] rows.
template <class R>
void forward_self(R* out, const R* q, const R* kk, const R* vv, std::span<const AttnSeq> seqs,
                  const AttentionShape& sh, ThreadPool& pool, R* lse) {
  const int h = sh.n_heads, k = sh.head_dim, g = sh.n_kv_heads, G = h / g;
  const int64_t hk = int64_t(h) * k, gk = int64_t(g) * k;
  const R scale = R(sh.scale), cap = R(sh.softcap);
  const std::vector<float> slopes = sh.alibi ? alibi_slopes(h) : std::vector<float>();
  // Plain scores (no ALiBi, no soft cap) are scaled and their maximum taken
  // in whole-row passes (vector kernels for float): the per-element loop
  // carried its running maximum through memory (most of this function's own
  // time in a 1B-shape prefill).
  const bool plain = !sh.alibi && !(cap > 0);
  struct Item {
    int64_t t0;  // first row of the block, within its sequence
    uint32_t seq;
    int j;
  };
  std::vector<Item> items;
  int64_t longest = 0;
  for (size_t s = 0; s < seqs.size(); ++s) {
    longest = std::max(longest, seqs[s].n);
    for (int64_t t0 = 0; t0 < seqs[s].n; t0 += kRowBlock)
      for (int j = 0; j < g; ++j) items.push_back({t0, uint32_t(s), j});
  }
  std::stable_sort(items.begin(), items.end(), [](const Item& a, const Item& b) { return a.t0 > b.t0; });
  std::vector<std::vector<R>> scratch(pool.size());
  pool.parallel_for_dynamic(items.size(), 1, [&](size_t i0, size_t i1, size_t worker) {
    std::vector<R>& buf = scratch[worker];
    if (buf.size() < size_t((k + kRowBlock) * longest)) buf.resize(size_t((k + kRowBlock) * longest));
    R* KT = buf.data();
    R* S = KT + int64_t(k) * longest;
    for (size_t it = i0; it < i1; ++it) {
      const Item& item = items[it];
      const AttnSeq& seq = seqs[item.seq];
      const int64_t n = seq.n, t0 = item.t0, t1 = std::min(n, t0 + kRowBlock);
      const int64_t c0 = key_lo(t0, sh.window), W = t1 - c0, rows = t1 - t0;
      const R* K = kk + (seq.row0 + c0) * gk + int64_t(item.j) * k;
      const R* V = vv + (seq.row0 + c0) * gk + int64_t(item.j) * k;
      transpose(KT, K, W, k, gk, W);
      for (int i = item.j * G; i < (item.j + 1) * G; ++i) {
        const int64_t at = (seq.row0 + t0) * hk + int64_t(i) * k;
        mm_nn(S, q + at, KT, rows, k, W, hk, W, W, false);
        for (int64_t r = 0; r < rows; ++r) {
          const int64_t t = t0 + r, lo = key_lo(t, sh.window) - c0, hi = t - c0;  // visible [lo, hi]
          R* Sr = S + r * W;
          R mx = sh.plus_one ? R(0) : -std::numeric_limits<R>::infinity();
          if (plain) {
            scale_row(Sr + lo, hi - lo + 1, scale);
            mx = row_max(Sr + lo, hi - lo + 1, mx);
          } else {
            for (int64_t c = lo; c <= hi; ++c) {
              R v = Sr[c] * scale;
              if (sh.alibi) v -= R(slopes[size_t(i)]) * R(t - (c0 + c));
              if (cap > 0) v = cap * std::tanh(v / cap);
              Sr[c] = v;
              mx = std::max(mx, v);
            }
          }
          std::fill(Sr, Sr + lo, R(0));
          std::fill(Sr + hi + 1, Sr + W, R(0));
          const R sum = exp_in_place(Sr + lo, hi - lo + 1, mx, sh.plus_one ? std::exp(-mx) : R(0));
          const R inv = R(1) / sum;
          scale_row(Sr + lo, hi - lo + 1, inv);
          if (lse) lse[(seq.row0 + t) * h + i] = mx + std::log(sum);
        }
        mm_nn(out + at, S, V, rows, W, k, W, gk, hk, false);
      }
    }
  });
}

// The one non-empty segment when it holds exactly the query rows, else null.
template <class R>
const KvSegmentT<R>* self_segment(int64_t n, int64_t q_pos0, std::span<const KvSegmentT<R>> segments) {
  const KvSegmentT<R>* only = nullptr;
  for (const auto& s : segments) {
    if (s.pos_end <= s.pos_begin) continue;
    if (only) return nullptr;
    only = &s;
  }
  if (!only || only->ring > 0 || only->type != DType::f32 || only->pos_begin != q_pos0 || only->pos_end != q_pos0 + n)
    return nullptr;
  return only;
}

}  // namespace

std::vector<float> alibi_slopes(int n_heads) {
  // Ref: transformers build_alibi_tensor (BLOOM); Press et al. for powers of two.
  int pow2 = 1;
  while (pow2 * 2 <= n_heads) pow2 *= 2;
  std::vector<float> slopes;
  const double base = std::pow(2.0, -8.0 / pow2);
  for (int i = 1; i <= pow2; ++i) slopes.push_back(float(std::pow(base, i)));
  const double extra = std::pow(2.0, -4.0 / pow2);  // the slopes of 2 * pow2 heads
  for (int i = 1; int(slopes.size()) < n_heads; i += 2) slopes.push_back(float(std::pow(extra, i)));
  return slopes;
}

template <class R>
void attention_forward(R* out, const R* q, int64_t n, int64_t q_pos0, std::span<const KvSegmentT<R>> segments,
                       const AttentionShape& shape, ThreadPool& pool, R* lse) {
  check_shape(shape);
  if (n > 1)
    if (const auto* self = self_segment(n, q_pos0, segments))
      if (self->head_stride == shape.head_dim && self->pos_stride == int64_t(shape.n_kv_heads) * shape.head_dim) {
        const AttnSeq seq{0, n, q_pos0};
        return forward_self(out, q, self->k, self->v, std::span(&seq, 1), shape, pool, lse);
      }
  if constexpr (std::is_same_v<R, float>)
    attention_forward_f32(out, q, n, q_pos0, segments, shape, pool, lse);
  else
    naive_rows(out, q, n, q_pos0, segments, shape, lse, &pool);
}

template <class R>
void attention_forward_self(R* out, const R* q, const R* k, const R* v, std::span<const AttnSeq> seqs,
                            const AttentionShape& shape, ThreadPool& pool, R* lse) {
  check_shape(shape);
  forward_self(out, q, k, v, seqs, shape, pool, lse);
}

template <class R>
void attention_backward(const AttentionBackward<R>& a, std::span<const AttnSeq> seqs, const AttentionShape& shape,
                        ThreadPool& pool) {
  check_shape(shape);
  const int g = shape.n_kv_heads;
  std::vector<BackwardScratch<R>> scratch(pool.size());
  pool.parallel_for(seqs.size() * size_t(g), 1, [&](size_t i0, size_t i1, size_t worker) {
    for (size_t i = i0; i < i1; ++i) backward_pair(a, seqs[i / size_t(g)], int(i % size_t(g)), shape, scratch[worker]);
  });
}

template void attention_forward(float*, const float*, int64_t, int64_t, std::span<const KvSegmentT<float>>,
                                const AttentionShape&, ThreadPool&, float*);
template void attention_forward(double*, const double*, int64_t, int64_t, std::span<const KvSegmentT<double>>,
                                const AttentionShape&, ThreadPool&, double*);
template void attention_forward_self(float*, const float*, const float*, const float*, std::span<const AttnSeq>,
                                     const AttentionShape&, ThreadPool&, float*);
template void attention_forward_self(double*, const double*, const double*, const double*, std::span<const AttnSeq>,
                                     const AttentionShape&, ThreadPool&, double*);
template void attention_backward(const AttentionBackward<float>&, std::span<const AttnSeq>, const AttentionShape&,
                                 ThreadPool&);
template void attention_backward(const AttentionBackward<double>&, std::span<const AttnSeq>,
                                 const AttentionShape&, ThreadPool&);

}  // namespace tpp
