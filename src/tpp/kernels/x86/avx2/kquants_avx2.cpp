// K-quant matmuls on Q8_K activations with AVX2 (definitions in
// tpp/kernels/api.h, layouts in tpp/kernels/kquants.h), for decode over the
// stored blocks. Includes no STL and no shared inline header (see
// kernels_avx2.cpp).
//
// AVX2 has no 8-bit dot product into int32; vpmaddubsw multiplies 32 u8
// codes by 32 s8 activations and adds neighbouring pairs into int16 (at most
// 2 * 63 * 127, no saturation), and vpmaddwd multiplies those pairs by the
// sub-block's integer scale and adds them into int32. So each super-block's
// sum of scale x (codes . activations) is exact, as in the scalar
// definition, whose float operations (in its order, fused where it fuses)
// finish each super-block: every output is the definition's bits.
#include "tpp/kernels/x86/avx2/kernels_avx2.h"

#include <immintrin.h>

namespace tpp::kernels::avx2 {
namespace {

constexpr int64_t kQK = 256;

inline float half(const unsigned char* p) {
  unsigned short h;
  __builtin_memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

inline int hsum(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  return _mm_cvtsi128_si32(s);
}

// Sub-block j's 6-bit scale and minimum from Q4_K's / Q5_K's 12 packed bytes.
inline void scale_min(int j, const unsigned char* s, int* sc, int* m) {
  if (j < 4) {
    *sc = s[j] & 63;
    *m = s[j + 4] & 63;
  } else {
    *sc = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4);
    *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

// sum over the 32 lanes of scale(lane) * codes * x, as int32 lanes.
inline __m256i dot_scaled(__m256i codes, const signed char* x, __m256i scale16) {
  const __m256i pairs = _mm256_maddubs_epi16(codes, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x)));
  return _mm256_madd_epi16(pairs, scale16);
}

// Q4_K (kFive = false) and Q5_K: weight 64c + l (+32) of a super-block is the
// low (high) nibble of qs[32c + l], with bit 2c (2c + 1) of qh[l] as its fifth.
template <bool kFive>
void matmul_qk(float* y, const signed char* q, const float* d, const short* bsum, const unsigned char* w, int64_t N,
               int64_t K, int64_t m_begin, int64_t m_end, int64_t ldy) {
  constexpr int64_t kBytes = kFive ? 176 : 144;
  const int64_t nb = K / kQK;
  const __m256i nib = _mm256_set1_epi8(15), one = _mm256_set1_epi8(1);
  for (int64_t m = m_begin; m < m_end; ++m) {
    const unsigned char* row = w + m * nb * kBytes;
    for (int64_t n = 0; n < N; ++n) {
      float acc = 0;
      for (int64_t b = 0; b < nb; ++b) {
        const unsigned char* blk = row + b * kBytes;
        const unsigned char* qs = blk + (kFive ? 48 : 16);
        const signed char* x = q + n * K + b * kQK;
        const short* bs = bsum + n * (K / 16) + b * 16;
        __m256i qh;
        if constexpr (kFive) qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 16));
        __m256i isum = _mm256_setzero_si256();
        int imin = 0;
        for (int c = 0; c < 4; ++c) {
          int sc0, m0, sc1, m1;
          scale_min(2 * c, blk + 4, &sc0, &m0);
          scale_min(2 * c + 1, blk + 4, &sc1, &m1);
          const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * c));
          __m256i lo = _mm256_and_si256(v, nib), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), nib);
          if constexpr (kFive) {
            // Bit 2c of each qh byte to bit 4 (masked after the shift, so no
            // bit of the neighbouring byte survives).
            lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * c), one), 4));
            hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * c + 1), one), 4));
          }
          isum = _mm256_add_epi32(isum, dot_scaled(lo, x + 64 * c, _mm256_set1_epi16(short(sc0))));
          isum = _mm256_add_epi32(isum, dot_scaled(hi, x + 64 * c + 32, _mm256_set1_epi16(short(sc1))));
          imin += m0 * (bs[4 * c] + bs[4 * c + 1]) + m1 * (bs[4 * c + 2] + bs[4 * c + 3]);
        }
        const float t = __builtin_fmaf(-half(blk + 2), float(imin), half(blk) * float(hsum(isum)));
        acc = __builtin_fmaf(d[n * nb + b], t, acc);
      }
      y[n * ldy + m] = acc;
    }
  }
}

}  // namespace

void quantize_q8_k(int8_t* q, float* d, int16_t* bsum, const float* x, int64_t N, int64_t K) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  for (int64_t b = 0; b < N * K / kQK; ++b) {
    const float* xb = x + kQK * b;
    __m256 mx = _mm256_setzero_ps();
    for (int j = 0; j < 32; ++j) mx = _mm256_max_ps(mx, _mm256_andnot_ps(sign, _mm256_loadu_ps(xb + 8 * j)));
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_shuffle_ps(m4, m4, 1));
    const float db = _mm_cvtss_f32(m4) / 127.0f, id = db != 0.0f ? 1.0f / db : 0.0f;
    const __m256 vid = _mm256_set1_ps(id);
    for (int j = 0; j < 16; ++j) {
      // Round to nearest even (the default rounding mode): nearbyint.
      alignas(32) int v[16];
      _mm256_store_si256(reinterpret_cast<__m256i*>(v),
                         _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(xb + 16 * j), vid)));
      _mm256_store_si256(reinterpret_cast<__m256i*>(v + 8),
                         _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(xb + 16 * j + 8), vid)));
      int sum = 0;
      for (int i = 0; i < 16; ++i) {
        q[kQK * b + 16 * j + i] = static_cast<int8_t>(v[i]);  // |v| <= 127: |x| <= max|x|
        sum += v[i];
      }
      bsum[16 * b + j] = static_cast<int16_t>(sum);
    }
    d[b] = db;
  }
}

void matmul_q4_k_q8k(float* y, const int8_t* q, const float* d, const int16_t* bsum, const void* w, int64_t N,
                     int64_t K, int64_t m_begin, int64_t m_end, int64_t ldy) {
  matmul_qk<false>(y, reinterpret_cast<const signed char*>(q), d, reinterpret_cast<const short*>(bsum),
                   static_cast<const unsigned char*>(w), N, K, m_begin, m_end, ldy);
}

void matmul_q5_k_q8k(float* y, const int8_t* q, const float* d, const int16_t* bsum, const void* w, int64_t N,
                     int64_t K, int64_t m_begin, int64_t m_end, int64_t ldy) {
  matmul_qk<true>(y, reinterpret_cast<const signed char*>(q), d, reinterpret_cast<const short*>(bsum),
                  static_cast<const unsigned char*>(w), N, K, m_begin, m_end, ldy);
}

// Q6_K: per half h, the 32 bytes ql[64h + 32(t % 2) ..] give the low nibbles
// (t < 2) or high nibbles of weights 128h + 32t + l, qh[32h + l] their bits
// 4-5 at bits 2t, 2t + 1; the 32 lanes are sub-blocks 8h + 2t and 8h + 2t + 1.
void matmul_q6_k_q8k(float* y, const int8_t* q, const float* d, const int16_t* bsum, const void* w, int64_t N,
                     int64_t K, int64_t m_begin, int64_t m_end, int64_t ldy) {
  const int64_t nb = K / kQK;
  const auto* wb = static_cast<const unsigned char*>(w);
  const auto* qq = reinterpret_cast<const signed char*>(q);
  const __m256i nib = _mm256_set1_epi8(15), three = _mm256_set1_epi8(3);
  for (int64_t m = m_begin; m < m_end; ++m) {
    const unsigned char* row = wb + m * nb * 210;
    for (int64_t n = 0; n < N; ++n) {
      float acc = 0;
      for (int64_t b = 0; b < nb; ++b) {
        const unsigned char* blk = row + b * 210;
        const auto* sc = reinterpret_cast<const signed char*>(blk + 192);
        const signed char* x = qq + n * K + b * kQK;
        const int16_t* bs = bsum + n * (K / 16) + b * 16;
        __m256i isum = _mm256_setzero_si256();
        for (int h = 0; h < 2; ++h) {
          const __m256i e = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 128 + 32 * h));
          for (int t = 0; t < 4; ++t) {
            const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 64 * h + 32 * (t % 2)));
            const __m256i low = _mm256_and_si256(t < 2 ? v : _mm256_srli_epi16(v, 4), nib);
            const __m256i high = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(e, 2 * t), three), 4);
            const int j = 8 * h + 2 * t;
            const __m256i scale = _mm256_set_m128i(_mm_set1_epi16(sc[j + 1]), _mm_set1_epi16(sc[j]));
            isum = _mm256_add_epi32(isum, dot_scaled(_mm256_or_si256(low, high), x + 128 * h + 32 * t, scale));
          }
        }
        int offset = 0;
        for (int j = 0; j < 16; ++j) offset += sc[j] * bs[j];
        acc = __builtin_fmaf(d[n * nb + b], half(blk + 208) * float(hsum(isum) - 32 * offset), acc);
      }
      y[n * ldy + m] = acc;
    }
  }
}

}  // namespace tpp::kernels::avx2
