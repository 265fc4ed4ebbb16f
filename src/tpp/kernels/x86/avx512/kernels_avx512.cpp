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
#pragma GCC unroll 8
  for (int i = 0; i < NR; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < MR; ++j) y[i * ldy + j] = _mm512_reduce_add_ps(acc[i][j]);
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
