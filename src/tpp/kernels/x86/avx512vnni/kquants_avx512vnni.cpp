// K-quant matmuls on Q8_K activations with AVX-512 VNNI (definitions in
// tpp/kernels/api.h, layouts in tpp/kernels/kquants.h). Includes no STL and no
// shared inline header (see kernels_avx512.cpp).
//
// Per weight row and super-block of 256, the integer weights are unpacked
// once into four vectors of 64 consecutive bytes, shared by every row of x.
// vpdpbusd sums four u8 x s8 products per int32 lane, so each lane belongs
// to one sub-block; the lanes are multiplied by their sub-block's integer
// scale (vpmulld) and summed exactly as integers, and each super-block's sum
// enters a float accumulator once, scaled by d_x * d. The minimum (Q4_K,
// Q5_K) and offset (Q6_K) terms come from the activations' sums per 16.
#include "tpp/kernels/x86/avx512vnni/kernels_avx512vnni.h"

#include <immintrin.h>

namespace tpp::kernels::avx512vnni {
namespace {

constexpr int64_t kQK = 256;

inline float half(const unsigned char* p) {
  unsigned short h;
  __builtin_memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

// Q4_K / Q5_K: the 12 packed bytes of 6-bit scales and minimums as 16 int32
// lanes, sc_0 .. sc_7 then mn_0 .. mn_7 (kquants.h gives the packing).
inline __m512i scales_mins(const unsigned char* s) {
  unsigned w0, w1, w2;
  __builtin_memcpy(&w0, s, 4);
  __builtin_memcpy(&w1, s + 4, 4);
  __builtin_memcpy(&w2, s + 8, 4);
  const unsigned sc_lo = w0 & 0x3f3f3f3fu, sc_hi = (w2 & 0x0f0f0f0fu) | ((w0 >> 2) & 0x30303030u);
  const unsigned mn_lo = w1 & 0x3f3f3f3fu, mn_hi = ((w2 >> 4) & 0x0f0f0f0fu) | ((w1 >> 2) & 0x30303030u);
  return _mm512_cvtepu8_epi32(_mm_setr_epi32(int(sc_lo), int(sc_hi), int(mn_lo), int(mn_hi)));
}

// Lane i of the result holds lane idx(i) of v; idx(i) = base + i / per.
inline __attribute__((always_inline)) __m512i spread(__m512i v, int base, int per) {
  alignas(64) int idx[16];
  for (int i = 0; i < 16; ++i) idx[i] = base + i / per;
  return _mm512_permutexvar_epi32(_mm512_load_si512(idx), v);
}

// Each byte's bits [shift, shift + width) moved to bits 4 .. 4 + width: the
// low 256 bits of e shifted by s0, the high 256 by s1 (e: one 32-byte row
// of high bits repeated in both halves).
inline __m512i high_bits(__m512i e, int s0, int s1, int mask) {
  const __m512i count = _mm512_setr_epi64(s0, s0, s0, s0, s1, s1, s1, s1);
  return _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi64(e, count), _mm512_set1_epi8(char(mask))), 4);
}

// Q4_K (kFive = false) and Q5_K for NR rows of x.
template <bool kFive, int NR>
void rows_qk(float* y, const signed char* q, const float* d, const short* bsum, const unsigned char* w, int64_t K,
             int64_t m_begin, int64_t m_end, int64_t ldy) {
  constexpr int64_t kBytes = kFive ? 176 : 144;
  const int64_t nb = K / kQK;
  const __m512i nib = _mm512_set1_epi8(15);
  for (int64_t m = m_begin; m < m_end; ++m) {
    const unsigned char* row = w + m * nb * kBytes;
    __m512 acc[NR];
#pragma GCC unroll 4
    for (int r = 0; r < NR; ++r) acc[r] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
      const unsigned char* blk = row + b * kBytes;
      const unsigned char* qs = blk + (kFive ? 48 : 16);
      // Vector v holds weights 64v .. 64v + 63: sub-blocks 2v, 2v + 1.
      __m512i wv[4];
      for (int h = 0; h < 2; ++h) {
        const __m512i v = _mm512_loadu_si512(qs + 64 * h);
        __m512i lo = _mm512_and_si512(v, nib), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), nib);
        if constexpr (kFive) {
          const __m512i e = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 16)));
          lo = _mm512_or_si512(lo, high_bits(e, 4 * h, 4 * h + 2, 1));
          hi = _mm512_or_si512(hi, high_bits(e, 4 * h + 1, 4 * h + 3, 1));
        }
        wv[2 * h] = _mm512_shuffle_i64x2(lo, hi, 0x44);
        wv[2 * h + 1] = _mm512_shuffle_i64x2(lo, hi, 0xEE);
      }
      const __m512i sm = scales_mins(blk + 4);
      __m512i sc[4];
#pragma GCC unroll 4
      for (int v = 0; v < 4; ++v) sc[v] = spread(sm, 2 * v, 8);
      const __m512i mn = spread(sm, 8, 2);  // mn_j on the lanes of the activations' sums per 16
      const float dw = half(blk), dmin = half(blk + 2);
#pragma GCC unroll 4
      for (int r = 0; r < NR; ++r) {
        const signed char* x = q + r * K + b * kQK;
        __m512i isum = _mm512_setzero_si512();
#pragma GCC unroll 4
        for (int v = 0; v < 4; ++v) {
          const __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wv[v], _mm512_loadu_si512(x + 64 * v));
          isum = _mm512_add_epi32(isum, _mm512_mullo_epi32(dot, sc[v]));
        }
        const __m512i bs =
            _mm512_cvtepi16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(bsum + r * (K / 16) + b * 16)));
        const float dx = d[r * nb + b];
        acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_set1_ps(dx * dw), acc[r]);
        acc[r] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(_mm512_mullo_epi32(bs, mn)), _mm512_set1_ps(dx * dmin), acc[r]);
      }
    }
#pragma GCC unroll 4
    for (int r = 0; r < NR; ++r) y[r * ldy + m] = _mm512_reduce_add_ps(acc[r]);
  }
}

template <int NR>
void rows_q6k(float* y, const signed char* q, const float* d, const short* bsum, const unsigned char* w, int64_t K,
              int64_t m_begin, int64_t m_end, int64_t ldy) {
  const int64_t nb = K / kQK;
  const __m512i nib = _mm512_set1_epi8(15);
  for (int64_t m = m_begin; m < m_end; ++m) {
    const unsigned char* row = w + m * nb * 210;
    __m512 acc[NR];
#pragma GCC unroll 4
    for (int r = 0; r < NR; ++r) acc[r] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
      const unsigned char* blk = row + b * 210;
      // Vector v holds weights 64v .. 64v + 63: sub-blocks of 16 4v .. 4v + 3.
      __m512i wv[4];
      for (int h = 0; h < 2; ++h) {
        const __m512i a = _mm512_loadu_si512(blk + 64 * h);
        const __m512i e =
            _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 128 + 32 * h)));
        wv[2 * h] = _mm512_or_si512(_mm512_and_si512(a, nib), high_bits(e, 0, 2, 3));
        wv[2 * h + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(a, 4), nib), high_bits(e, 4, 6, 3));
      }
      const __m512i scl = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 192)));
      __m512i sc[4];
#pragma GCC unroll 4
      for (int v = 0; v < 4; ++v) sc[v] = spread(scl, 4 * v, 4);
      const float dw = half(blk + 208);
#pragma GCC unroll 4
      for (int r = 0; r < NR; ++r) {
        const signed char* x = q + r * K + b * kQK;
        __m512i isum = _mm512_setzero_si512();
#pragma GCC unroll 4
        for (int v = 0; v < 4; ++v) {
          const __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wv[v], _mm512_loadu_si512(x + 64 * v));
          isum = _mm512_add_epi32(isum, _mm512_mullo_epi32(dot, sc[v]));
        }
        const __m512i bs =
            _mm512_cvtepi16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(bsum + r * (K / 16) + b * 16)));
        // The weights are stored as q + 32: subtract 32 * sc_j * bsum_j.
        isum = _mm512_sub_epi32(isum, _mm512_slli_epi32(_mm512_mullo_epi32(bs, scl), 5));
        acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_set1_ps(d[r * nb + b] * dw), acc[r]);
      }
    }
#pragma GCC unroll 4
    for (int r = 0; r < NR; ++r) y[r * ldy + m] = _mm512_reduce_add_ps(acc[r]);
  }
}

// Rows of x three at a time (the weights unpacked once per three).
template <class F1, class F2, class F3>
void by_rows(float* y, const int8_t* q, const float* d, const int16_t* bsum, const void* w, int64_t N, int64_t K,
             int64_t m_begin, int64_t m_end, int64_t ldy, F1 one, F2 two, F3 three) {
  const auto* qq = reinterpret_cast<const signed char*>(q);
  const auto* bs = reinterpret_cast<const short*>(bsum);
  const auto* wb = static_cast<const unsigned char*>(w);
  const int64_t nb = K / kQK;
  for (int64_t n = 0; n < N; n += 3) {
    const int64_t rows = N - n < 3 ? N - n : 3;
    float* yn = y + n * ldy;
    const signed char* qn = qq + n * K;
    const float* dn = d + n * nb;
    const short* bn = bs + n * (K / 16);
    if (rows == 3) three(yn, qn, dn, bn, wb, K, m_begin, m_end, ldy);
    else if (rows == 2) two(yn, qn, dn, bn, wb, K, m_begin, m_end, ldy);
    else one(yn, qn, dn, bn, wb, K, m_begin, m_end, ldy);
  }
}

}  // namespace

void quantize_q8_k(int8_t* q, float* d, int16_t* bsum, const float* x, int64_t N, int64_t K) {
  const __m512 sign = _mm512_set1_ps(-0.0f);
  for (int64_t b = 0; b < N * K / kQK; ++b) {
    const float* xb = x + kQK * b;
    __m512 mx = _mm512_setzero_ps();
    for (int j = 0; j < 16; ++j) mx = _mm512_max_ps(mx, _mm512_andnot_ps(sign, _mm512_loadu_ps(xb + 16 * j)));
    const float db = _mm512_reduce_max_ps(mx) / 127.0f, id = db != 0.0f ? 1.0f / db : 0.0f;
    const __m512 vid = _mm512_set1_ps(id);
    for (int j = 0; j < 16; ++j) {
      // Round to nearest even (the default rounding mode): nearbyint.
      const __m512i v = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(xb + 16 * j), vid));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(q + kQK * b + 16 * j), _mm512_cvtsepi32_epi8(v));
      bsum[16 * b + j] = static_cast<int16_t>(_mm512_reduce_add_epi32(v));
    }
    d[b] = db;
  }
}

void matmul_q4_k_q8k(float* y, const int8_t* q, const float* d, const int16_t* bsum, const void* w, int64_t N,
                     int64_t K, int64_t m_begin, int64_t m_end, int64_t ldy) {
  by_rows(y, q, d, bsum, w, N, K, m_begin, m_end, ldy, rows_qk<false, 1>, rows_qk<false, 2>, rows_qk<false, 3>);
}

void matmul_q5_k_q8k(float* y, const int8_t* q, const float* d, const int16_t* bsum, const void* w, int64_t N,
                     int64_t K, int64_t m_begin, int64_t m_end, int64_t ldy) {
  by_rows(y, q, d, bsum, w, N, K, m_begin, m_end, ldy, rows_qk<true, 1>, rows_qk<true, 2>, rows_qk<true, 3>);
}

void matmul_q6_k_q8k(float* y, const int8_t* q, const float* d, const int16_t* bsum, const void* w, int64_t N,
                     int64_t K, int64_t m_begin, int64_t m_end, int64_t ldy) {
  by_rows(y, q, d, bsum, w, N, K, m_begin, m_end, ldy, rows_q6k<1>, rows_q6k<2>, rows_q6k<3>);
}

}  // namespace tpp::kernels::avx512vnni
