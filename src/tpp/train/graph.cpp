#include "tpp/train/graph.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <type_traits>

#include <fmt/format.h>

#include "tpp/core/error.h"
#include "tpp/kernels/api.h"
#include "tpp/ops/linear.h"

namespace tpp::train {
namespace {

template <class R>
constexpr bool kFloat = std::is_same_v<R, float>;

// ---------------------------------------------------------------------------
// Matrix helpers. float runs the SIMD kernels; double runs plain loops (it is
// only used on tiny shapes by the gradient checks).

// y[n, m] (+)= sum_k x(n, k) * w[k*ldw + m], single-threaded; x(n, k) is
// x[n*ldx + k] ("NN"), or x[k*ldx + n] when XT (x read transposed, "TN").
template <bool XT, class R>
void mm(R* y, const R* x, const R* w, int64_t N, int64_t K, int64_t M, int64_t ldx, int64_t ldw, int64_t ldy,
        bool accumulate) {
  if (N <= 0 || M <= 0) return;
  if constexpr (kFloat<R>) {
    const auto& k = kernels::kernels();
    (XT ? k.gemm_tn_f32 : k.gemm_nn_f32)(y, x, w, N, K, 0, M, ldx, ldw, ldy, accumulate);
  } else {
    for (int64_t n = 0; n < N; ++n) {
      R* yr = y + n * ldy;
      if (!accumulate) std::fill(yr, yr + M, R(0));
      for (int64_t k = 0; k < K; ++k) {
        const R xv = XT ? x[k * ldx + n] : x[n * ldx + k];
        const R* wr = w + k * ldw;
        for (int64_t m = 0; m < M; ++m) yr[m] += xv * wr[m];
      }
    }
  }
}
template <class R>
void mm_nn(R* y, const R* x, const R* w, int64_t N, int64_t K, int64_t M, int64_t ldx, int64_t ldw, int64_t ldy,
           bool accumulate) {
  mm<false>(y, x, w, N, K, M, ldx, ldw, ldy, accumulate);
}
template <class R>
void mm_tn(R* y, const R* x, const R* w, int64_t N, int64_t K, int64_t M, int64_t ldx, int64_t ldw, int64_t ldy,
           bool accumulate) {
  mm<true>(y, x, w, N, K, M, ldx, ldw, ldy, accumulate);
}

// dst[c*ldd + r] = src[r*lds + c] for r < rows, c < cols.
template <class R>
void transpose(R* dst, const R* src, int64_t rows, int64_t cols, int64_t lds, int64_t ldd) {
  constexpr int64_t kB = 16;
  for (int64_t r0 = 0; r0 < rows; r0 += kB)
    for (int64_t c0 = 0; c0 < cols; c0 += kB) {
      const int64_t r1 = std::min(rows, r0 + kB), c1 = std::min(cols, c0 + kB);
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t c = c0; c < c1; ++c) dst[c * ldd + r] = src[r * lds + c];
    }
}

// y[N, M] = x[N, K] W[M, K]^T + b
template <class R>
void linear_fwd(R* y, const R* x, int64_t N, const R* W, int64_t M, int64_t K, const R* b, ThreadPool& pool) {
  if constexpr (kFloat<R>) {
    const MatrixRef ref{DType::f32, W, M, K};
    linear_forward(y, x, N, ref, b ? std::span<const float>(b, size_t(M)) : std::span<const float>(), pool);
  } else {
    pool.parallel_for(size_t(N), 1, [&](size_t n0, size_t n1, size_t) {
      for (size_t n = n0; n < n1; ++n)
        for (int64_t m = 0; m < M; ++m) {
          R acc = b ? b[m] : R(0);
          for (int64_t k = 0; k < K; ++k) acc += x[int64_t(n) * K + k] * W[m * K + k];
          y[int64_t(n) * M + m] = acc;
        }
    });
  }
}

// Backward of y = x W^T + b:  dx (+)= dy W,  dW += dy^T x,  db += colsum(dy).
// dx or db may be null.
template <class R>
void linear_bwd(R* dx, bool dx_accumulate, R* dW, R* db, const R* dy, const R* x, const R* W, int64_t N,
                int64_t M, int64_t K, ThreadPool& pool) {
  if (dx)
    pool.parallel_for(size_t(N), 8, [&](size_t n0, size_t n1, size_t) {
      mm_nn(dx + int64_t(n0) * K, dy + int64_t(n0) * M, W, int64_t(n1 - n0), M, K, M, K, K, dx_accumulate);
    });
  pool.parallel_for(size_t(M), 16, [&](size_t m0, size_t m1, size_t) {
    mm_tn(dW + int64_t(m0) * K, dy + m0, x, int64_t(m1 - m0), N, K, M, K, K, true);
    if (db)
      for (int64_t n = 0; n < N; ++n) {
        const R* row = dy + n * M;
        for (size_t m = m0; m < m1; ++m) db[m] += row[m];
      }
  });
}

// ---------------------------------------------------------------------------
// Norms over the last dimension, rows in parallel; weight/bias gradients are
// summed per worker and combined in worker order (repeatable for a fixed
// thread count).

struct NormSpec {
  NormKind kind = NormKind::rmsnorm;
  bool one_plus = false;
  double eps = 1e-5;
};

template <class R>
void norm_fwd(R* y, const R* x, int64_t N, int64_t d, const R* w, const R* b, const NormSpec& s, ThreadPool& pool) {
  pool.parallel_for(size_t(N), 16, [&](size_t n0, size_t n1, size_t) {
    for (size_t n = n0; n < n1; ++n) {
      const R* xr = x + int64_t(n) * d;
      R* yr = y + int64_t(n) * d;
      if (s.kind == NormKind::rmsnorm) {
        R ss = 0;
        for (int64_t i = 0; i < d; ++i) ss += xr[i] * xr[i];
        const R r = R(1) / std::sqrt(ss / R(d) + R(s.eps));
        for (int64_t i = 0; i < d; ++i) yr[i] = xr[i] * r * (s.one_plus ? R(1) + w[i] : w[i]);
      } else {
        R mean = 0, var = 0;
        for (int64_t i = 0; i < d; ++i) mean += xr[i];
        mean /= R(d);
        for (int64_t i = 0; i < d; ++i) var += (xr[i] - mean) * (xr[i] - mean);
        const R r = R(1) / std::sqrt(var / R(d) + R(s.eps));
        for (int64_t i = 0; i < d; ++i) yr[i] = (xr[i] - mean) * r * w[i] + (b ? b[i] : R(0));
      }
    }
  });
}

// dx (+)= d norm / dx . dy;  dw += ..., db += ...  (x is the norm's input)
template <class R>
void norm_bwd(R* dx, bool accumulate, const R* dy, const R* x, int64_t N, int64_t d, const R* w, R* dw, R* db,
              const NormSpec& s, std::vector<R>& partial, ThreadPool& pool) {
  const size_t workers = pool.size();
  partial.assign(workers * size_t(2 * d), R(0));
  pool.parallel_for(size_t(N), 16, [&](size_t n0, size_t n1, size_t worker) {
    R* pw = partial.data() + worker * size_t(2 * d);
    R* pb = pw + d;
    for (size_t n = n0; n < n1; ++n) {
      const R* xr = x + int64_t(n) * d;
      const R* gr = dy + int64_t(n) * d;
      R* out = dx + int64_t(n) * d;
      if (s.kind == NormKind::rmsnorm) {
        R ss = 0;
        for (int64_t i = 0; i < d; ++i) ss += xr[i] * xr[i];
        const R r = R(1) / std::sqrt(ss / R(d) + R(s.eps));
        R gx = 0;  // sum_i (dy_i w'_i) x_i
        for (int64_t i = 0; i < d; ++i) {
          const R wi = s.one_plus ? R(1) + w[i] : w[i];
          gx += gr[i] * wi * xr[i];
          pw[i] += gr[i] * xr[i] * r;
        }
        const R c = r * r * r * gx / R(d);
        for (int64_t i = 0; i < d; ++i) {
          const R wi = s.one_plus ? R(1) + w[i] : w[i];
          const R v = r * gr[i] * wi - xr[i] * c;
          out[i] = accumulate ? out[i] + v : v;
        }
      } else {
        R mean = 0, var = 0;
        for (int64_t i = 0; i < d; ++i) mean += xr[i];
        mean /= R(d);
        for (int64_t i = 0; i < d; ++i) var += (xr[i] - mean) * (xr[i] - mean);
        const R r = R(1) / std::sqrt(var / R(d) + R(s.eps));
        R mg = 0, mgx = 0;  // means of g = dy*w and of g*xhat
        for (int64_t i = 0; i < d; ++i) {
          const R xhat = (xr[i] - mean) * r;
          const R g = gr[i] * w[i];
          mg += g;
          mgx += g * xhat;
          pw[i] += gr[i] * xhat;
          pb[i] += gr[i];
        }
        mg /= R(d);
        mgx /= R(d);
        for (int64_t i = 0; i < d; ++i) {
          const R xhat = (xr[i] - mean) * r;
          const R v = r * (gr[i] * w[i] - mg - xhat * mgx);
          out[i] = accumulate ? out[i] + v : v;
        }
      }
    }
  });
  for (size_t wk = 0; wk < workers; ++wk) {
    const R* pw = partial.data() + wk * size_t(2 * d);
    for (int64_t i = 0; i < d; ++i) dw[i] += pw[i];
    if (db)
      for (int64_t i = 0; i < d; ++i) db[i] += pw[d + i];
  }
}

// ---------------------------------------------------------------------------
// Activations and their derivatives.

template <class R>
R sigmoid(R x) {
  return R(1) / (R(1) + std::exp(-x));
}

// act(x) and act'(x) for the FFN kinds (gated ones by their gate activation).
template <class R>
void act_and_grad(R x, Ffn kind, GeluApprox approx, R* a, R* da) {
  switch (kind) {
    case Ffn::relu:
    case Ffn::reglu:
      *a = x > 0 ? x : R(0);
      *da = x > 0 ? R(1) : R(0);
      return;
    case Ffn::gelu:
    case Ffn::geglu:
      if (approx == GeluApprox::tanh) {
        const R c = R(0.7978845608028654);  // sqrt(2/pi)
        const R u = c * (x + R(0.044715) * x * x * x);
        const R t = std::tanh(u);
        *a = R(0.5) * x * (R(1) + t);
        *da = R(0.5) * (R(1) + t) + R(0.5) * x * (R(1) - t * t) * c * (R(1) + R(3 * 0.044715) * x * x);
      } else {
        *a = R(0.5) * x * (R(1) + std::erf(x * R(M_SQRT1_2)));
        *da = R(0.5) * (R(1) + std::erf(x * R(M_SQRT1_2))) + x * std::exp(R(-0.5) * x * x) * R(0.3989422804014327);
      }
      return;
    case Ffn::glu: {
      const R sg = sigmoid(x);
      *a = sg;
      *da = sg * (R(1) - sg);
      return;
    }
    case Ffn::bilinear:
      *a = x;
      *da = R(1);
      return;
    case Ffn::swiglu: {
      const R sg = sigmoid(x);
      *a = x * sg;
      *da = sg * (R(1) + x * (R(1) - sg));
      return;
    }
  }
}

// ---------------------------------------------------------------------------
// RoPE on [B*T, H, k] rows (row n at position n % T), forward or transposed.

template <class R>
void rope_apply(R* x, int64_t N, int64_t T, int H, const RopeParams& rope, const RopeTable& table, bool inverse,
                ThreadPool& pool) {
  const int half = rope.rotary_dim / 2, k = rope.head_dim;
  if (half == 0) return;
  const R sign = inverse ? R(-1) : R(1);
  pool.parallel_for(size_t(N), 16, [&](size_t n0, size_t n1, size_t) {
    for (size_t n = n0; n < n1; ++n) {
      const int64_t t = int64_t(n) % T;
      const float* cs = table.cos.data() + t * half;
      const float* sn = table.sin.data() + t * half;
      for (int hd = 0; hd < H; ++hd) {
        R* v = x + (int64_t(n) * H + hd) * k;
        for (int i = 0; i < half; ++i) {
          const int ia = rope.layout == RopeLayout::half ? i : 2 * i;
          const int ib = rope.layout == RopeLayout::half ? i + half : 2 * i + 1;
          const R a = v[ia], b = v[ib], c = R(cs[i]), s = sign * R(sn[i]);
          v[ia] = a * c - b * s;
          v[ib] = b * c + a * s;
        }
      }
    }
  });
}

// ---------------------------------------------------------------------------
// Attention of one (sequence, KV head) pair: its G query heads over T keys.
// Rows are processed in blocks so the causal upper triangle (and keys before
// a window) is never computed.

constexpr int64_t kRowBlock = 64;

struct AttnSpec {
  int H = 0, G = 0, k = 0;  // query heads, KV heads, head dim
  double scale = 1, softcap = 0;
  bool plus_one = false;
  int64_t window = 0;
};

template <class R>
struct AttnScratch {
  std::vector<R> S, P, dS, KT, VT;  // [T, T] x 3, [k, T] x 2
  void ensure(int64_t T, int k) {
    const size_t tt = size_t(T * T);
    for (auto* v : {&S, &P, &dS})
      if (v->size() < tt) v->resize(tt);
    if (KT.size() < size_t(k * T)) KT.resize(size_t(k * T));
    if (VT.size() < size_t(k * T)) VT.resize(size_t(k * T));
  }
};

// First key row t may see.
inline int64_t key_lo(int64_t t, int64_t window) { return window > 0 ? std::max<int64_t>(0, t - window + 1) : 0; }

// The blocked products read row t of P / dS over [lo - kRowBlock, end of
// t's row block): entries there outside [lo, t] must be zero.
inline int64_t zero_lo(int64_t lo) { return std::max<int64_t>(0, lo - kRowBlock); }
inline int64_t zero_hi(int64_t t, int64_t T) { return std::min(T, (t / kRowBlock + 1) * kRowBlock); }

// Scores S (after scale and soft-cap) and probabilities P of one head, rows
// [0, T); P is zero outside each row's visible keys.
template <class R>
void head_probs(AttnScratch<R>& s, const R* Q, int64_t ldq, const R* KT, int64_t T, const AttnSpec& a) {
  for (int64_t t0 = 0; t0 < T; t0 += kRowBlock) {
    const int64_t t1 = std::min(T, t0 + kRowBlock), c0 = key_lo(t0, a.window);
    mm_nn(s.S.data() + t0 * T + c0, Q + t0 * ldq, KT + c0, t1 - t0, a.k, t1 - c0, ldq, T, T, false);
  }
  for (int64_t t = 0; t < T; ++t) {
    R* S = s.S.data() + t * T;
    R* P = s.P.data() + t * T;
    const int64_t lo = key_lo(t, a.window);
    R mx = a.plus_one ? R(0) : -std::numeric_limits<R>::infinity();
    for (int64_t p = lo; p <= t; ++p) {
      R v = S[p] * R(a.scale);
      if (a.softcap > 0) v = R(a.softcap) * std::tanh(v / R(a.softcap));
      S[p] = v;
      mx = std::max(mx, v);
    }
    R sum = a.plus_one ? std::exp(-mx) : R(0);
    std::fill(P + zero_lo(lo), P + lo, R(0));
    for (int64_t p = lo; p <= t; ++p) sum += (P[p] = std::exp(S[p] - mx));
    const R inv = R(1) / sum;
    for (int64_t p = lo; p <= t; ++p) P[p] *= inv;
    std::fill(P + t + 1, P + zero_hi(t, T), R(0));
  }
}

template <class R>
void attn_fwd_pair(R* att, const R* q, const R* k, const R* v, int64_t b, int j, int64_t T, const AttnSpec& a,
                   AttnScratch<R>& s) {
  const int64_t hk = int64_t(a.H) * a.k, gk = int64_t(a.G) * a.k;
  const R* K = k + b * T * gk + j * a.k;
  const R* V = v + b * T * gk + j * a.k;
  transpose(s.KT.data(), K, T, a.k, gk, T);
  const int group = a.H / a.G;
  for (int i = j * group; i < (j + 1) * group; ++i) {
    const R* Q = q + b * T * hk + i * a.k;
    head_probs(s, Q, hk, s.KT.data(), T, a);
    R* O = att + b * T * hk + i * a.k;
    for (int64_t t0 = 0; t0 < T; t0 += kRowBlock) {
      const int64_t t1 = std::min(T, t0 + kRowBlock), c0 = key_lo(t0, a.window);
      mm_nn(O + t0 * hk, s.P.data() + t0 * T + c0, V + c0 * gk, t1 - t0, t1 - c0, a.k, T, gk, hk, false);
    }
  }
}

// dq = (for each head) dS K;  dk += dS^T Q;  dv += P^T dO.
template <class R>
void attn_bwd_pair(R* dq, R* dk, R* dv, const R* datt, const R* q, const R* k, const R* v, int64_t b, int j,
                   int64_t T, const AttnSpec& a, AttnScratch<R>& s) {
  const int64_t hk = int64_t(a.H) * a.k, gk = int64_t(a.G) * a.k;
  const R* K = k + b * T * gk + j * a.k;
  const R* V = v + b * T * gk + j * a.k;
  R* dK = dk + b * T * gk + j * a.k;
  R* dV = dv + b * T * gk + j * a.k;
  transpose(s.KT.data(), K, T, a.k, gk, T);
  transpose(s.VT.data(), V, T, a.k, gk, T);
  const int group = a.H / a.G;
  for (int i = j * group; i < (j + 1) * group; ++i) {
    const R* Q = q + b * T * hk + i * a.k;
    const R* dO = datt + b * T * hk + i * a.k;
    head_probs(s, Q, hk, s.KT.data(), T, a);
    // dP = dO V^T over the visible blocks.
    for (int64_t t0 = 0; t0 < T; t0 += kRowBlock) {
      const int64_t t1 = std::min(T, t0 + kRowBlock), c0 = key_lo(t0, a.window);
      mm_nn(s.dS.data() + t0 * T + c0, dO + t0 * hk, s.VT.data() + c0, t1 - t0, a.k, t1 - c0, hk, T, T, false);
    }
    // dS = P (dP - sum_p P dP), through the soft-cap, times the scale.
    for (int64_t t = 0; t < T; ++t) {
      R* dS = s.dS.data() + t * T;
      const R* P = s.P.data() + t * T;
      const R* S = s.S.data() + t * T;
      const int64_t lo = key_lo(t, a.window);
      R D = 0;
      for (int64_t p = lo; p <= t; ++p) D += P[p] * dS[p];
      std::fill(dS + zero_lo(lo), dS + lo, R(0));
      for (int64_t p = lo; p <= t; ++p) {
        R g = P[p] * (dS[p] - D);
        if (a.softcap > 0) {
          const R th = S[p] / R(a.softcap);
          g *= R(1) - th * th;
        }
        dS[p] = g * R(a.scale);
      }
      std::fill(dS + t + 1, dS + zero_hi(t, T), R(0));
    }
    R* dQ = dq + b * T * hk + i * a.k;
    for (int64_t t0 = 0; t0 < T; t0 += kRowBlock) {
      const int64_t t1 = std::min(T, t0 + kRowBlock), c0 = key_lo(t0, a.window);
      mm_nn(dQ + t0 * hk, s.dS.data() + t0 * T + c0, K + c0 * gk, t1 - t0, t1 - c0, a.k, T, gk, hk, false);
    }
    // dK += dS^T Q and dV += P^T dO: key row p gets queries t >= p.
    for (int64_t p0 = 0; p0 < T; p0 += kRowBlock) {
      const int64_t p1 = std::min(T, p0 + kRowBlock);
      const int64_t t_end = a.window > 0 ? std::min(T, p1 + a.window - 1) : T;
      mm_tn(dK + p0 * gk, s.dS.data() + p0 * T + p0, Q + p0 * hk, p1 - p0, t_end - p0, a.k, T, hk, gk, true);
      mm_tn(dV + p0 * gk, s.P.data() + p0 * T + p0, dO + p0 * hk, p1 - p0, t_end - p0, a.k, T, hk, gk, true);
    }
  }
}

int orig_max(const ModelConfig& c) {
  return c.rope_scaling.original_max_position_embeddings > 0 ? c.rope_scaling.original_max_position_embeddings
                                                             : c.max_seq_len;
}

}  // namespace

// ---------------------------------------------------------------------------

template <class R>
struct Graph<R>::Impl {
  const ModelConfig& c;
  const ParamLayout& L;
  NormSpec ns;
  int64_t B = 0, T = 0, N = 0;
  int d = 0, h = 0, k = 0, F = 0, V = 0;
  int64_t hk = 0;
  std::vector<int32_t> tokens, targets;
  RopeParams rope_global, rope_local;
  RopeTable table_global, table_local;

  // Per-layer saved activations (see forward_layer for which are used).
  struct Saved {
    std::vector<R> x0, a1, qr, kr, q, k, v, att, o_raw, x1, a2, gate, up, hact, f_raw, y;
  };
  std::vector<Saved> saved;
  std::vector<R> x, x_final, hN;  // residual stream; input and output of the final norm
  std::vector<R> ao, fo, din;     // a layer's attention and FFN outputs; their input gradient

  // Backward buffers.
  std::vector<R> dx, dA, dB, dq, dkv_k, dkv_v, datt, dgate, dup, partial;
  std::vector<AttnScratch<R>> attn_scratch;

  Impl(const ModelConfig& config, const ParamLayout& layout) : c(config), L(layout) {
    ns = {c.norm, c.norm_one_plus, c.norm_eps};
    d = c.d_model;
    h = c.n_heads;
    k = c.head_dim_resolved();
    F = c.ffn_width();
    V = c.vocab_size;
    hk = int64_t(h) * k;
    saved.resize(size_t(c.n_layers));
  }

  int64_t gk(int l) const { return int64_t(c.kv_heads(l)) * k; }
  static const R* P(const R* params, int64_t off) { return off >= 0 ? params + off : nullptr; }
  static R* P(R* params, int64_t off) { return off >= 0 ? params + off : nullptr; }

  void prepare(const Batch& batch) {
    TPP_CHECK(batch.B > 0 && batch.T > 0, "train: empty batch ({} x {})", batch.B, batch.T);
    if (c.pos_encoding == PosEncoding::learned)
      TPP_CHECK(batch.T <= c.max_seq_len, "train: sequence length {} exceeds max_seq_len {} (learned positions)",
                batch.T, c.max_seq_len);
    const bool reshape = batch.T != T;
    B = batch.B;
    T = batch.T;
    N = B * T;
    tokens.assign(batch.tokens, batch.tokens + N);
    targets.assign(batch.targets, batch.targets + N);
    for (int64_t i = 0; i < N; ++i) {
      TPP_CHECK(tokens[size_t(i)] >= 0 && tokens[size_t(i)] < V, "train: token id {} at {} outside [0, {})",
                tokens[size_t(i)], i, V);
      TPP_CHECK(targets[size_t(i)] >= 0 && targets[size_t(i)] < V, "train: target id {} at {} outside [0, {})",
                targets[size_t(i)], i, V);
    }
    if (reshape && c.rotary_dim_resolved() > 0) {
      // Training sequences start at 0; dynamic NTK sees the sequence length.
      const int r = c.rotary_dim_resolved();
      rope_global = make_rope(k, r, c.rope_layout, c.rope_theta, c.rope_scaling, orig_max(c), int(T));
      rope_local = c.rope_local_theta > 0
                       ? make_rope(k, r, c.rope_layout, c.rope_local_theta, RopeScaling{}, orig_max(c), int(T))
                       : rope_global;
      rope_table(table_global, rope_global, 0, T);
      rope_table(table_local, rope_local, 0, T);
    }
  }

  void rope(R* data, int l, int heads, bool inverse, ThreadPool& pool) {
    if (c.rotary_dim_resolved() == 0 || c.pos_encoding != PosEncoding::rope) return;
    const bool local = c.is_local(l) && c.rope_local_theta > 0;
    rope_apply(data, N, T, heads, local ? rope_local : rope_global, local ? table_local : table_global, inverse,
               pool);
  }

  AttnSpec attn_spec(int l) const {
    AttnSpec a;
    a.H = h;
    a.G = c.kv_heads(c.kv_source(l));
    a.k = k;
    a.scale = c.attn_scale_resolved();
    a.softcap = c.attn_softcap;
    a.plus_one = c.softmax == Softmax::plus_one;
    a.window = c.window(l);
    return a;
  }

  void norm(R* y, const R* xin, const R* params, int64_t w, int64_t b, ThreadPool& pool) {
    norm_fwd(y, xin, N, d, P(params, w), P(params, b), ns, pool);
  }
  static void resize(std::vector<R>& v, int64_t n) {
    if (v.size() != size_t(n)) v.resize(size_t(n));
  }

  // --- forward -----------------------------------------------------------

  void embed(const R* params, ThreadPool& pool) {
    resize(x, N * d);
    const R* E = params + L.tok_embd;
    const R scale = R(c.embed_scale);
    pool.parallel_for(size_t(N), 16, [&](size_t n0, size_t n1, size_t) {
      for (size_t n = n0; n < n1; ++n) {
        R* xr = x.data() + int64_t(n) * d;
        const R* er = E + int64_t(tokens[n]) * d;
        const int64_t pos = int64_t(n) % T;
        for (int i = 0; i < d; ++i) xr[i] = er[i] * scale;
        if (c.pos_encoding == PosEncoding::learned) {
          const R* pr = params + L.pos_embd + pos * d;
          for (int i = 0; i < d; ++i) xr[i] += pr[i];
        } else if (c.pos_encoding == PosEncoding::sinusoidal) {
          for (int i = 0; 2 * i < d; ++i) {
            const double angle = double(pos) / std::pow(10000.0, double(2 * i) / double(d));
            xr[2 * i] += R(float(std::sin(angle)));
            if (2 * i + 1 < d) xr[2 * i + 1] += R(float(std::cos(angle)));
          }
        }
      }
    });
  }

  void attention_fwd(int l, const R* in, const R* params, R* out, ThreadPool& pool) {
    Saved& s = saved[size_t(l)];
    const LayerOffsets& o = L.layers[size_t(l)];
    const int src = c.kv_source(l);
    const int g = c.kv_heads(src);
    resize(s.q, N * hk);
    linear_fwd(s.q.data(), in, N, params + o.q, hk, d, P(params, o.q_b), pool);
    if (c.qk_norm) {
      s.qr = s.q;
      norm_fwd(s.q.data(), s.qr.data(), N * h, k, params + o.q_norm, (const R*)nullptr,
               NormSpec{NormKind::rmsnorm, c.norm_one_plus, c.norm_eps}, pool);
    }
    rope(s.q.data(), l, h, false, pool);
    if (src == l) {
      resize(s.k, N * gk(l));
      resize(s.v, N * gk(l));
      linear_fwd(s.k.data(), in, N, params + o.k, gk(l), d, P(params, o.k_b), pool);
      linear_fwd(s.v.data(), in, N, params + o.v, gk(l), d, P(params, o.v_b), pool);
      if (c.qk_norm) {
        s.kr = s.k;
        norm_fwd(s.k.data(), s.kr.data(), N * g, k, params + o.k_norm, (const R*)nullptr,
                 NormSpec{NormKind::rmsnorm, c.norm_one_plus, c.norm_eps}, pool);
      }
      rope(s.k.data(), l, g, false, pool);
    }
    const Saved& kv = saved[size_t(src)];
    resize(s.att, N * hk);
    const AttnSpec a = attn_spec(l);
    attn_scratch.resize(pool.size());
    pool.parallel_for(size_t(B * g), 1, [&](size_t i0, size_t i1, size_t worker) {
      AttnScratch<R>& scr = attn_scratch[worker];
      scr.ensure(T, k);
      for (size_t i = i0; i < i1; ++i)
        attn_fwd_pair(s.att.data(), s.q.data(), kv.k.data(), kv.v.data(), int64_t(i) / g, int(int64_t(i) % g), T, a,
                      scr);
    });
    linear_fwd(out, s.att.data(), N, params + o.o, d, hk, P(params, o.o_b), pool);
  }

  void ffn_fwd(int l, const R* in, const R* params, R* out, ThreadPool& pool) {
    Saved& s = saved[size_t(l)];
    const LayerOffsets& o = L.layers[size_t(l)];
    const bool gated = ffn_is_gated(c.ffn);
    resize(s.up, N * F);
    resize(s.hact, N * F);
    linear_fwd(s.up.data(), in, N, params + o.up, F, d, P(params, o.up_b), pool);
    if (gated) {
      resize(s.gate, N * F);
      linear_fwd(s.gate.data(), in, N, params + o.gate, F, d, P(params, o.gate_b), pool);
    }
    pool.parallel_for(size_t(N), 16, [&](size_t n0, size_t n1, size_t) {
      for (int64_t i = int64_t(n0) * F; i < int64_t(n1) * F; ++i) {
        R a = 0, da = 0;
        if (gated) {
          act_and_grad(s.gate[size_t(i)], c.ffn, c.gelu_approx, &a, &da);
          s.hact[size_t(i)] = a * s.up[size_t(i)];
        } else {
          act_and_grad(s.up[size_t(i)], c.ffn, c.gelu_approx, &a, &da);
          s.hact[size_t(i)] = a;
        }
      }
    });
    linear_fwd(out, s.hact.data(), N, params + o.down, d, F, P(params, o.down_b), pool);
  }

  static void add(R* y, const R* a, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] += a[i];
  }

  void layer_fwd(int l, const R* params, ThreadPool& pool) {
    Saved& s = saved[size_t(l)];
    const LayerOffsets& o = L.layers[size_t(l)];
    const bool post = c.norm_placement == NormPlacement::post;
    const bool sandwich = c.norm_placement == NormPlacement::sandwich;
    const int64_t nd = N * d;
    s.x0 = x;
    const R* in = s.x0.data();
    if (!post) {
      resize(s.a1, nd);
      norm(s.a1.data(), s.x0.data(), params, o.attn_norm_w, o.attn_norm_b, pool);
      in = s.a1.data();
    }
    resize(ao, nd);
    resize(fo, nd);
    attention_fwd(l, in, params, ao.data(), pool);
    if (sandwich) {
      s.o_raw = ao;
      norm(ao.data(), s.o_raw.data(), params, o.attn_post_norm_w, o.attn_post_norm_b, pool);
    }
    if (c.parallel_block) {
      ffn_fwd(l, in, params, fo.data(), pool);
      if (sandwich) {
        s.f_raw = fo;
        norm(fo.data(), s.f_raw.data(), params, o.ffn_post_norm_w, o.ffn_post_norm_b, pool);
      }
      add(x.data(), ao.data(), nd);
      add(x.data(), fo.data(), nd);
      if (post) {
        s.y = x;
        norm(x.data(), s.y.data(), params, o.attn_norm_w, o.attn_norm_b, pool);
      }
      return;
    }
    add(x.data(), ao.data(), nd);  // x = x1
    s.x1 = x;
    resize(s.a2, nd);
    if (post) {
      norm(s.a2.data(), s.x1.data(), params, o.attn_norm_w, o.attn_norm_b, pool);
      x = s.a2;  // the residual continues from the normalised x1
    } else {
      norm(s.a2.data(), s.x1.data(), params, o.ffn_norm_w, o.ffn_norm_b, pool);
    }
    ffn_fwd(l, s.a2.data(), params, fo.data(), pool);
    if (sandwich) {
      s.f_raw = fo;
      norm(fo.data(), s.f_raw.data(), params, o.ffn_post_norm_w, o.ffn_post_norm_b, pool);
    }
    add(x.data(), fo.data(), nd);
    if (post) {
      s.y = x;
      norm(x.data(), s.y.data(), params, o.ffn_norm_w, o.ffn_norm_b, pool);
    }
  }

  double head_fwd(const R* params, std::vector<R>& logits, ThreadPool& pool) {
    x_final = x;
    const R* hin = x_final.data();
    if (c.has_final_norm()) {
      resize(hN, N * d);
      norm(hN.data(), x_final.data(), params, L.output_norm_w, L.output_norm_b, pool);
      hin = hN.data();
    } else {
      hN = x_final;
    }
    resize(logits, N * V);
    linear_fwd(logits.data(), hin, N, params + L.output, V, d, (const R*)nullptr, pool);
    std::vector<double> part(pool.size(), 0.0);
    const R cap = R(c.final_softcap);
    pool.parallel_for(size_t(N), 4, [&](size_t n0, size_t n1, size_t worker) {
      double acc = 0;
      for (size_t n = n0; n < n1; ++n) {
        R* z = logits.data() + int64_t(n) * V;
        if (cap > 0)
          for (int i = 0; i < V; ++i) z[i] = cap * std::tanh(z[i] / cap);
        R mx = z[0];
        for (int i = 1; i < V; ++i) mx = std::max(mx, z[i]);
        double sum = 0;
        for (int i = 0; i < V; ++i) sum += std::exp(double(z[i] - mx));
        acc += std::log(sum) + double(mx) - double(z[targets[n]]);
      }
      part[worker] = acc;
    });
    double loss = 0;
    for (double p : part) loss += p;
    return loss / double(N);
  }

  // --- backward ----------------------------------------------------------

  void attention_bwd(int l, const R* in, const R* dout, const R* params, R* grads, R* din, bool din_acc,
                     ThreadPool& pool) {
    Saved& s = saved[size_t(l)];
    const LayerOffsets& o = L.layers[size_t(l)];
    const int src = c.kv_source(l);
    const int g = c.kv_heads(src);
    const Saved& kv = saved[size_t(src)];
    // The CLA group's dK/dV accumulate from its last layer down to its owner.
    const bool group_last = l + 1 == c.n_layers || c.owns_kv(l + 1);
    if (group_last) {
      dkv_k.assign(size_t(N * gk(src)), R(0));
      dkv_v.assign(size_t(N * gk(src)), R(0));
    }
    resize(datt, N * hk);
    linear_bwd(datt.data(), false, grads + o.o, P(grads, o.o_b), dout, s.att.data(), params + o.o, N, d, hk,
               pool);
    resize(dq, N * hk);
    const AttnSpec a = attn_spec(l);
    pool.parallel_for(size_t(B * g), 1, [&](size_t i0, size_t i1, size_t worker) {
      AttnScratch<R>& scr = attn_scratch[worker];
      scr.ensure(T, k);
      for (size_t i = i0; i < i1; ++i)
        attn_bwd_pair(dq.data(), dkv_k.data(), dkv_v.data(), datt.data(), s.q.data(), kv.k.data(), kv.v.data(),
                      int64_t(i) / g, int(int64_t(i) % g), T, a, scr);
    });
    rope(dq.data(), l, h, true, pool);
    const NormSpec qk{NormKind::rmsnorm, c.norm_one_plus, c.norm_eps};
    if (c.qk_norm) {
      std::vector<R> dqr(static_cast<size_t>(N * hk));
      norm_bwd(dqr.data(), false, dq.data(), s.qr.data(), N * h, k, params + o.q_norm, grads + o.q_norm,
               (R*)nullptr, qk, partial, pool);
      dq.swap(dqr);
    }
    linear_bwd(din, din_acc, grads + o.q, P(grads, o.q_b), dq.data(), in, params + o.q, N, hk, d, pool);
    if (src == l) {
      rope(dkv_k.data(), l, g, true, pool);
      if (c.qk_norm) {
        std::vector<R> dkr(static_cast<size_t>(N * gk(l)));
        norm_bwd(dkr.data(), false, dkv_k.data(), s.kr.data(), N * g, k, params + o.k_norm, grads + o.k_norm,
                 (R*)nullptr, qk, partial, pool);
        dkv_k.swap(dkr);
      }
      linear_bwd(din, true, grads + o.k, P(grads, o.k_b), dkv_k.data(), in, params + o.k, N, gk(l), d, pool);
      linear_bwd(din, true, grads + o.v, P(grads, o.v_b), dkv_v.data(), in, params + o.v, N, gk(l), d, pool);
    }
  }

  void ffn_bwd(int l, const R* in, const R* dout, const R* params, R* grads, R* din, bool din_acc, ThreadPool& pool) {
    Saved& s = saved[size_t(l)];
    const LayerOffsets& o = L.layers[size_t(l)];
    const bool gated = ffn_is_gated(c.ffn);
    resize(dup, N * F);
    linear_bwd(dup.data(), false, grads + o.down, P(grads, o.down_b), dout, s.hact.data(), params + o.down, N, d, F, pool);
    // dup holds dh; turn it into d(up) and d(gate).
    if (gated) resize(dgate, N * F);
    pool.parallel_for(size_t(N), 16, [&](size_t n0, size_t n1, size_t) {
      for (int64_t i = int64_t(n0) * F; i < int64_t(n1) * F; ++i) {
        const R dh = dup[size_t(i)];
        R a = 0, da = 0;
        if (gated) {
          act_and_grad(s.gate[size_t(i)], c.ffn, c.gelu_approx, &a, &da);
          dgate[size_t(i)] = dh * s.up[size_t(i)] * da;
          dup[size_t(i)] = dh * a;
        } else {
          act_and_grad(s.up[size_t(i)], c.ffn, c.gelu_approx, &a, &da);
          dup[size_t(i)] = dh * da;
        }
      }
    });
    linear_bwd(din, din_acc, grads + o.up, P(grads, o.up_b), dup.data(), in, params + o.up, N, F, d, pool);
    if (gated)
      linear_bwd(din, true, grads + o.gate, P(grads, o.gate_b), dgate.data(), in, params + o.gate, N, F, d,
                 pool);
  }

  // dx holds d(loss)/d(layer output) on entry and d/d(layer input) on exit.
  void layer_bwd(int l, const R* params, R* grads, ThreadPool& pool) {
    Saved& s = saved[size_t(l)];
    const LayerOffsets& o = L.layers[size_t(l)];
    const bool post = c.norm_placement == NormPlacement::post;
    const bool sandwich = c.norm_placement == NormPlacement::sandwich;
    const int64_t nd = N * d;
    resize(dA, nd);
    resize(dB, nd);
    const R* in = post ? s.x0.data() : s.a1.data();
    if (c.parallel_block) {
      if (post) {  // dx <- d/dy through the block's output norm
        norm_bwd(dA.data(), false, dx.data(), s.y.data(), N, d, params + o.attn_norm_w, grads + o.attn_norm_w,
                 P(grads, o.attn_norm_b), ns, partial, pool);
        dx.swap(dA);
      }
      // dx is now dy = d(x0 + o + f): both branches get it.
      const R* d_o = dx.data();
      const R* d_f = dx.data();
      if (sandwich) {
        norm_bwd(dA.data(), false, dx.data(), s.o_raw.data(), N, d, params + o.attn_post_norm_w,
                 grads + o.attn_post_norm_w, P(grads, o.attn_post_norm_b), ns, partial, pool);
        norm_bwd(dB.data(), false, dx.data(), s.f_raw.data(), N, d, params + o.ffn_post_norm_w,
                 grads + o.ffn_post_norm_w, P(grads, o.ffn_post_norm_b), ns, partial, pool);
        d_o = dA.data();
        d_f = dB.data();
      }
      resize(din, nd);
      attention_bwd(l, in, d_o, params, grads, din.data(), false, pool);
      ffn_bwd(l, in, d_f, params, grads, din.data(), true, pool);
      if (post)
        add(dx.data(), din.data(), nd);
      else
        norm_bwd(dx.data(), true, din.data(), s.x0.data(), N, d, params + o.attn_norm_w, grads + o.attn_norm_w,
                 P(grads, o.attn_norm_b), ns, partial, pool);
      return;
    }
    if (post) {
      norm_bwd(dA.data(), false, dx.data(), s.y.data(), N, d, params + o.ffn_norm_w, grads + o.ffn_norm_w,
               P(grads, o.ffn_norm_b), ns, partial, pool);
      dx.swap(dA);
    }
    // dx = d(base + f).
    const R* d_f = dx.data();
    if (sandwich) {
      norm_bwd(dA.data(), false, dx.data(), s.f_raw.data(), N, d, params + o.ffn_post_norm_w,
               grads + o.ffn_post_norm_w, P(grads, o.ffn_post_norm_b), ns, partial, pool);
      d_f = dA.data();
    }
    ffn_bwd(l, s.a2.data(), d_f, params, grads, dB.data(), false, pool);  // dB = d(a2) from the FFN
    if (post) {
      add(dB.data(), dx.data(), nd);  // base = a2
      norm_bwd(dx.data(), false, dB.data(), s.x1.data(), N, d, params + o.attn_norm_w, grads + o.attn_norm_w,
               P(grads, o.attn_norm_b), ns, partial, pool);
    } else {
      norm_bwd(dx.data(), true, dB.data(), s.x1.data(), N, d, params + o.ffn_norm_w, grads + o.ffn_norm_w,
               P(grads, o.ffn_norm_b), ns, partial, pool);
    }
    // dx = d(x1) = d(x0 + o).
    const R* d_o = dx.data();
    if (sandwich) {
      norm_bwd(dA.data(), false, dx.data(), s.o_raw.data(), N, d, params + o.attn_post_norm_w,
               grads + o.attn_post_norm_w, P(grads, o.attn_post_norm_b), ns, partial, pool);
      d_o = dA.data();
    }
    attention_bwd(l, in, d_o, params, grads, dB.data(), false, pool);
    if (post)
      add(dx.data(), dB.data(), nd);
    else
      norm_bwd(dx.data(), true, dB.data(), s.x0.data(), N, d, params + o.attn_norm_w, grads + o.attn_norm_w,
               P(grads, o.attn_norm_b), ns, partial, pool);
  }

  void head_bwd(const R* params, R* grads, R scale, std::vector<R>& logits, ThreadPool& pool) {
    // dz = scale/N * (softmax(z) - onehot), through the soft-cap; in place.
    const R cap = R(c.final_softcap);
    const R inv_n = scale / R(N);
    pool.parallel_for(size_t(N), 4, [&](size_t n0, size_t n1, size_t) {
      for (size_t n = n0; n < n1; ++n) {
        R* z = logits.data() + int64_t(n) * V;
        R mx = z[0];
        for (int i = 1; i < V; ++i) mx = std::max(mx, z[i]);
        R sum = 0;
        for (int i = 0; i < V; ++i) sum += std::exp(z[i] - mx);
        const R inv = R(1) / sum;
        for (int i = 0; i < V; ++i) {
          R g = std::exp(z[i] - mx) * inv;
          if (i == targets[n]) g -= R(1);
          g *= inv_n;
          if (cap > 0) {
            const R th = z[i] / cap;
            g *= R(1) - th * th;
          }
          z[i] = g;
        }
      }
    });
    resize(dx, N * d);
    linear_bwd(dx.data(), false, grads + L.output, (R*)nullptr, logits.data(), hN.data(), params + L.output, N, V, d, pool);
    if (c.has_final_norm()) {
      resize(dA, N * d);
      norm_bwd(dA.data(), false, dx.data(), x_final.data(), N, d, params + L.output_norm_w, grads + L.output_norm_w,
               P(grads, L.output_norm_b), ns, partial, pool);
      dx.swap(dA);
    }
  }

  void embed_bwd(R* grads) {
    const R scale = R(c.embed_scale);
    R* dE = grads + L.tok_embd;
    for (int64_t n = 0; n < N; ++n) {
      const R* g = dx.data() + n * d;
      R* er = dE + int64_t(tokens[size_t(n)]) * d;
      for (int i = 0; i < d; ++i) er[i] += g[i] * scale;
      if (c.pos_encoding == PosEncoding::learned) {
        R* pr = grads + L.pos_embd + (n % T) * d;
        for (int i = 0; i < d; ++i) pr[i] += g[i];
      }
    }
  }

  int64_t bytes() const {
    int64_t total = 0;
    auto add_v = [&](const std::vector<R>& v) { total += int64_t(v.capacity() * sizeof(R)); };
    for (const auto& s : saved)
      for (const auto* v : {&s.x0, &s.a1, &s.qr, &s.kr, &s.q, &s.k, &s.v, &s.att, &s.o_raw, &s.x1, &s.a2, &s.gate,
                            &s.up, &s.hact, &s.f_raw, &s.y})
        add_v(*v);
    for (const auto* v : {&x, &x_final, &hN, &ao, &fo, &din, &dx, &dA, &dB, &dq, &dkv_k, &dkv_v, &datt, &dgate, &dup, &partial})
      add_v(*v);
    for (const auto& s : attn_scratch)
      for (const auto* v : {&s.S, &s.P, &s.dS, &s.KT, &s.VT}) add_v(*v);
    return total;
  }
};

template <class R>
Graph<R>::Graph(const ModelConfig& config, const ParamLayout& layout) : impl_(new Impl(config, layout)) {}

template <class R>
Graph<R>::~Graph() {
  delete impl_;
}

template <class R>
double Graph<R>::forward(const R* params, const Batch& batch, ThreadPool& pool) {
  Impl& m = *impl_;
  m.prepare(batch);
  m.embed(params, pool);
  for (int l = 0; l < m.c.n_layers; ++l) m.layer_fwd(l, params, pool);
  return m.head_fwd(params, logits_, pool);
}

template <class R>
void Graph<R>::backward(const R* params, R* grads, R scale, ThreadPool& pool) {
  Impl& m = *impl_;
  TPP_CHECK(m.N > 0 && logits_.size() == size_t(m.N * m.V), "train: backward() without a forward()");
  m.head_bwd(params, grads, scale, logits_, pool);
  for (int l = m.c.n_layers - 1; l >= 0; --l) m.layer_bwd(l, params, grads, pool);
  m.embed_bwd(grads);
  m.N = 0;  // the logits now hold gradients: a second backward needs a new forward
}

template <class R>
std::string Graph<R>::first_non_finite() const {
  auto bad = [](const std::vector<R>& v) {
    for (R x : v)
      if (!std::isfinite(x)) return true;
    return false;
  };
  for (size_t l = 0; l < impl_->saved.size(); ++l) {
    const auto& s = impl_->saved[l];
    const std::pair<const std::vector<R>*, const char*> named[] = {
        {&s.x0, "input"},       {&s.a1, "attention norm"}, {&s.q, "q"},         {&s.k, "k"},
        {&s.v, "v"},            {&s.att, "attention"},     {&s.o_raw, "attention output"},
        {&s.x1, "residual"},    {&s.a2, "ffn norm"},       {&s.gate, "ffn gate"}, {&s.up, "ffn up"},
        {&s.hact, "ffn hidden"}, {&s.f_raw, "ffn output"}, {&s.y, "block output"}};
    for (const auto& [v, name] : named)
      if (bad(*v)) return fmt::format("blk.{} {}", l, name);
  }
  if (bad(impl_->x_final)) return "final residual";
  if (bad(logits_)) return "logits";
  return "";
}

template <class R>
int64_t Graph<R>::bytes() const {
  return impl_->bytes() + int64_t(logits_.capacity() * sizeof(R));
}

template class Graph<float>;
template class Graph<double>;

}  // namespace tpp::train
