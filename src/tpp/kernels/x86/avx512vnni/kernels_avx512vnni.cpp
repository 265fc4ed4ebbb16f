// Int8 kernels on AVX-512 VNNI (vpdpbusd: 64 u8 x s8 products summed into 16
// int32 lanes per instruction). Includes no STL and no shared inline header
// (see kernels_avx512.cpp).
//
// The packed weights (tpp/kernels/packed.h) put one weight row in each 32-bit
// lane: a chunk of 64 bytes holds four consecutive k of 16 rows, so
// vpdpbusd(chunk, broadcast of four activation bytes) advances all 16 rows by
// four k. Eight chunks are one block of 32; its int32 sums are scaled per
// lane by the rows' f16 scales, so no horizontal sum is ever needed. The
// arithmetic per lane is the scalar reference's, in its order (fma for fma),
// so the results are bit-identical to it.
#include "tpp/kernels/x86/avx512vnni/kernels_avx512vnni.h"

#include <immintrin.h>

namespace tpp::kernels::avx512vnni {

void quantize_q8(int8_t* q, float* d, float* s, const float* x, int64_t N, int64_t K) {
  const __m512 sign = _mm512_set1_ps(-0.0f);
  for (int64_t b = 0; b < N * K / 32; ++b) {
    const __m512 x0 = _mm512_loadu_ps(x + 32 * b), x1 = _mm512_loadu_ps(x + 32 * b + 16);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_andnot_ps(sign, x0), _mm512_andnot_ps(sign, x1)));
    const float db = amax / 127.0f, id = db != 0.0f ? 1.0f / db : 0.0f;
    const __m512 vid = _mm512_set1_ps(id);
    // Round to nearest even (the default rounding mode): nearbyint.
    const __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(x0, vid)), q1 = _mm512_cvtps_epi32(_mm512_mul_ps(x1, vid));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 32 * b), _mm512_cvtsepi32_epi8(q0));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 32 * b + 16), _mm512_cvtsepi32_epi8(q1));
    d[b] = db;
    s[b] = db * float(_mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1)));
  }
}

namespace {

// dot += a (u8) x four s8 at p broadcast to every lane. Written out because
// GCC does not fold the broadcast load into vpdpbusd's memory operand, and a
// separate vpbroadcastd per vpdpbusd would halve the instruction budget.
inline __attribute__((always_inline)) __m512i dpbusd_bcast(__m512i dot, __m512i a, const int8_t* p) {
  __asm__("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(dot) : "v"(a), "m"(*reinterpret_cast<const int32_t*>(p)));
  return dot;
}

template <bool kQ8>
struct Layout {
  static constexpr int64_t kBlockBytes = 32 + (kQ8 ? 512 : 256);
  static constexpr float kOff = kQ8 ? 128.0f : 8.0f;
  // The eight chunks of one block's integers, unsigned.
  static inline __attribute__((always_inline)) void load(__m512i* wv, const uint8_t* ints) {
    if constexpr (kQ8) {
#pragma GCC unroll 8
      for (int j = 0; j < 8; ++j) wv[j] = _mm512_loadu_si512(ints + 64 * j);
    } else {
      const __m512i low = _mm512_set1_epi8(15);
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j) {
        const __m512i v = _mm512_loadu_si512(ints + 64 * j);
        wv[j] = _mm512_and_si512(v, low);
        wv[j + 4] = _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
      }
    }
  }
};

// Rows n .. n+NR of y for the 16 weight rows of one group (lanes in `mask`).
template <bool kQ8, int NR>
inline __attribute__((always_inline)) void tile(float* y, const int8_t* q, const float* d, const float* s,
                                                const uint8_t* group, int64_t nb, int64_t K, int64_t ldy,
                                                __mmask16 mask) {
  using L = Layout<kQ8>;
  __m512 acc[NR];
#pragma GCC unroll 4
  for (int i = 0; i < NR; ++i) acc[i] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = group + b * L::kBlockBytes;
    if constexpr (NR == 1) _mm_prefetch(reinterpret_cast<const char*>(blk + 8 * L::kBlockBytes), _MM_HINT_T0);
    const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk)));
    __m512i wv[8];
    L::load(wv, blk + 32);
#pragma GCC unroll 4
    for (int i = 0; i < NR; ++i) {
      const int8_t* xq = q + i * K + 32 * b;
      // One chain per x row: the rows (and the next blocks) keep the
      // pipelines busy while each chain waits on its previous vpdpbusd.
      __m512i dot = _mm512_setzero_si512();
#pragma GCC unroll 8
      for (int j = 0; j < 8; ++j) dot = dpbusd_bcast(dot, wv[j], xq + 4 * j);
      const __m512 dotf = _mm512_cvtepi32_ps(dot);
      const int64_t at = i * nb + b;
      const __m512 inner = _mm512_fmadd_ps(dotf, _mm512_set1_ps(d[at]), _mm512_set1_ps(-L::kOff * s[at]));
      acc[i] = _mm512_fmadd_ps(dw, inner, acc[i]);
    }
  }
#pragma GCC unroll 4
  for (int i = 0; i < NR; ++i) _mm512_mask_storeu_ps(y + i * ldy, mask, acc[i]);
}

template <bool kQ8>
void matmul_packed(float* y, const int8_t* q, const float* d, const float* s, const void* w, int64_t N,
                   int64_t K, int64_t m_begin, int64_t m_end, int64_t ldy) {
  using L = Layout<kQ8>;
  const int64_t nb = K / 32;
  const auto* base = static_cast<const uint8_t*>(w);
  for (int64_t g = m_begin / 16; g * 16 < m_end; ++g) {
    const int64_t lo = m_begin > 16 * g ? m_begin - 16 * g : 0;
    const int64_t hi = m_end < 16 * g + 16 ? m_end - 16 * g : 16;
    const __mmask16 mask = __mmask16(((1u << hi) - 1u) & ~((1u << lo) - 1u));
    const uint8_t* group = base + g * nb * L::kBlockBytes;
    float* yg = y + 16 * g;
    int64_t n = 0;
    for (; n + 4 <= N; n += 4) tile<kQ8, 4>(yg + n * ldy, q + n * K, d + n * nb, s + n * nb, group, nb, K, ldy, mask);
    switch (N - n) {
      case 3: tile<kQ8, 3>(yg + n * ldy, q + n * K, d + n * nb, s + n * nb, group, nb, K, ldy, mask); break;
      case 2: tile<kQ8, 2>(yg + n * ldy, q + n * K, d + n * nb, s + n * nb, group, nb, K, ldy, mask); break;
      case 1: tile<kQ8, 1>(yg + n * ldy, q + n * K, d + n * nb, s + n * nb, group, nb, K, ldy, mask); break;
      default: break;
    }
  }
}

}  // namespace

void matmul_q8_0_packed(float* y, const int8_t* q, const float* d, const float* s, const void* w, int64_t N,
                        int64_t K, int64_t m_begin, int64_t m_end, int64_t ldy) {
  matmul_packed<true>(y, q, d, s, w, N, K, m_begin, m_end, ldy);
}
void matmul_q4_0_packed(float* y, const int8_t* q, const float* d, const float* s, const void* w, int64_t N,
                        int64_t K, int64_t m_begin, int64_t m_end, int64_t ldy) {
  matmul_packed<false>(y, q, d, s, w, N, K, m_begin, m_end, ldy);
}

extern const char compiled_features[] =
#include "tpp/kernels/compiled_features.inc"
    ;

}  // namespace tpp::kernels::avx512vnni
