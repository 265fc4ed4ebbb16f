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
// Decode and small batches take G = 4: four weight streams in flight. Tiles
// of one or two rows prefetch the same block of the next tile's groups (the
// next bytes of a worker's contiguous range: with K = 576 a group is only 18
// blocks, so a prefetch within the group would leave its start cold); larger
// tiles, which reread their groups for every rows of x, 8 blocks ahead.
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
      _mm_prefetch(reinterpret_cast<const char*>(blk[g] + (NR <= 2 ? G * group_bytes : 8 * L::kBlockBytes)),
                   _MM_HINT_T0);
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

// The tiles of y[0:N, m_begin:m_end): tile.template operator()<G, NR>(n, g,
// mask) computes rows n .. n + NR of x against the G groups of 16 weight
// rows from group g (lanes outside [m_begin, m_end) masked off). Two groups
// per tile (each activation broadcast feeds two vpdpbusd), four rows of x at
// a time. few_rows: up to this many rows of x take four groups two rows at a time
// (more weight streams in flight for the decode steps of a small batch);
// 1 keeps that to decode.
template <class Tile>
inline __attribute__((always_inline)) void for_tiles(int64_t N, int64_t m_begin, int64_t m_end, int64_t few_rows,
                                                     const Tile& tile) {
  auto mask_of = [&](int64_t g) {
    const int64_t lo = m_begin > 16 * g ? m_begin - 16 * g : 0;
    const int64_t hi = m_end < 16 * g + 16 ? m_end - 16 * g : 16;
    return __mmask16(((1u << hi) - 1u) & ~((1u << lo) - 1u));
  };
  auto rows = [&]<int G>(int64_t g, const __mmask16* mask) __attribute__((always_inline)) {
    int64_t n = 0;
    for (; n + 4 <= N; n += 4) tile.template operator()<G, 4>(n, g, mask);
    switch (N - n) {
      case 3: tile.template operator()<G, 3>(n, g, mask); break;
      case 2: tile.template operator()<G, 2>(n, g, mask); break;
      case 1: tile.template operator()<G, 1>(n, g, mask); break;
      default: break;
    }
  };
  // A few rows (decode steps of a small batch): four groups, two rows of x at a time.
  auto pairs = [&](int64_t g, const __mmask16* mask) __attribute__((always_inline)) {
    int64_t n = 0;
    for (; n + 2 <= N; n += 2) tile.template operator()<4, 2>(n, g, mask);
    if (n < N) tile.template operator()<4, 1>(n, g, mask);
  };
  const int64_t g_end = (m_end + 15) / 16;
  for (int64_t g = m_begin / 16; g < g_end;) {
    if (N <= few_rows && g + 3 < g_end) {
      const __mmask16 mask[4] = {mask_of(g), mask_of(g + 1), mask_of(g + 2), mask_of(g + 3)};
      pairs(g, mask);
      g += 4;
    } else if (g + 1 < g_end) {
      const __mmask16 mask[2] = {mask_of(g), mask_of(g + 1)};
      rows.template operator()<2>(g, mask);
      g += 2;
    } else {
      const __mmask16 mask[1] = {mask_of(g)};
      rows.template operator()<1>(g, mask);
      g += 1;
    }
  }
}

template <bool kQ8>
void matmul_packed(float* y, const int8_t* q, const float* d, const float* s, const void* w, int64_t N, int64_t K,
                   int64_t m_begin, int64_t m_end, int64_t ldy) {
  using L = Layout<kQ8>;
  const int64_t nb = K / 32;
  const auto* base = static_cast<const uint8_t*>(w);
  for_tiles(N, m_begin, m_end, 8, [&]<int G, int NR>(int64_t n, int64_t g, const __mmask16* mask) {
    tile<kQ8, G, NR>(y + n * ldy + 16 * g, q + n * K, d + n * nb, s + n * nb, base + g * nb * L::kBlockBytes, nb, K,
                     ldy, mask);
  });
}

// ---- K-quants, packed (tpp/kernels/packed.h) ----
//
// The same lanes as above: each 32-bit lane is one weight row. Per block of
// 32 the codes' dot products with the activations are exact int32 sums; a
// sub-block's sum is multiplied by the row's integer scale (vpmulld) and
// summed over the super-block as integers, and each super-block enters the
// f32 accumulator with the float operations of the scalar definition
// (tpp/kernels/scalar/kquants_int8_scalar.cpp) in its order, so each lane's
// result is the scalar one bit for bit.

// kHigh: the codes' bits above the nibble, in planes of 2-bit (q6_k) or
// 1-bit (q5_k) fields per byte; 0 for q4_k.
template <int kHigh>
struct KLayout {
  static constexpr int64_t kHead = kHigh == 2 ? 32 + 256 : 64 + 256;
  static constexpr int64_t kBlock = 256 + 64 * kHigh;
  static constexpr int64_t kSuper = kHead + 8 * kBlock;
};

// Chunk c's 64 codes (k = 4c .. 4c + 3 of 16 rows) of the block at blk.
template <int kHigh>
inline __attribute__((always_inline)) __m512i codes(const uint8_t* blk, int c) {
  const __m512i v = _mm512_loadu_si512(blk + 64 * (c % 4));
  const __m512i w = _mm512_and_si512(c < 4 ? v : _mm512_srli_epi16(v, 4), _mm512_set1_epi8(15));
  if constexpr (kHigh == 0) {
    return w;
  } else {
    // The field of chunk c, masked, then moved to bit 4 (the shifts never
    // carry a bit into the next byte).
    constexpr int kPer = 8 / kHigh;
    const int at = kHigh * (c % kPer);
    __m512i h = _mm512_loadu_si512(blk + 256 + 64 * (c / kPer));
    h = _mm512_and_si512(h, _mm512_set1_epi8(char(((1 << kHigh) - 1) << at)));
    if (at < 4) h = _mm512_slli_epi16(h, unsigned(4 - at));
    else if (at > 4) h = _mm512_srli_epi16(h, unsigned(at - 4));
    return _mm512_or_si512(w, h);
  }
}

template <int kHigh, int G, int NR>
inline __attribute__((always_inline)) void tile_k(float* y, const int8_t* q, const float* d, const int16_t* bsum,
                                                  const uint8_t* group, int64_t nb, int64_t K, int64_t ldy,
                                                  const __mmask16* mask) {
  using L = KLayout<kHigh>;
  constexpr bool kSix = kHigh == 2;
  const int64_t group_bytes = nb * L::kSuper;
  __m512 acc[G][NR];
#pragma GCC unroll 4
  for (int g = 0; g < G; ++g)
#pragma GCC unroll 4
    for (int i = 0; i < NR; ++i) acc[g][i] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* sb[G];
    __m512i isum[G][NR];
#pragma GCC unroll 4
    for (int g = 0; g < G; ++g) {
      sb[g] = group + g * group_bytes + b * L::kSuper;
#pragma GCC unroll 4
      for (int i = 0; i < NR; ++i) isum[g][i] = _mm512_setzero_si512();
    }
    const int8_t* xb = q + b * 256;
    const int16_t* bs = bsum + b * 16;
    // Sub-block `sub`: chunks c0 .. c1 of block j, into isum with its scales.
    auto sub_block = [&](int64_t j, int c0, int c1, int sub) __attribute__((always_inline)) {
      __m512i dot[G][NR];
#pragma GCC unroll 4
      for (int g = 0; g < G; ++g)
#pragma GCC unroll 4
        for (int i = 0; i < NR; ++i) dot[g][i] = _mm512_setzero_si512();
#pragma GCC unroll 8
      for (int c = c0; c < c1; ++c) {
        __m512i wv[G];
#pragma GCC unroll 4
        for (int g = 0; g < G; ++g) {
          const uint8_t* blk = sb[g] + L::kHead + j * L::kBlock;
          if (NR == 1 && c % 4 == 0) _mm_prefetch(reinterpret_cast<const char*>(blk + 64 * c + 2048), _MM_HINT_T0);
          wv[g] = codes<kHigh>(blk, c);
        }
#pragma GCC unroll 4
        for (int i = 0; i < NR; ++i) {
          int32_t four;
          __builtin_memcpy(&four, xb + i * K + 32 * j + 4 * c, 4);
          const __m512i xv = _mm512_set1_epi32(four);
#pragma GCC unroll 4
          for (int g = 0; g < G; ++g) dot[g][i] = _mm512_dpbusd_epi32(dot[g][i], wv[g], xv);
        }
      }
#pragma GCC unroll 4
      for (int g = 0; g < G; ++g) {
        const auto* at = reinterpret_cast<const __m128i*>(sb[g] + (kSix ? 32 : 64) + 16 * sub);
        const __m512i sc = kSix ? _mm512_cvtepi8_epi32(_mm_loadu_si128(at)) : _mm512_cvtepu8_epi32(_mm_loadu_si128(at));
#pragma GCC unroll 4
        for (int i = 0; i < NR; ++i) {
          __m512i v = dot[g][i];
          if constexpr (kSix) v = _mm512_sub_epi32(v, _mm512_set1_epi32(32 * bs[i * (K / 16) + sub]));
          isum[g][i] = _mm512_add_epi32(isum[g][i], _mm512_mullo_epi32(v, sc));
        }
      }
    };
    for (int64_t j = 0; j < 8; ++j) {
      if constexpr (kSix) {
        sub_block(j, 0, 4, int(2 * j));
        sub_block(j, 4, 8, int(2 * j + 1));
      } else {
        sub_block(j, 0, 8, int(j));
      }
    }
    // The scalar definition's float operations: d_x * (d * isum - dmin * msum),
    // the subtraction and the accumulation fused.
#pragma GCC unroll 4
    for (int g = 0; g < G; ++g) {
      const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(sb[g])));
#pragma GCC unroll 4
      for (int i = 0; i < NR; ++i) {
        __m512 t = _mm512_mul_ps(dw, _mm512_cvtepi32_ps(isum[g][i]));
        if constexpr (!kSix) {
          const __m512 dm = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(sb[g] + 32)));
          const int16_t* bi = bs + i * (K / 16);
          __m512i msum = _mm512_setzero_si512();
          for (int j = 0; j < 8; ++j) {
            const auto* mn = reinterpret_cast<const __m128i*>(sb[g] + 192 + 16 * j);
            msum = _mm512_add_epi32(msum, _mm512_mullo_epi32(_mm512_cvtepu8_epi32(_mm_loadu_si128(mn)),
                                                             _mm512_set1_epi32(bi[2 * j] + bi[2 * j + 1])));
          }
          t = _mm512_fnmadd_ps(dm, _mm512_cvtepi32_ps(msum), t);
        }
        acc[g][i] = _mm512_fmadd_ps(_mm512_set1_ps(d[i * nb + b]), t, acc[g][i]);
      }
    }
  }
#pragma GCC unroll 4
  for (int g = 0; g < G; ++g)
#pragma GCC unroll 4
    for (int i = 0; i < NR; ++i) _mm512_mask_storeu_ps(y + 16 * g + i * ldy, mask[g], acc[g][i]);
}

template <int kHigh>
void matmul_k_packed(float* y, const int8_t* q, const float* d, const int16_t* bsum, const void* w, int64_t N,
                     int64_t K, int64_t m_begin, int64_t m_end, int64_t ldy) {
  using L = KLayout<kHigh>;
  const int64_t nb = K / 256;
  const auto* base = static_cast<const uint8_t*>(w);
  // Q6_K's tile holds more registers: two rows of four groups spill there
  // (measured 5-7 % slower at 8 rows), so it keeps four groups to decode.
  for_tiles(N, m_begin, m_end, kHigh == 2 ? 1 : 8, [&]<int G, int NR>(int64_t n, int64_t g, const __mmask16* mask) {
    tile_k<kHigh, G, NR>(y + n * ldy + 16 * g, q + n * K, d + n * nb, bsum + n * (K / 16), base + g * nb * L::kSuper,
                          nb, K, ldy, mask);
  });
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

void matmul_q4_k_packed(float* y, const int8_t* q, const float* d, const int16_t* bsum, const void* w, int64_t N,
                        int64_t K, int64_t m_begin, int64_t m_end, int64_t ldy) {
  matmul_k_packed<0>(y, q, d, bsum, w, N, K, m_begin, m_end, ldy);
}
void matmul_q5_k_packed(float* y, const int8_t* q, const float* d, const int16_t* bsum, const void* w, int64_t N,
                        int64_t K, int64_t m_begin, int64_t m_end, int64_t ldy) {
  matmul_k_packed<1>(y, q, d, bsum, w, N, K, m_begin, m_end, ldy);
}
void matmul_q6_k_packed(float* y, const int8_t* q, const float* d, const int16_t* bsum, const void* w, int64_t N,
                        int64_t K, int64_t m_begin, int64_t m_end, int64_t ldy) {
  matmul_k_packed<2>(y, q, d, bsum, w, N, K, m_begin, m_end, ldy);
}

extern const char compiled_features[] =
#include "tpp/kernels/compiled_features.inc"
    ;

}  // namespace tpp::kernels::avx512vnni
