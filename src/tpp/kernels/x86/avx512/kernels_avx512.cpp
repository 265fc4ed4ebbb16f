// AVX-512 kernels. Compiled with AVX-512 flags; includes no STL and no shared
// inline header, so nothing built here can be picked by the linker for code
// that runs on CPUs without AVX-512.
//
// Matmul in "dot form": both x rows and W rows are contiguous along K, so a
// tile of NR x-rows times MR W-rows keeps NR*MR zmm accumulators, loads
// NR + MR vectors per 16-wide step and reduces horizontally once at the end.
// 16-bit weights are widened in registers (bf16: shift left 16; f16: vcvtph2ps).
#include "tpp/kernels/x86/avx512/kernels_avx512.h"

#include <immintrin.h>

namespace tpp::kernels::avx512 {
namespace {

struct F32 {
  using T = float;
  static __m512 load(const float* p) { return _mm512_loadu_ps(p); }
  static __m512 load_tail(const float* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
};
struct Bf16 {
  using T = uint16_t;
  static __m512 widen(__m256i h) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)); }
  static __m512 load(const uint16_t* p) { return widen(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
  static __m512 load_tail(const uint16_t* p, __mmask16 m) { return widen(_mm256_maskz_loadu_epi16(m, p)); }
};
struct F16 {
  using T = uint16_t;
  static __m512 load(const uint16_t* p) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
  static __m512 load_tail(const uint16_t* p, __mmask16 m) { return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p)); }
};

// Sums of 16 vectors at once: result lane i = sum of a[i]'s 16 lanes.
inline __attribute__((always_inline)) __m512 reduce16(const __m512* a) {
  __m512 t[8];
#pragma GCC unroll 8
  for (int i = 0; i < 8; ++i)  // per 128-bit lane: [a0+a2, b0+b2, a1+a3, b1+b3]
    t[i] = _mm512_add_ps(_mm512_unpacklo_ps(a[2 * i], a[2 * i + 1]), _mm512_unpackhi_ps(a[2 * i], a[2 * i + 1]));
  __m512 u[4];
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i) {  // per 128-bit lane: the lane sums of a[4i .. 4i+3]
    const __m512d lo = _mm512_unpacklo_pd(_mm512_castps_pd(t[2 * i]), _mm512_castps_pd(t[2 * i + 1]));
    const __m512d hi = _mm512_unpackhi_pd(_mm512_castps_pd(t[2 * i]), _mm512_castps_pd(t[2 * i + 1]));
    u[i] = _mm512_add_ps(_mm512_castpd_ps(lo), _mm512_castpd_ps(hi));
  }
  // Add the four 128-bit lanes of each u, gathering u[i]'s total in lane i.
  const __m512 x0 = _mm512_add_ps(_mm512_shuffle_f32x4(u[0], u[1], 0x88), _mm512_shuffle_f32x4(u[0], u[1], 0xdd));
  const __m512 x1 = _mm512_add_ps(_mm512_shuffle_f32x4(u[2], u[3], 0x88), _mm512_shuffle_f32x4(u[2], u[3], 0xdd));
  return _mm512_add_ps(_mm512_shuffle_f32x4(x0, x1, 0x88), _mm512_shuffle_f32x4(x0, x1, 0xdd));
}

// The sum of a's 16 lanes in reduce16's order: within each 128-bit lane
// (e0 + e2) + (e1 + e3), then (L0 + L1) + (L2 + L3) across lanes. Every tile
// shape reduces this way, so an output does not depend on the tile it fell
// in (a batch of sequences equals each sequence alone, bit for bit).
inline __attribute__((always_inline)) float hsum(__m512 a) {
  const __m512 t = _mm512_add_ps(a, _mm512_permute_ps(a, 0x4e));        // e0+e2, e1+e3 (x2)
  const __m512 u = _mm512_add_ps(t, _mm512_permute_ps(t, 0xb1));        // (e0+e2)+(e1+e3)
  const __m512 w = _mm512_add_ps(u, _mm512_shuffle_f32x4(u, u, 0xb1));  // L0+L1, L2+L3
  return _mm512_cvtss_f32(_mm512_add_ps(w, _mm512_shuffle_f32x4(w, w, 0x4e)));
}

// y[i*ldy + j] = dot(x row i, w row j) for i < NR, j < MR.
template <class L, int NR, int MR>
inline __attribute__((always_inline)) void tile(float* y, const float* x, const typename L::T* w, int64_t K,
                                                int64_t ldy) {
  __m512 acc[NR][MR];
#pragma GCC unroll 8
  for (int i = 0; i < NR; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < MR; ++j) acc[i][j] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 16 <= K; k += 16) {
    __m512 wv[MR];
#pragma GCC unroll 8
    for (int j = 0; j < MR; ++j) wv[j] = L::load(w + j * K + k);
    if constexpr (NR == 1 && MR == 8) {
      // Decode streams many short rows (K of a few hundred): prefetch the
      // next tile's rows so the memory system sees them early.
#pragma GCC unroll 8
      for (int j = 0; j < MR; ++j) _mm_prefetch(reinterpret_cast<const char*>(w + (MR + j) * K + k), _MM_HINT_T0);
    }
#pragma GCC unroll 8
    for (int i = 0; i < NR; ++i) {
      const __m512 xv = _mm512_loadu_ps(x + i * K + k);
#pragma GCC unroll 8
      for (int j = 0; j < MR; ++j) acc[i][j] = _mm512_fmadd_ps(xv, wv[j], acc[i][j]);
    }
  }
  if (k < K) {
    const __mmask16 m = __mmask16((1u << (K - k)) - 1);
    __m512 wv[MR];
#pragma GCC unroll 8
    for (int j = 0; j < MR; ++j) wv[j] = L::load_tail(w + j * K + k, m);
#pragma GCC unroll 8
    for (int i = 0; i < NR; ++i) {
      const __m512 xv = _mm512_maskz_loadu_ps(m, x + i * K + k);
#pragma GCC unroll 8
      for (int j = 0; j < MR; ++j) acc[i][j] = _mm512_fmadd_ps(xv, wv[j], acc[i][j]);
    }
  }
  if constexpr (NR == 4 && MR == 4) {
    // One transpose-and-add tree for all 16 sums (45 shuffles and adds
    // instead of 16 separate horizontal reductions): lane 4i+j = acc[i][j].
    const __m512 v = reduce16(&acc[0][0]);
#pragma GCC unroll 4
    for (int i = 0; i < 4; ++i) {
      const __m128 r = i == 0 ? _mm512_castps512_ps128(v)
                     : i == 1 ? _mm512_extractf32x4_ps(v, 1)
                     : i == 2 ? _mm512_extractf32x4_ps(v, 2)
                              : _mm512_extractf32x4_ps(v, 3);
      _mm_storeu_ps(y + i * ldy, r);
    }
  } else {
#pragma GCC unroll 8
    for (int i = 0; i < NR; ++i)
#pragma GCC unroll 8
      for (int j = 0; j < MR; ++j) y[i * ldy + j] = hsum(acc[i][j]);
  }
}

// Rows of x per block: 64 rows of K <= 2048 floats stay in L2 while the
// worker's W rows stream through L1 four at a time.
constexpr int64_t kRowBlock = 64;

template <class L>
void matmul(float* y, const float* x, const typename L::T* w, int64_t N, int64_t K, int64_t m0,
            int64_t m1, int64_t ldy) {
  if (N < 4) {
    // Decode (GEMV-like): memory-bound, so 8 independent W streams per x row.
    for (int64_t n = 0; n < N; ++n) {
      int64_t m = m0;
      for (; m + 8 <= m1; m += 8) tile<L, 1, 8>(y + n * ldy + m, x + n * K, w + m * K, K, ldy);
      for (; m < m1; ++m) tile<L, 1, 1>(y + n * ldy + m, x + n * K, w + m * K, K, ldy);
    }
    return;
  }
  for (int64_t nb = 0; nb < N; nb += kRowBlock) {
    const int64_t ne = nb + kRowBlock < N ? nb + kRowBlock : N;
    int64_t m = m0;
    for (; m + 4 <= m1; m += 4) {
      int64_t n = nb;
      for (; n + 4 <= ne; n += 4) tile<L, 4, 4>(y + n * ldy + m, x + n * K, w + m * K, K, ldy);
      for (; n < ne; ++n) tile<L, 1, 4>(y + n * ldy + m, x + n * K, w + m * K, K, ldy);
    }
    for (; m < m1; ++m) {
      int64_t n = nb;
      for (; n + 4 <= ne; n += 4) tile<L, 4, 1>(y + n * ldy + m, x + n * K, w + m * K, K, ldy);
      for (; n < ne; ++n) tile<L, 1, 1>(y + n * ldy + m, x + n * K, w + m * K, K, ldy);
    }
  }
}

inline __mmask16 tail_mask(int64_t left) { return __mmask16((1u << left) - 1); }

}  // namespace

void matmul_f32(float* y, const float* x, const float* w, int64_t N, int64_t K, int64_t m_begin,
                int64_t m_end, int64_t ldy) {
  matmul<F32>(y, x, w, N, K, m_begin, m_end, ldy);
}
void matmul_bf16(float* y, const float* x, const uint16_t* w, int64_t N, int64_t K, int64_t m_begin,
                 int64_t m_end, int64_t ldy) {
  matmul<Bf16>(y, x, w, N, K, m_begin, m_end, ldy);
}
void matmul_f16(float* y, const float* x, const uint16_t* w, int64_t N, int64_t K, int64_t m_begin,
                int64_t m_end, int64_t ldy) {
  matmul<F16>(y, x, w, N, K, m_begin, m_end, ldy);
}

// NN form: a tile of NR rows of y by NV 16-wide column vectors stays in
// registers; each step over k loads NV vectors of one w row and broadcasts NR
// x values. K runs in blocks so the w panel (kNnKBlock x 32) stays in L1/L2.
namespace {

constexpr int64_t kNnKBlock = 256;
constexpr int kNnRows = 8;

template <bool XT, int NR, int NV>
inline __attribute__((always_inline)) void nn_tile(float* y, const float* x, const float* w, int64_t K,
                                                   int64_t ldx, int64_t ldw, int64_t ldy, __mmask16 last,
                                                   bool load_y) {
  __mmask16 mask[NV];
#pragma GCC unroll 2
  for (int j = 0; j < NV; ++j) mask[j] = j == NV - 1 ? last : __mmask16(0xffff);
  __m512 acc[NR][NV];
#pragma GCC unroll 8
  for (int i = 0; i < NR; ++i)
#pragma GCC unroll 2
    for (int j = 0; j < NV; ++j)
      acc[i][j] = load_y ? _mm512_maskz_loadu_ps(mask[j], y + i * ldy + 16 * j) : _mm512_setzero_ps();
  for (int64_t k = 0; k < K; ++k) {
    __m512 wv[NV];
#pragma GCC unroll 2
    for (int j = 0; j < NV; ++j) wv[j] = _mm512_maskz_loadu_ps(mask[j], w + k * ldw + 16 * j);
#pragma GCC unroll 8
    for (int i = 0; i < NR; ++i) {
      const __m512 xb = _mm512_set1_ps(XT ? x[k * ldx + i] : x[i * ldx + k]);
#pragma GCC unroll 2
      for (int j = 0; j < NV; ++j) acc[i][j] = _mm512_fmadd_ps(xb, wv[j], acc[i][j]);
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < NR; ++i)
#pragma GCC unroll 2
    for (int j = 0; j < NV; ++j) _mm512_mask_storeu_ps(y + i * ldy + 16 * j, mask[j], acc[i][j]);
}

template <bool XT, int NV>
void nn_columns(float* y, const float* x, const float* w, int64_t N, int64_t K, int64_t ldx, int64_t ldw,
                int64_t ldy, __mmask16 last, bool load_y) {
  int64_t n = 0;
  for (; n + kNnRows <= N; n += kNnRows) nn_tile<XT, kNnRows, NV>(y + n * ldy, XT ? x + n : x + n * ldx, w, K, ldx, ldw, ldy, last, load_y);
  switch (N - n) {
    case 7: nn_tile<XT, 7, NV>(y + n * ldy, XT ? x + n : x + n * ldx, w, K, ldx, ldw, ldy, last, load_y); break;
    case 6: nn_tile<XT, 6, NV>(y + n * ldy, XT ? x + n : x + n * ldx, w, K, ldx, ldw, ldy, last, load_y); break;
    case 5: nn_tile<XT, 5, NV>(y + n * ldy, XT ? x + n : x + n * ldx, w, K, ldx, ldw, ldy, last, load_y); break;
    case 4: nn_tile<XT, 4, NV>(y + n * ldy, XT ? x + n : x + n * ldx, w, K, ldx, ldw, ldy, last, load_y); break;
    case 3: nn_tile<XT, 3, NV>(y + n * ldy, XT ? x + n : x + n * ldx, w, K, ldx, ldw, ldy, last, load_y); break;
    case 2: nn_tile<XT, 2, NV>(y + n * ldy, XT ? x + n : x + n * ldx, w, K, ldx, ldw, ldy, last, load_y); break;
    case 1: nn_tile<XT, 1, NV>(y + n * ldy, XT ? x + n : x + n * ldx, w, K, ldx, ldw, ldy, last, load_y); break;
    default: break;
  }
}

template <bool XT>
void gemm(float* y, const float* x, const float* w, int64_t N, int64_t K, int64_t m_begin, int64_t m_end,
          int64_t ldx, int64_t ldw, int64_t ldy, bool accumulate) {
  if (K == 0) {
    if (!accumulate)
      for (int64_t n = 0; n < N; ++n)
        for (int64_t m = m_begin; m < m_end; ++m) y[n * ldy + m] = 0;
    return;
  }
  for (int64_t kb = 0; kb < K; kb += kNnKBlock) {
    const int64_t kn = K - kb < kNnKBlock ? K - kb : kNnKBlock;
    const bool load_y = accumulate || kb > 0;
    for (int64_t m = m_begin; m < m_end; m += 32) {
      const int64_t width = m_end - m < 32 ? m_end - m : 32;
      const int64_t rem = width > 16 ? width - 16 : width;
      const __mmask16 last = __mmask16((1u << rem) - 1);
      if (width > 16)
        nn_columns<XT, 2>(y + m, XT ? x + kb * ldx : x + kb, w + kb * ldw + m, N, kn, ldx, ldw, ldy, last, load_y);
      else
        nn_columns<XT, 1>(y + m, XT ? x + kb * ldx : x + kb, w + kb * ldw + m, N, kn, ldx, ldw, ldy, last, load_y);
    }
  }
}

}  // namespace

void gemm_nn_f32(float* y, const float* x, const float* w, int64_t N, int64_t K, int64_t m_begin,
                 int64_t m_end, int64_t ldx, int64_t ldw, int64_t ldy, bool accumulate) {
  gemm<false>(y, x, w, N, K, m_begin, m_end, ldx, ldw, ldy, accumulate);
}
void gemm_tn_f32(float* y, const float* x, const float* w, int64_t N, int64_t K, int64_t m_begin,
                 int64_t m_end, int64_t ldx, int64_t ldw, int64_t ldy, bool accumulate) {
  gemm<true>(y, x, w, N, K, m_begin, m_end, ldx, ldw, ldy, accumulate);
}

// f32 weights packed (tpp/kernels/packed.h): chunk k of a group is column k
// of its 16 rows, so one broadcast activation times one chunk advances 16
// outputs by one k, with no horizontal sum. Every output is one FMA chain in
// k order, whatever the tile: blocks of k continue the chain through y
// (stored and reloaded exactly), so a row's result never depends on N or on
// the block size, and decode equals prefill bit for bit.
namespace {

// x(i, k) is x[i*ldx + k], or x[k*ldx + i] when XT (x given transposed:
// the weight gradient's dy^T read in place).
template <int G, int NR, bool XT>
inline __attribute__((always_inline)) void f32_tile(float* y, const float* x, int64_t ldx, const float* group,
                                                    int64_t K, int64_t k0, int64_t k1, int64_t ldy,
                                                    const __mmask16* mask, bool load_y) {
  const int64_t group_floats = 16 * K;
  __m512 acc[G][NR];
#pragma GCC unroll 4
  for (int g = 0; g < G; ++g)
#pragma GCC unroll 12
    for (int i = 0; i < NR; ++i)
      acc[g][i] = load_y ? _mm512_maskz_loadu_ps(mask[g], y + i * ldy + 16 * g) : _mm512_setzero_ps();
  for (int64_t k = k0; k < k1; ++k) {
    __m512 wv[G];
#pragma GCC unroll 4
    for (int g = 0; g < G; ++g) {
      if constexpr (NR < 4)  // decode streams the weights: ask for them early
        _mm_prefetch(reinterpret_cast<const char*>(group + g * group_floats + 16 * k + 512), _MM_HINT_T0);
      wv[g] = _mm512_loadu_ps(group + g * group_floats + 16 * k);
    }
#pragma GCC unroll 12
    for (int i = 0; i < NR; ++i) {
      const __m512 xb = _mm512_set1_ps(XT ? x[k * ldx + i] : x[i * ldx + k]);
#pragma GCC unroll 4
      for (int g = 0; g < G; ++g) acc[g][i] = _mm512_fmadd_ps(xb, wv[g], acc[g][i]);
    }
  }
#pragma GCC unroll 4
  for (int g = 0; g < G; ++g)
#pragma GCC unroll 12
    for (int i = 0; i < NR; ++i) _mm512_mask_storeu_ps(y + i * ldy + 16 * g, mask[g], acc[g][i]);
}

// The lanes of group g that fall in [m_begin, m_end).
__mmask16 group_lanes(int64_t g, int64_t m_begin, int64_t m_end) {
  const int64_t lo = m_begin > 16 * g ? m_begin - 16 * g : 0;
  const int64_t hi = m_end < 16 * g + 16 ? m_end - 16 * g : 16;
  return __mmask16(((1u << hi) - 1u) & ~((1u << lo) - 1u));
}

// 8 rows x 3 groups: 24 accumulators, 3 weight vectors and a broadcast in
// the 32 registers; a block of 1,024 k of the three groups (192 KiB) stays
// in L2 while all the rows pass. (Measured against 8 x 2, 12 x 2 and 6 x 4
// tiles and blocks of 256 and 512: 75-89 % of the FMA peak on 2 cores.)
constexpr int kF32Rows = 8;
constexpr int kF32Groups = 3;
constexpr int64_t kF32KBlock = 1024;

// All N rows for G groups: tiles of kF32Rows rows, then the rest.
template <int G, bool XT>
void f32_groups(float* y, const float* x, int64_t ldx, const float* group, int64_t N, int64_t K, int64_t k0,
                int64_t k1, int64_t ldy, const __mmask16* mask, bool load_y) {
  const int64_t row_step = XT ? 1 : ldx;
  int64_t n = 0;
  for (; n + kF32Rows <= N; n += kF32Rows)
    f32_tile<G, kF32Rows, XT>(y + n * ldy, x + n * row_step, ldx, group, K, k0, k1, ldy, mask, load_y);
  y += n * ldy;
  x += n * row_step;
  switch (N - n) {
    case 7: f32_tile<G, 7, XT>(y, x, ldx, group, K, k0, k1, ldy, mask, load_y); break;
    case 6: f32_tile<G, 6, XT>(y, x, ldx, group, K, k0, k1, ldy, mask, load_y); break;
    case 5: f32_tile<G, 5, XT>(y, x, ldx, group, K, k0, k1, ldy, mask, load_y); break;
    case 4: f32_tile<G, 4, XT>(y, x, ldx, group, K, k0, k1, ldy, mask, load_y); break;
    case 3: f32_tile<G, 3, XT>(y, x, ldx, group, K, k0, k1, ldy, mask, load_y); break;
    case 2: f32_tile<G, 2, XT>(y, x, ldx, group, K, k0, k1, ldy, mask, load_y); break;
    case 1: f32_tile<G, 1, XT>(y, x, ldx, group, K, k0, k1, ldy, mask, load_y); break;
    default: break;
  }
}

template <bool XT>
void packed_f32(float* y, const float* x, int64_t ldx, const void* w, int64_t N, int64_t K, int64_t m_begin,
                int64_t m_end, int64_t ldy, bool accumulate) {
  const auto* base = static_cast<const float*>(w);
  const int64_t g_end = (m_end + 15) / 16;
  const int64_t row_step = XT ? 1 : ldx;
  if (N < 4) {
    // Decode: the whole row in registers, four groups (streams) at a time.
    for (int64_t n = 0; n < N; ++n) {
      int64_t g = m_begin / 16;
      for (; g + 4 <= g_end; g += 4) {
        const __mmask16 m[4] = {group_lanes(g, m_begin, m_end), group_lanes(g + 1, m_begin, m_end),
                                group_lanes(g + 2, m_begin, m_end), group_lanes(g + 3, m_begin, m_end)};
        f32_tile<4, 1, XT>(y + n * ldy + 16 * g, x + n * row_step, ldx, base + g * 16 * K, K, 0, K, ldy, m, accumulate);
      }
      for (; g < g_end; ++g) {
        const __mmask16 m[1] = {group_lanes(g, m_begin, m_end)};
        f32_tile<1, 1, XT>(y + n * ldy + 16 * g, x + n * row_step, ldx, base + g * 16 * K, K, 0, K, ldy, m, accumulate);
      }
    }
    return;
  }
  // Prefill: a block of k of kF32Groups groups passes over every row of x.
  if (K == 0 && !accumulate)
    for (int64_t n = 0; n < N; ++n)
      for (int64_t m = m_begin; m < m_end; ++m) y[n * ldy + m] = 0;
  for (int64_t k0 = 0; k0 < K; k0 += kF32KBlock) {
    const int64_t k1 = k0 + kF32KBlock < K ? k0 + kF32KBlock : K;
    const bool load_y = accumulate || k0 > 0;
    int64_t g = m_begin / 16;
    for (; g + kF32Groups <= g_end; g += kF32Groups) {
      __mmask16 m[kF32Groups];
      for (int i = 0; i < kF32Groups; ++i) m[i] = group_lanes(g + i, m_begin, m_end);
      f32_groups<kF32Groups, XT>(y + 16 * g, x, ldx, base + g * 16 * K, N, K, k0, k1, ldy, m, load_y);
    }
    for (; g < g_end; ++g) {
      const __mmask16 m[1] = {group_lanes(g, m_begin, m_end)};
      f32_groups<1, XT>(y + 16 * g, x, ldx, base + g * 16 * K, N, K, k0, k1, ldy, m, load_y);
    }
  }
}

}  // namespace

void matmul_f32_packed(float* y, const float* x, const void* w, int64_t N, int64_t K, int64_t m_begin,
                       int64_t m_end, int64_t ldy, bool accumulate) {
  packed_f32<false>(y, x, K, w, N, K, m_begin, m_end, ldy, accumulate);
}
void matmul_f32_packed_xt(float* y, const float* x, int64_t ldx, const void* w, int64_t N, int64_t K,
                          int64_t m_begin, int64_t m_end, int64_t ldy, bool accumulate) {
  packed_f32<true>(y, x, ldx, w, N, K, m_begin, m_end, ldy, accumulate);
}

float dot_f32(const float* a, const float* b, int64_t n) {
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
  }
  for (; i + 16 <= n; i += 16) s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
  if (i < n) {
    const __mmask16 m = tail_mask(n - i);
    s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

void axpy_f32(float* y, float alpha, const float* x, int64_t n) {
  const __m512 a = _mm512_set1_ps(alpha);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(y + i, _mm512_fmadd_ps(a, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
  if (i < n) {
    const __mmask16 m = tail_mask(n - i);
    _mm512_mask_storeu_ps(y + i, m, _mm512_fmadd_ps(a, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i)));
  }
}

void scale_f32(float* y, float alpha, int64_t n) {
  const __m512 a = _mm512_set1_ps(alpha);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_mul_ps(a, _mm512_loadu_ps(y + i)));
  if (i < n) {
    const __mmask16 m = tail_mask(n - i);
    _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(a, _mm512_maskz_loadu_ps(m, y + i)));
  }
}

void bf16_to_f32(float* dst, const uint16_t* src, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, Bf16::load(src + i));
  if (i < n) _mm512_mask_storeu_ps(dst + i, tail_mask(n - i), Bf16::load_tail(src + i, tail_mask(n - i)));
}

void f16_to_f32(float* dst, const uint16_t* src, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, F16::load(src + i));
  if (i < n) _mm512_mask_storeu_ps(dst + i, tail_mask(n - i), F16::load_tail(src + i, tail_mask(n - i)));
}

}  // namespace tpp::kernels::avx512

namespace tpp::kernels::avx512 {
namespace {

// exp(x) for x <= 88: 2^n * e^r, n = round(x / ln 2), |r| <= ln2/2, degree-6
// polynomial (relative error ~1e-7); inputs below -87 give ~1e-38, never NaN.
inline __m512 exp_ps(__m512 x) {
  x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(88.3f)), _mm512_set1_ps(-87.3f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145752f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.42860677e-6f), r);
  __m512 p = _mm512_set1_ps(1.0f / 720);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

constexpr int64_t kAttnTile = 64;
constexpr int kMaxGroup = 16;

// Rows of keys and values as the attention step reads them: load(row, c, m)
// gives elements 16c .. 16c + 15 of a row (lanes outside mask m zero), widened
// to f32 in registers.
struct KvF32 {
  static int64_t row_bytes(int k) { return 4 * int64_t(k); }
  static inline __attribute__((always_inline)) __m512 load(const unsigned char* row, int c, __mmask16 m) {
    return _mm512_maskz_loadu_ps(m, reinterpret_cast<const float*>(row) + 16 * c);
  }
};
struct KvF16 {
  static int64_t row_bytes(int k) { return 2 * int64_t(k); }
  static inline __attribute__((always_inline)) __m512 load(const unsigned char* row, int c, __mmask16 m) {
    return F16::load_tail(reinterpret_cast<const uint16_t*>(row) + 16 * c, m);
  }
};
struct KvBf16 {
  static int64_t row_bytes(int k) { return 2 * int64_t(k); }
  static inline __attribute__((always_inline)) __m512 load(const unsigned char* row, int c, __mmask16 m) {
    return Bf16::load_tail(reinterpret_cast<const uint16_t*>(row) + 16 * c, m);
  }
};
// q8_0 rows (k a multiple of 32, so no chunk is partial): f32(d) * q.
struct KvQ8 {
  static int64_t row_bytes(int k) { return int64_t(k) / 32 * 34; }
  static inline __attribute__((always_inline)) __m512 load(const unsigned char* row, int c, __mmask16) {
    const unsigned char* b = row + 34 * (c >> 1);
    unsigned short h;
    __builtin_memcpy(&h, b, 2);
    const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 2 + 16 * (c & 1)));
    return _mm512_mul_ps(_mm512_set1_ps(_cvtsh_ss(h)), _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q)));
  }
};

// acc[g, :] += sum_p e[g, p] * V_p for a group of GN queries (GN <= 8 known at
// compile time, so the accumulators stay in registers).
template <class L, int GN>
void pv_block(float* acc, const float* e, int k, const unsigned char* V, int64_t stride, int64_t np) {
  for (int c = 0; c < k; c += 16) {
    const __mmask16 m = k - c >= 16 ? __mmask16(0xffff) : tail_mask(k - c);
    __m512 a[GN];
#pragma GCC unroll 8
    for (int g = 0; g < GN; ++g) a[g] = _mm512_maskz_loadu_ps(m, acc + g * k + c);
    for (int64_t p = 0; p < np; ++p) {
      const __m512 v = L::load(V + p * stride, c / 16, m);
#pragma GCC unroll 8
      for (int g = 0; g < GN; ++g) a[g] = _mm512_fmadd_ps(_mm512_set1_ps(e[g * kAttnTile + p]), v, a[g]);
    }
#pragma GCC unroll 8
    for (int g = 0; g < GN; ++g) _mm512_mask_storeu_ps(acc + g * k + c, m, a[g]);
  }
}

template <class L>
void pv_dispatch(float* acc, const float* e, int G, int k, const unsigned char* V, int64_t stride, int64_t np) {
  for (int g0 = 0; g0 < G; g0 += 8) {
    float* a = acc + g0 * k;
    const float* eg = e + g0 * kAttnTile;
    switch (G - g0 < 8 ? G - g0 : 8) {
      case 1: pv_block<L, 1>(a, eg, k, V, stride, np); break;
      case 2: pv_block<L, 2>(a, eg, k, V, stride, np); break;
      case 3: pv_block<L, 3>(a, eg, k, V, stride, np); break;
      case 4: pv_block<L, 4>(a, eg, k, V, stride, np); break;
      case 5: pv_block<L, 5>(a, eg, k, V, stride, np); break;
      case 6: pv_block<L, 6>(a, eg, k, V, stride, np); break;
      case 7: pv_block<L, 7>(a, eg, k, V, stride, np); break;
      default: pv_block<L, 8>(a, eg, k, V, stride, np); break;
    }
  }
}

template <class L>
void attn_step(float* acc, float* m, float* l, const float* q, int G, int k, const void* Kv, const void* Vv,
               int64_t stride, int64_t n, float scale, float softcap) {
  const auto* K = static_cast<const unsigned char*>(Kv);
  const auto* V = static_cast<const unsigned char*>(Vv);
  // Scores of one tile for every query of the group: s[g * kAttnTile + p].
  alignas(64) float s[kMaxGroup * kAttnTile];
  const int chunks = k / 16;
  const __mmask16 tail = tail_mask(k - chunks * 16);
  const __mmask16 all = 0xffff;
  // Cache lines per row, for the prefetches below.
  const int64_t lines = (L::row_bytes(k) + 63) / 64;
  for (int64_t p0 = 0; p0 < n; p0 += kAttnTile) {
    const int64_t np = n - p0 < kAttnTile ? n - p0 : kAttnTile;
    // This tile's V rows and the next tile's K rows are requested now, so that
    // they arrive while the scores are computed: step 3 reads V a column block
    // at a time across all rows, a pattern the hardware prefetcher misses.
    const int64_t next = n - p0 - np < kAttnTile ? n - p0 - np : kAttnTile;
    for (int64_t p = 0; p < np; ++p)
      for (int64_t c = 0; c < lines; ++c)
        _mm_prefetch(reinterpret_cast<const char*>(V + (p0 + p) * stride + 64 * c), _MM_HINT_T0);
    for (int64_t p = 0; p < next; ++p)
      for (int64_t c = 0; c < lines; ++c)
        _mm_prefetch(reinterpret_cast<const char*>(K + (p0 + np + p) * stride + 64 * c), _MM_HINT_T0);
    // 1. s = q . K^T * scale: 16 keys at a time into 16 accumulators, summed
    // by one transpose-and-add tree; the last < 16 keys one by one.
    const int64_t full = np / 16 * 16;
    for (int g = 0; g < G; ++g) {
      const float* qg = q + g * k;
      float* sg = s + g * kAttnTile;
      for (int64_t pb = 0; pb < full; pb += 16) {
        const unsigned char* kb = K + (p0 + pb) * stride;
        __m512 acc[16];
#pragma GCC unroll 16
        for (int i = 0; i < 16; ++i) acc[i] = _mm512_setzero_ps();
        for (int c = 0; c < chunks; ++c) {
          const __m512 qv = _mm512_loadu_ps(qg + 16 * c);
#pragma GCC unroll 16
          for (int i = 0; i < 16; ++i) acc[i] = _mm512_fmadd_ps(qv, L::load(kb + i * stride, c, all), acc[i]);
        }
        if (tail) {
          const __m512 qv = _mm512_maskz_loadu_ps(tail, qg + 16 * chunks);
#pragma GCC unroll 16
          for (int i = 0; i < 16; ++i) acc[i] = _mm512_fmadd_ps(qv, L::load(kb + i * stride, chunks, tail), acc[i]);
        }
        _mm512_storeu_ps(sg + pb, _mm512_mul_ps(reduce16(acc), _mm512_set1_ps(scale)));
      }
      for (int64_t p = full; p < np; ++p) {
        const unsigned char* kr = K + (p0 + p) * stride;
        __m512 d = _mm512_setzero_ps();
        for (int c = 0; c < chunks; ++c) d = _mm512_fmadd_ps(_mm512_loadu_ps(qg + 16 * c), L::load(kr, c, all), d);
        if (tail) d = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, qg + 16 * chunks), L::load(kr, chunks, tail), d);
        sg[p] = _mm512_reduce_add_ps(d) * scale;
      }
      if (softcap > 0)
        for (int64_t p = 0; p < np; ++p) sg[p] = softcap * __builtin_tanhf(sg[p] / softcap);
    }
    // 2. Online softmax update per query: new max, rescale, e = exp(s - max).
    for (int g = 0; g < G; ++g) {
      float* sg = s + g * kAttnTile;
      __m512 mx = _mm512_set1_ps(m[g]);
      for (int64_t p = 0; p < np; p += 16) {
        const __mmask16 mk = np - p >= 16 ? __mmask16(0xffff) : tail_mask(np - p);
        mx = _mm512_mask_max_ps(mx, mk, mx, _mm512_maskz_loadu_ps(mk, sg + p));
      }
      const float m_new = _mm512_reduce_max_ps(mx);
      const float c = __builtin_expf(m[g] - m_new);
      m[g] = m_new;
      if (c != 1.0f) scale_f32(acc + g * k, c, k);
      __m512 sum = _mm512_setzero_ps();
      const __m512 mv = _mm512_set1_ps(m_new);
      for (int64_t p = 0; p < np; p += 16) {
        const __mmask16 mk = np - p >= 16 ? __mmask16(0xffff) : tail_mask(np - p);
        const __m512 e = _mm512_maskz_mov_ps(mk, exp_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(mk, sg + p), mv)));
        _mm512_storeu_ps(sg + p, e);
        sum = _mm512_add_ps(sum, e);
      }
      l[g] = l[g] * c + _mm512_reduce_add_ps(sum);
    }
    // 3. acc += e . V, one 16-wide column block at a time with the group's
    // accumulators in registers across all keys of the tile.
    pv_dispatch<L>(acc, s, G, k, V + p0 * stride, stride, np);
  }
}

}  // namespace

void attn_step_f32(float* acc, float* m, float* l, const float* q, int G, int k, const void* K, const void* V,
                   int64_t stride, int64_t n, float scale, float softcap) {
  attn_step<KvF32>(acc, m, l, q, G, k, K, V, stride, n, scale, softcap);
}
void attn_step_f16(float* acc, float* m, float* l, const float* q, int G, int k, const void* K, const void* V,
                   int64_t stride, int64_t n, float scale, float softcap) {
  attn_step<KvF16>(acc, m, l, q, G, k, K, V, stride, n, scale, softcap);
}
void attn_step_bf16(float* acc, float* m, float* l, const float* q, int G, int k, const void* K, const void* V,
                    int64_t stride, int64_t n, float scale, float softcap) {
  attn_step<KvBf16>(acc, m, l, q, G, k, K, V, stride, n, scale, softcap);
}
void attn_step_q8_0(float* acc, float* m, float* l, const float* q, int G, int k, const void* K, const void* V,
                    int64_t stride, int64_t n, float scale, float softcap) {
  attn_step<KvQ8>(acc, m, l, q, G, k, K, V, stride, n, scale, softcap);
}

// ---------------------------------------------------------------------------
// Block-quantised weights (q8_0, q4_0; layouts in kernels/api.h): MR rows at a
// time, each block's integers widened in registers, multiplied with x, then
// scaled once per block by its f16 scale.

namespace {

inline float block_scale(const unsigned char* b) {
  unsigned short h;
  __builtin_memcpy(&h, b, 2);
  return _cvtsh_ss(h);
}

struct Q8 {
  static constexpr int kBytes = 34;
  static inline __attribute__((always_inline)) void load(const unsigned char* b, __m512& lo, __m512& hi) {
    const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 2));
    lo = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_castsi256_si128(q)));
    hi = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_extracti128_si256(q, 1)));
  }
};
struct Q4 {
  static constexpr int kBytes = 18;
  static inline __attribute__((always_inline)) void load(const unsigned char* b, __m512& lo, __m512& hi) {
    const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 2));
    const __m128i mask = _mm_set1_epi8(15);
    const __m512i eight = _mm512_set1_epi32(8);
    lo = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_cvtepu8_epi32(_mm_and_si128(q, mask)), eight));
    hi = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_cvtepu8_epi32(_mm_and_si128(_mm_srli_epi16(q, 4), mask)), eight));
  }
};

template <class Q, int MR>
inline __attribute__((always_inline)) void qtile(float* y, const float* x, const unsigned char* w, int64_t nb,
                                                 int64_t row_bytes) {
  __m512 acc[MR];
#pragma GCC unroll 4
  for (int j = 0; j < MR; ++j) acc[j] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const __m512 xl = _mm512_loadu_ps(x + b * 32), xh = _mm512_loadu_ps(x + b * 32 + 16);
#pragma GCC unroll 4
    for (int j = 0; j < MR; ++j) {
      const unsigned char* blk = w + j * row_bytes + b * Q::kBytes;
      // The same block of the next tile's row: decode streams the weights once,
      // and 34- / 18-byte blocks on 4 interleaved rows defeat the hardware prefetcher.
      _mm_prefetch(reinterpret_cast<const char*>(blk + MR * row_bytes), _MM_HINT_T0);
      __m512 lo, hi;
      Q::load(blk, lo, hi);
      const __m512 s = _mm512_fmadd_ps(lo, xl, _mm512_mul_ps(hi, xh));
      acc[j] = _mm512_fmadd_ps(_mm512_set1_ps(block_scale(blk)), s, acc[j]);
    }
  }
#pragma GCC unroll 4
  for (int j = 0; j < MR; ++j) y[j] = _mm512_reduce_add_ps(acc[j]);
}

template <class Q>
void matmul_q(float* y, const float* x, const void* w, int64_t N, int64_t K, int64_t m0, int64_t m1, int64_t ldy) {
  const int64_t nb = K / 32, row_bytes = nb * Q::kBytes;
  const auto* base = static_cast<const unsigned char*>(w);
  for (int64_t n = 0; n < N; ++n) {
    int64_t m = m0;
    for (; m + 4 <= m1; m += 4) qtile<Q, 4>(y + n * ldy + m, x + n * K, base + m * row_bytes, nb, row_bytes);
    for (; m < m1; ++m) qtile<Q, 1>(y + n * ldy + m, x + n * K, base + m * row_bytes, nb, row_bytes);
  }
}

template <class Q>
void dequant(float* dst, const void* src, int64_t n) {
  const auto* base = static_cast<const unsigned char*>(src);
  for (int64_t b = 0; b < n / 32; ++b) {
    const unsigned char* blk = base + b * Q::kBytes;
    __m512 lo, hi;
    Q::load(blk, lo, hi);
    const __m512 d = _mm512_set1_ps(block_scale(blk));
    _mm512_storeu_ps(dst + b * 32, _mm512_mul_ps(lo, d));
    _mm512_storeu_ps(dst + b * 32 + 16, _mm512_mul_ps(hi, d));
  }
}

}  // namespace

void matmul_q8_0(float* y, const float* x, const void* w, int64_t N, int64_t K, int64_t m_begin, int64_t m_end,
                 int64_t ldy) {
  matmul_q<Q8>(y, x, w, N, K, m_begin, m_end, ldy);
}
void matmul_q4_0(float* y, const float* x, const void* w, int64_t N, int64_t K, int64_t m_begin, int64_t m_end,
                 int64_t ldy) {
  matmul_q<Q4>(y, x, w, N, K, m_begin, m_end, ldy);
}
void dequant_q8_0(float* dst, const void* src, int64_t n) { dequant<Q8>(dst, src, n); }
void dequant_q4_0(float* dst, const void* src, int64_t n) { dequant<Q4>(dst, src, n); }

// K-quants (layouts in tpp/kernels/kquants.h): 16 weights per vector, each
// computed with the reference's operations in its order (scale * q rounded,
// then the minimum subtracted; no fused multiply-add), so every value is
// bit-identical to the scalar decoder's. One visitor per format decodes a
// super-block and hands each vector to a consumer: a store (dequantisation)
// or multiply-adds with rows of x (the decode matmul).
namespace {

float half_at(const uint8_t* p) {
  uint16_t h;
  __builtin_memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

void scale_min_k4(int j, const uint8_t* s, int* sc, int* m) {
  if (j < 4) {
    *sc = s[j] & 63;
    *m = s[j + 4] & 63;
  } else {
    *sc = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4);
    *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

// The reference rounds the product before subtracting: the explicitly
// rounded forms are never contracted into a fused multiply-add.
constexpr int kNearest = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;

// 16 small unsigned integers (bytes) times a scale, less a minimum.
inline __m512 widen16(__m128i q, float scale, float minimum) {
  const __m512 v = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(q));
  return _mm512_sub_round_ps(_mm512_mul_round_ps(v, _mm512_set1_ps(scale), kNearest), _mm512_set1_ps(minimum),
                             kNearest);
}

// Q4_K / Q5_K super-block b: f(offset, 16 weights) for offsets 0, 16, ..., 240.
template <bool kFive, class F>
inline __attribute__((always_inline)) void visit_qk(const uint8_t* b, F&& f) {
  const __m128i low = _mm_set1_epi8(15), one = _mm_set1_epi8(1);
  const float d = half_at(b), dmin = half_at(b + 2);
  const uint8_t* qh = b + 16;
  const uint8_t* qs = b + (kFive ? 48 : 16);
  for (int c = 0; c < 4; ++c) {
    int sc, m;
    scale_min_k4(2 * c, b + 4, &sc, &m);
    const float d1 = d * float(sc), m1 = dmin * float(m);
    scale_min_k4(2 * c + 1, b + 4, &sc, &m);
    const float d2 = d * float(sc), m2 = dmin * float(m);
    for (int j = 0; j < 2; ++j) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs + 32 * c + 16 * j));
      __m128i lo = _mm_and_si128(v, low), hi = _mm_and_si128(_mm_srli_epi16(v, 4), low);
      if constexpr (kFive) {
        const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qh + 16 * j));
        const __m128i b0 = _mm_and_si128(_mm_srl_epi16(h, _mm_cvtsi32_si128(2 * c)), one);
        const __m128i b1 = _mm_and_si128(_mm_srl_epi16(h, _mm_cvtsi32_si128(2 * c + 1)), one);
        lo = _mm_or_si128(lo, _mm_slli_epi16(b0, 4));
        hi = _mm_or_si128(hi, _mm_slli_epi16(b1, 4));
      }
      f(64 * c + 16 * j, widen16(lo, d1, m1));
      f(64 * c + 32 + 16 * j, widen16(hi, d2, m2));
    }
  }
}

// Q6_K super-block b, likewise.
template <class F>
inline __attribute__((always_inline)) void visit_q6k(const uint8_t* b, F&& f) {
  const __m128i low = _mm_set1_epi8(15), two = _mm_set1_epi8(3);
  const __m512i off = _mm512_set1_epi32(32);
  const auto* sc = reinterpret_cast<const int8_t*>(b + 192);
  const float d = half_at(b + 208);
  for (int h = 0; h < 2; ++h)
    for (int j = 0; j < 2; ++j) {
      const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 64 * h + 16 * j));
      const __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 64 * h + 32 + 16 * j));
      const __m128i e = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 128 + 32 * h + 16 * j));
      const __m128i q[4] = {
          _mm_or_si128(_mm_and_si128(a, low), _mm_slli_epi16(_mm_and_si128(e, two), 4)),
          _mm_or_si128(_mm_and_si128(c, low), _mm_slli_epi16(_mm_and_si128(_mm_srli_epi16(e, 2), two), 4)),
          _mm_or_si128(_mm_and_si128(_mm_srli_epi16(a, 4), low),
                       _mm_slli_epi16(_mm_and_si128(_mm_srli_epi16(e, 4), two), 4)),
          _mm_or_si128(_mm_and_si128(_mm_srli_epi16(c, 4), low),
                       _mm_slli_epi16(_mm_and_si128(_mm_srli_epi16(e, 6), two), 4)),
      };
      for (int r = 0; r < 4; ++r) {
        const float s = d * float(sc[8 * h + j + 2 * r]);
        const __m512 v = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_cvtepu8_epi32(q[r]), off));
        f(128 * h + 32 * r + 16 * j, _mm512_mul_round_ps(v, _mm512_set1_ps(s), kNearest));
      }
    }
}

// Visits every super-block of n weights at src.
template <int kType, class F>
inline __attribute__((always_inline)) void visit_k(const void* src, int64_t n, F&& f) {
  constexpr int64_t kBytes = kType == 4 ? 144 : kType == 5 ? 176 : 210;
  const auto* b = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n / 256; ++i, b += kBytes) {
    auto at = [&](int o, __m512 v) __attribute__((always_inline)) { f(256 * i + o, v); };
    if constexpr (kType == 6) visit_q6k(b, at);
    else visit_qk<kType == 5>(b, at);
  }
}

template <int kType>
void dequant_k(float* dst, const void* src, int64_t n) {
  visit_k<kType>(src, n, [&](int64_t o, __m512 v) { _mm512_storeu_ps(dst + o, v); });
}

// Decode: one row of W against NN rows of x, each weight vector widened once
// and multiplied into every row's accumulators (four chains per row of x, by
// the vector's position in its group of 64, so the multiply-adds do not wait
// on each other).
template <int kType, int NN>
inline void row_k(float* y, const float* x, const uint8_t* row, int64_t K, int64_t ldy) {
  __m512 acc[NN][4];
  for (auto& a : acc)
    for (auto& c : a) c = _mm512_setzero_ps();
  visit_k<kType>(row, K, [&](int64_t o, __m512 v) __attribute__((always_inline)) {
    const int c = int(o >> 4) & 3;
    for (int i = 0; i < NN; ++i) acc[i][c] = _mm512_fmadd_ps(v, _mm512_loadu_ps(x + i * K + o), acc[i][c]);
  });
  for (int i = 0; i < NN; ++i) {
    const __m512 sum = _mm512_add_ps(_mm512_add_ps(acc[i][0], acc[i][1]), _mm512_add_ps(acc[i][2], acc[i][3]));
    y[i * ldy] = _mm512_reduce_add_ps(sum);
  }
}

// Rows m_begin .. m_end of W against N rows of x (N < 4 in use).
template <int kType>
void matmul_k(float* y, const float* x, const void* w, int64_t N, int64_t K, int64_t m_begin, int64_t m_end,
              int64_t ldy) {
  constexpr int64_t kBytes = kType == 4 ? 144 : kType == 5 ? 176 : 210;
  const int64_t row_bytes = K / 256 * kBytes;
  for (int64_t m = m_begin; m < m_end; ++m) {
    const auto* row = static_cast<const uint8_t*>(w) + m * row_bytes;
    for (int64_t n0 = 0; n0 < N; n0 += 3) {
      float* yn = y + n0 * ldy + m;
      const float* xn = x + n0 * K;
      switch (N - n0 < 3 ? N - n0 : 3) {
        case 1: row_k<kType, 1>(yn, xn, row, K, ldy); break;
        case 2: row_k<kType, 2>(yn, xn, row, K, ldy); break;
        default: row_k<kType, 3>(yn, xn, row, K, ldy); break;
      }
    }
  }
}

}  // namespace

void dequant_q4_k(float* dst, const void* src, int64_t n) { dequant_k<4>(dst, src, n); }
void dequant_q5_k(float* dst, const void* src, int64_t n) { dequant_k<5>(dst, src, n); }
void dequant_q6_k(float* dst, const void* src, int64_t n) { dequant_k<6>(dst, src, n); }
void matmul_q4_k(float* y, const float* x, const void* w, int64_t N, int64_t K, int64_t m_begin, int64_t m_end,
                 int64_t ldy) {
  matmul_k<4>(y, x, w, N, K, m_begin, m_end, ldy);
}
void matmul_q5_k(float* y, const float* x, const void* w, int64_t N, int64_t K, int64_t m_begin, int64_t m_end,
                 int64_t ldy) {
  matmul_k<5>(y, x, w, N, K, m_begin, m_end, ldy);
}
void matmul_q6_k(float* y, const float* x, const void* w, int64_t N, int64_t K, int64_t m_begin, int64_t m_end,
                 int64_t ldy) {
  matmul_k<6>(y, x, w, N, K, m_begin, m_end, ldy);
}

void pack_f32_group(float* dst, const float* src, int64_t rows, int64_t K) {
  // 16 x 16 tiles transposed in registers: unpack pairs, then 64-bit pairs,
  // then 128-bit lanes twice.
  for (int64_t k0 = 0; k0 < K; k0 += 16) {
    const __mmask16 cols = K - k0 >= 16 ? __mmask16(0xffff) : tail_mask(K - k0);
    __m512 r[16], t[16];
    for (int i = 0; i < 16; ++i) r[i] = i < rows ? _mm512_maskz_loadu_ps(cols, src + i * K + k0) : _mm512_setzero_ps();
    for (int i = 0; i < 16; i += 2) {
      t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
      t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
      r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
      r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
      r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
      r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
    }
    // r[4a + b] now holds, in 128-bit lane l, column 4l + b' of rows 4a .. 4a+3
    // (b' = 0, 1, 2, 3 for b = 0, 1, 2, 3).
    for (int b = 0; b < 4; ++b) {
      t[b] = _mm512_shuffle_f32x4(r[b], r[4 + b], 0x44);       // lanes 0, 1 of rows 0-3 and 4-7
      t[4 + b] = _mm512_shuffle_f32x4(r[b], r[4 + b], 0xee);   // lanes 2, 3
      t[8 + b] = _mm512_shuffle_f32x4(r[8 + b], r[12 + b], 0x44);
      t[12 + b] = _mm512_shuffle_f32x4(r[8 + b], r[12 + b], 0xee);
    }
    for (int b = 0; b < 4; ++b) {
      r[b] = _mm512_shuffle_f32x4(t[b], t[8 + b], 0x88);        // column b: lane 0 of each
      r[4 + b] = _mm512_shuffle_f32x4(t[b], t[8 + b], 0xdd);    // column 4 + b
      r[8 + b] = _mm512_shuffle_f32x4(t[4 + b], t[12 + b], 0x88);
      r[12 + b] = _mm512_shuffle_f32x4(t[4 + b], t[12 + b], 0xdd);
    }
    for (int c = 0; c < 16 && k0 + c < K; ++c) _mm512_storeu_ps(dst + 16 * (k0 + c), r[c]);
  }
}

float max_f32(const float* x, int64_t n) {
  __m512 m0 = _mm512_set1_ps(-__builtin_inff()), m1 = m0;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    m0 = _mm512_max_ps(m0, _mm512_loadu_ps(x + i));
    m1 = _mm512_max_ps(m1, _mm512_loadu_ps(x + i + 16));
  }
  for (; i + 16 <= n; i += 16) m0 = _mm512_max_ps(m0, _mm512_loadu_ps(x + i));
  if (i < n) m1 = _mm512_mask_max_ps(m1, tail_mask(n - i), m1, _mm512_maskz_loadu_ps(tail_mask(n - i), x + i));
  return _mm512_reduce_max_ps(_mm512_max_ps(m0, m1));
}

float exp_sum_f32(float* dst, const float* x, float shift, int64_t n) {
  const __m512 s = _mm512_set1_ps(shift);
  __m512 a0 = _mm512_setzero_ps(), a1 = a0;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512 e0 = exp_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i), s));
    const __m512 e1 = exp_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i + 16), s));
    if (dst) {
      _mm512_storeu_ps(dst + i, e0);
      _mm512_storeu_ps(dst + i + 16, e1);
    }
    a0 = _mm512_add_ps(a0, e0);
    a1 = _mm512_add_ps(a1, e1);
  }
  for (; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? __mmask16(0xffff) : tail_mask(n - i);
    const __m512 e = _mm512_maskz_mov_ps(m, exp_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), s)));
    if (dst) _mm512_mask_storeu_ps(dst + i, m, e);
    a0 = _mm512_add_ps(a0, e);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
}

namespace {

// sigmoid(g) = 1 / (1 + exp(-g)); exp_ps clamps its input, so g below -88
// gives about 1e-38 and above 87 exactly 1, never NaN.
inline __m512 sigmoid_ps(__m512 g) {
  const __m512 one = _mm512_set1_ps(1.0f);
  return _mm512_div_ps(one, _mm512_add_ps(one, exp_ps(_mm512_sub_ps(_mm512_setzero_ps(), g))));
}

}  // namespace

void swiglu_f32(float* h, const float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? __mmask16(0xffff) : tail_mask(n - i);
    const __m512 g = _mm512_maskz_loadu_ps(m, gate + i), u = _mm512_maskz_loadu_ps(m, up + i);
    _mm512_mask_storeu_ps(h + i, m, _mm512_mul_ps(_mm512_mul_ps(g, sigmoid_ps(g)), u));
  }
}

void swiglu_backward_f32(float* dgate, float* dup, const float* dh, const float* gate, const float* up, int64_t n) {
  const __m512 one = _mm512_set1_ps(1.0f);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? __mmask16(0xffff) : tail_mask(n - i);
    const __m512 g = _mm512_maskz_loadu_ps(m, gate + i), u = _mm512_maskz_loadu_ps(m, up + i);
    const __m512 d = _mm512_maskz_loadu_ps(m, dh + i), s = sigmoid_ps(g);
    // act'(g) = s (1 + g (1 - s))
    const __m512 da = _mm512_mul_ps(s, _mm512_fmadd_ps(g, _mm512_sub_ps(one, s), one));
    _mm512_mask_storeu_ps(dgate + i, m, _mm512_mul_ps(_mm512_mul_ps(d, u), da));
    _mm512_mask_storeu_ps(dup + i, m, _mm512_mul_ps(d, _mm512_mul_ps(g, s)));
  }
}

void adamw_f32(float* p, const float* grad, float* m, float* v, int64_t n, const AdamWCoeffs& c) {
  const __m512 b1 = _mm512_set1_ps(c.b1), b2 = _mm512_set1_ps(c.b2), one_b1 = _mm512_set1_ps(1 - c.b1),
               one_b2 = _mm512_set1_ps(1 - c.b2), step = _mm512_set1_ps(c.step),
               inv_sqrt_bc2 = _mm512_set1_ps(c.inv_sqrt_bc2), eps = _mm512_set1_ps(c.eps),
               decay = _mm512_set1_ps(c.decay);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = n - i >= 16 ? __mmask16(0xffff) : tail_mask(n - i);
    const __m512 g = _mm512_maskz_loadu_ps(k, grad + i);
    const __m512 w = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, p + i), decay);
    const __m512 mi = _mm512_fmadd_ps(b1, _mm512_maskz_loadu_ps(k, m + i), _mm512_mul_ps(one_b1, g));
    const __m512 vi = _mm512_fmadd_ps(b2, _mm512_maskz_loadu_ps(k, v + i), _mm512_mul_ps(_mm512_mul_ps(one_b2, g), g));
    const __m512 denom = _mm512_fmadd_ps(_mm512_sqrt_ps(vi), inv_sqrt_bc2, eps);
    _mm512_mask_storeu_ps(m + i, k, mi);
    _mm512_mask_storeu_ps(v + i, k, vi);
    _mm512_mask_storeu_ps(p + i, k, _mm512_sub_ps(w, _mm512_div_ps(_mm512_mul_ps(step, mi), denom)));
  }
}

extern const char compiled_features[] =
#include "tpp/kernels/compiled_features.inc"
    ;

}  // namespace tpp::kernels::avx512
