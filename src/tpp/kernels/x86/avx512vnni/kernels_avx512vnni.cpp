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

template <bool kQ8>
struct Layout {
  static constexpr int64_t kBlockBytes = 32 + (kQ8 ? 512 : 256);
  static constexpr float kOff = kQ8 ? 128.0f : 8.0f;
};

// Rows n .. n+NR of y for G neighbouring groups of 16 weight rows (lanes in
// mask[g]). Each broadcast of four activation bytes feeds G vpdpbusd: with
// G = 2 and 4 tokens, 0.75 loads per dot product (q8_0) instead of 1.25.
// Decode (one row) takes G = 4: four weight streams in flight.
template <bool kQ8, int G, int NR>
inline __attribute__((always_inline)) void tile(float* y, const int8_t* q, const float* d, const float* s,
                                                const uint8_t* group, int64_t nb, int64_t K, int64_t ldy,
                                                const __mmask16* mask) {
  using L = Layout<kQ8>;
  const int64_t group_bytes = nb * L::kBlockBytes;
  __m512 acc[G][NR];
#pragma GCC unroll 4
  for (int g = 0; g < G; ++g)
#pragma GCC unroll 4
    for (int i = 0; i < NR; ++i) acc[g][i] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk[G];
    __m512 dw[G];
    __m512i dot[G][NR];
#pragma GCC unroll 4
    for (int g = 0; g < G; ++g) {
      blk[g] = group + g * group_bytes + b * L::kBlockBytes;
      if constexpr (NR == 1) _mm_prefetch(reinterpret_cast<const char*>(blk[g] + 8 * L::kBlockBytes), _MM_HINT_T0);
      dw[g] = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk[g])));
#pragma GCC unroll 4
      for (int i = 0; i < NR; ++i) dot[g][i] = _mm512_setzero_si512();
    }
    // Chunk j of the block: k = 4j .. 4j+3 of every row. The integer sums
    // are exact, so the order of the chunks does not matter.
    auto step = [&](const __m512i* wv, int j) __attribute__((always_inline)) {
#pragma GCC unroll 4
      for (int i = 0; i < NR; ++i) {
        int32_t four;
        __builtin_memcpy(&four, q + i * K + 32 * b + 4 * j, 4);
        const __m512i xb = _mm512_set1_epi32(four);
#pragma GCC unroll 4
        for (int g = 0; g < G; ++g) dot[g][i] = _mm512_dpbusd_epi32(dot[g][i], wv[g], xb);
      }
    };
    if constexpr (kQ8) {
#pragma GCC unroll 8
      for (int j = 0; j < 8; ++j) {
        __m512i wv[G];
#pragma GCC unroll 4
        for (int g = 0; g < G; ++g) wv[g] = _mm512_loadu_si512(blk[g] + 32 + 64 * j);
        step(wv, j);
      }
    } else {
      const __m512i low = _mm512_set1_epi8(15);
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j) {
        __m512i lo[G], hi[G];
#pragma GCC unroll 4
        for (int g = 0; g < G; ++g) {
          const __m512i v = _mm512_loadu_si512(blk[g] + 32 + 64 * j);
          lo[g] = _mm512_and_si512(v, low);
          hi[g] = _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
        }
        step(lo, j);
        step(hi, j + 4);
      }
    }
#pragma GCC unroll 4
    for (int g = 0; g < G; ++g)
#pragma GCC unroll 4
      for (int i = 0; i < NR; ++i) {
        const int64_t at = i * nb + b;
        const __m512 inner =
            _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot[g][i]), _mm512_set1_ps(d[at]), _mm512_set1_ps(-L::kOff * s[at]));
        acc[g][i] = _mm512_fmadd_ps(dw[g], inner, acc[g][i]);
      }
  }
#pragma GCC unroll 4
  for (int g = 0; g < G; ++g)
#pragma GCC unroll 4
    for (int i = 0; i < NR; ++i) _mm512_mask_storeu_ps(y + 16 * g + i * ldy, mask[g], acc[g][i]);
}

// All rows of x against G groups starting at group.
template <bool kQ8, int G>
void groups(float* y, const int8_t* q, const float* d, const float* s, const uint8_t* group, int64_t N, int64_t nb,
            int64_t K, int64_t ldy, const __mmask16* mask) {
  int64_t n = 0;
  for (; n + 4 <= N; n += 4) tile<kQ8, G, 4>(y + n * ldy, q + n * K, d + n * nb, s + n * nb, group, nb, K, ldy, mask);
  switch (N - n) {
    case 3: tile<kQ8, G, 3>(y + n * ldy, q + n * K, d + n * nb, s + n * nb, group, nb, K, ldy, mask); break;
    case 2: tile<kQ8, G, 2>(y + n * ldy, q + n * K, d + n * nb, s + n * nb, group, nb, K, ldy, mask); break;
    case 1: tile<kQ8, G, 1>(y + n * ldy, q + n * K, d + n * nb, s + n * nb, group, nb, K, ldy, mask); break;
    default: break;
  }
}

template <bool kQ8>
void matmul_packed(float* y, const int8_t* q, const float* d, const float* s, const void* w, int64_t N,
                   int64_t K, int64_t m_begin, int64_t m_end, int64_t ldy) {
  using L = Layout<kQ8>;
  const int64_t nb = K / 32;
  const auto* base = static_cast<const uint8_t*>(w);
  auto mask_of = [&](int64_t g) {
    const int64_t lo = m_begin > 16 * g ? m_begin - 16 * g : 0;
    const int64_t hi = m_end < 16 * g + 16 ? m_end - 16 * g : 16;
    return __mmask16(((1u << hi) - 1u) & ~((1u << lo) - 1u));
  };
  const int64_t g_end = (m_end + 15) / 16;
  for (int64_t g = m_begin / 16; g < g_end;) {
    const __mmask16 mask[2] = {mask_of(g), g + 1 < g_end ? mask_of(g + 1) : __mmask16(0)};
    const uint8_t* group = base + g * nb * L::kBlockBytes;
    if (N == 1 && g + 3 < g_end) {
      const __mmask16 mask4[4] = {mask_of(g), mask_of(g + 1), mask_of(g + 2), mask_of(g + 3)};
      groups<kQ8, 4>(y + 16 * g, q, d, s, group, N, nb, K, ldy, mask4);
      g += 4;
    } else if (g + 1 < g_end) {
      groups<kQ8, 2>(y + 16 * g, q, d, s, group, N, nb, K, ldy, mask);
      g += 2;
    } else {
      groups<kQ8, 1>(y + 16 * g, q, d, s, group, N, nb, K, ldy, mask);
      g += 1;
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
