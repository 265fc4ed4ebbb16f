// AVX2 + FMA + F16C kernels (same structure as the AVX-512 ones, 8 lanes).
// Compiled with AVX2 flags; includes no STL and no shared inline header.
// K tails are finished in scalar code.
#include "tpp/kernels/x86/avx2/kernels_avx2.h"

#include <immintrin.h>

namespace tpp::kernels::avx2 {
namespace {

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

struct F32 {
  using T = float;
  static __m256 load(const float* p) { return _mm256_loadu_ps(p); }
  static float one(float v) { return v; }
};
struct Bf16 {
  using T = uint16_t;
  static __m256 load(const uint16_t* p) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
  static float one(uint16_t v) {
    const __m128i h = _mm_cvtsi32_si128(int(uint32_t(v) << 16));
    return _mm_cvtss_f32(_mm_castsi128_ps(h));
  }
};
struct F16 {
  using T = uint16_t;
  static __m256 load(const uint16_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static float one(uint16_t v) { return _cvtsh_ss(v); }
};

template <class L, int NR, int MR>
inline __attribute__((always_inline)) void tile(float* y, const float* x, const typename L::T* w, int64_t K,
                                                int64_t ldy) {
  __m256 acc[NR][MR];
#pragma GCC unroll 8
  for (int i = 0; i < NR; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < MR; ++j) acc[i][j] = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 8 <= K; k += 8) {
    __m256 wv[MR];
#pragma GCC unroll 8
    for (int j = 0; j < MR; ++j) wv[j] = L::load(w + j * K + k);
#pragma GCC unroll 8
    for (int i = 0; i < NR; ++i) {
      const __m256 xv = _mm256_loadu_ps(x + i * K + k);
#pragma GCC unroll 8
      for (int j = 0; j < MR; ++j) acc[i][j] = _mm256_fmadd_ps(xv, wv[j], acc[i][j]);
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < NR; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < MR; ++j) {
      float s = hsum(acc[i][j]);
      for (int64_t t = k; t < K; ++t) s += x[i * K + t] * L::one(w[j * K + t]);
      y[i * ldy + j] = s;
    }
}

constexpr int64_t kRowBlock = 64;

template <class L>
void matmul(float* y, const float* x, const typename L::T* w, int64_t N, int64_t K, int64_t m0,
            int64_t m1, int64_t ldy) {
  if (N < 4) {
    for (int64_t n = 0; n < N; ++n) {
      int64_t m = m0;
      for (; m + 4 <= m1; m += 4) tile<L, 1, 4>(y + n * ldy + m, x + n * K, w + m * K, K, ldy);
      for (; m < m1; ++m) tile<L, 1, 1>(y + n * ldy + m, x + n * K, w + m * K, K, ldy);
    }
    return;
  }
  for (int64_t nb = 0; nb < N; nb += kRowBlock) {
    const int64_t ne = nb + kRowBlock < N ? nb + kRowBlock : N;
    int64_t m = m0;
    for (; m + 2 <= m1; m += 2) {
      int64_t n = nb;
      for (; n + 4 <= ne; n += 4) tile<L, 4, 2>(y + n * ldy + m, x + n * K, w + m * K, K, ldy);
      for (; n < ne; ++n) tile<L, 1, 2>(y + n * ldy + m, x + n * K, w + m * K, K, ldy);
    }
    for (; m < m1; ++m) {
      int64_t n = nb;
      for (; n + 4 <= ne; n += 4) tile<L, 4, 1>(y + n * ldy + m, x + n * K, w + m * K, K, ldy);
      for (; n < ne; ++n) tile<L, 1, 1>(y + n * ldy + m, x + n * K, w + m * K, K, ldy);
    }
  }
}

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

// NN form (see the AVX-512 version): NR rows by NV 8-wide column vectors in
// registers; columns past the last multiple of 8 are finished in scalar code.
namespace {

constexpr int64_t kNnKBlock = 256;
constexpr int kNnRows = 6;

template <bool XT, int NR, int NV>
inline __attribute__((always_inline)) void nn_tile(float* y, const float* x, const float* w, int64_t K,
                                                   int64_t ldx, int64_t ldw, int64_t ldy, bool load_y) {
  __m256 acc[NR][NV];
#pragma GCC unroll 6
  for (int i = 0; i < NR; ++i)
#pragma GCC unroll 2
    for (int j = 0; j < NV; ++j) acc[i][j] = load_y ? _mm256_loadu_ps(y + i * ldy + 8 * j) : _mm256_setzero_ps();
  for (int64_t k = 0; k < K; ++k) {
    __m256 wv[NV];
#pragma GCC unroll 2
    for (int j = 0; j < NV; ++j) wv[j] = _mm256_loadu_ps(w + k * ldw + 8 * j);
#pragma GCC unroll 6
    for (int i = 0; i < NR; ++i) {
      const __m256 xb = _mm256_broadcast_ss(XT ? x + k * ldx + i : x + i * ldx + k);
#pragma GCC unroll 2
      for (int j = 0; j < NV; ++j) acc[i][j] = _mm256_fmadd_ps(xb, wv[j], acc[i][j]);
    }
  }
#pragma GCC unroll 6
  for (int i = 0; i < NR; ++i)
#pragma GCC unroll 2
    for (int j = 0; j < NV; ++j) _mm256_storeu_ps(y + i * ldy + 8 * j, acc[i][j]);
}

template <bool XT, int NV>
void nn_columns(float* y, const float* x, const float* w, int64_t N, int64_t K, int64_t ldx, int64_t ldw,
                int64_t ldy, bool load_y) {
  int64_t n = 0;
  for (; n + kNnRows <= N; n += kNnRows) nn_tile<XT, kNnRows, NV>(y + n * ldy, XT ? x + n : x + n * ldx, w, K, ldx, ldw, ldy, load_y);
  switch (N - n) {
    case 5: nn_tile<XT, 5, NV>(y + n * ldy, XT ? x + n : x + n * ldx, w, K, ldx, ldw, ldy, load_y); break;
    case 4: nn_tile<XT, 4, NV>(y + n * ldy, XT ? x + n : x + n * ldx, w, K, ldx, ldw, ldy, load_y); break;
    case 3: nn_tile<XT, 3, NV>(y + n * ldy, XT ? x + n : x + n * ldx, w, K, ldx, ldw, ldy, load_y); break;
    case 2: nn_tile<XT, 2, NV>(y + n * ldy, XT ? x + n : x + n * ldx, w, K, ldx, ldw, ldy, load_y); break;
    case 1: nn_tile<XT, 1, NV>(y + n * ldy, XT ? x + n : x + n * ldx, w, K, ldx, ldw, ldy, load_y); break;
    default: break;
  }
}

template <bool XT>
void gemm(float* y, const float* x, const float* w, int64_t N, int64_t K, int64_t m_begin, int64_t m_end,
          int64_t ldx, int64_t ldw, int64_t ldy, bool accumulate) {
  const int64_t m_vec = m_begin + (m_end - m_begin) / 8 * 8;
  for (int64_t kb = 0; kb < K || kb == 0; kb += kNnKBlock) {
    const int64_t kn = K - kb < kNnKBlock ? K - kb : kNnKBlock;
    const bool load_y = accumulate || kb > 0;
    int64_t m = m_begin;
    for (; m + 16 <= m_vec; m += 16) nn_columns<XT, 2>(y + m, XT ? x + kb * ldx : x + kb, w + kb * ldw + m, N, kn, ldx, ldw, ldy, load_y);
    for (; m < m_vec; m += 8) nn_columns<XT, 1>(y + m, XT ? x + kb * ldx : x + kb, w + kb * ldw + m, N, kn, ldx, ldw, ldy, load_y);
    for (int64_t n = 0; n < N; ++n)
      for (m = m_vec; m < m_end; ++m) {
        float acc = load_y ? y[n * ldy + m] : 0.0f;
        for (int64_t k = 0; k < kn; ++k) acc += (XT ? x[(kb + k) * ldx + n] : x[n * ldx + kb + k]) * w[(kb + k) * ldw + m];
        y[n * ldy + m] = acc;
      }
    if (K == 0) break;
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

float dot_f32(const float* a, const float* b, int64_t n) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
  }
  for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
  float s = hsum(_mm256_add_ps(s0, s1));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

void axpy_f32(float* y, float alpha, const float* x, int64_t n) {
  const __m256 a = _mm256_set1_ps(alpha);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(a, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  for (; i < n; ++i) y[i] += alpha * x[i];
}

void scale_f32(float* y, float alpha, int64_t n) {
  const __m256 a = _mm256_set1_ps(alpha);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(a, _mm256_loadu_ps(y + i)));
  for (; i < n; ++i) y[i] *= alpha;
}

void bf16_to_f32(float* dst, const uint16_t* src, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, Bf16::load(src + i));
  for (; i < n; ++i) dst[i] = Bf16::one(src[i]);
}

void f16_to_f32(float* dst, const uint16_t* src, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, F16::load(src + i));
  for (; i < n; ++i) dst[i] = F16::one(src[i]);
}

}  // namespace tpp::kernels::avx2

namespace tpp::kernels::avx2 {

// The attention step is latency-bound on exp; AVX2 reuses its vector dot and
// axpy through the same loop as the scalar reference, with a local exp.
void attn_step_f32(float* acc, float* m, float* l, const float* q, int G, int k, const void* Kb, const void* Vb,
                   int64_t stride, int64_t n, float scale, float softcap) {
  // Rows of k floats, stride bytes apart.
  const auto* K = static_cast<const float*>(Kb);
  const auto* V = static_cast<const float*>(Vb);
  stride /= int64_t(sizeof(float));
  constexpr int64_t kTile = 64;
  float s[kTile];
  for (int g = 0; g < G; ++g) {
    const float* qg = q + g * k;
    float* ag = acc + g * k;
    for (int64_t p0 = 0; p0 < n; p0 += kTile) {
      const int64_t np = n - p0 < kTile ? n - p0 : kTile;
      float mx = m[g];
      for (int64_t p = 0; p < np; ++p) {
        float v = dot_f32(qg, K + (p0 + p) * stride, k) * scale;
        if (softcap > 0) v = softcap * __builtin_tanhf(v / softcap);
        s[p] = v;
        mx = v > mx ? v : mx;
      }
      const float c = __builtin_expf(m[g] - mx);
      l[g] *= c;
      scale_f32(ag, c, k);
      for (int64_t p = 0; p < np; ++p) {
        const float e = __builtin_expf(s[p] - mx);
        l[g] += e;
        axpy_f32(ag, e, V + (p0 + p) * stride, k);
      }
      m[g] = mx;
    }
  }
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
  static inline __attribute__((always_inline)) void load(const unsigned char* b, __m256* v) {
#pragma GCC unroll 4
    for (int i = 0; i < 4; ++i)
      v[i] = _mm256_cvtepi32_ps(
          _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(b + 2 + 8 * i))));
  }
};
struct Q4 {
  static constexpr int kBytes = 18;
  static inline __attribute__((always_inline)) void load(const unsigned char* b, __m256* v) {
    const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 2));
    const __m128i mask = _mm_set1_epi8(15);
    const __m128i lo = _mm_and_si128(q, mask), hi = _mm_and_si128(_mm_srli_epi16(q, 4), mask);
    const __m256i eight = _mm256_set1_epi32(8);
    v[0] = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_cvtepu8_epi32(lo), eight));
    v[1] = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_cvtepu8_epi32(_mm_srli_si128(lo, 8)), eight));
    v[2] = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_cvtepu8_epi32(hi), eight));
    v[3] = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_cvtepu8_epi32(_mm_srli_si128(hi, 8)), eight));
  }
};

template <class Q, int MR>
inline __attribute__((always_inline)) void qtile(float* y, const float* x, const unsigned char* w, int64_t nb,
                                                 int64_t row_bytes) {
  __m256 acc[MR];
#pragma GCC unroll 4
  for (int j = 0; j < MR; ++j) acc[j] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    __m256 xv[4];
#pragma GCC unroll 4
    for (int i = 0; i < 4; ++i) xv[i] = _mm256_loadu_ps(x + b * 32 + 8 * i);
#pragma GCC unroll 4
    for (int j = 0; j < MR; ++j) {
      const unsigned char* blk = w + j * row_bytes + b * Q::kBytes;
      _mm_prefetch(reinterpret_cast<const char*>(blk + MR * row_bytes), _MM_HINT_T0);  // the next tile's row
      __m256 v[4];
      Q::load(blk, v);
      const __m256 s = _mm256_fmadd_ps(v[0], xv[0], _mm256_fmadd_ps(v[1], xv[1], _mm256_fmadd_ps(v[2], xv[2],
                                                                                             _mm256_mul_ps(v[3], xv[3]))));
      acc[j] = _mm256_fmadd_ps(_mm256_set1_ps(block_scale(blk)), s, acc[j]);
    }
  }
#pragma GCC unroll 4
  for (int j = 0; j < MR; ++j) y[j] = hsum(acc[j]);
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
    __m256 v[4];
    Q::load(blk, v);
    const __m256 d = _mm256_set1_ps(block_scale(blk));
#pragma GCC unroll 4
    for (int i = 0; i < 4; ++i) _mm256_storeu_ps(dst + b * 32 + 8 * i, _mm256_mul_ps(v[i], d));
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

extern const char compiled_features[] =
#include "tpp/kernels/compiled_features.inc"
    ;

}  // namespace tpp::kernels::avx2
