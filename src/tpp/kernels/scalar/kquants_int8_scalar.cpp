// The K-quant int8 kernels' definition (tpp/kernels/api.h): activations in
// Q8_K super-blocks, each K-quant super-block's integer sums exact, then
// scaled once, the multiply-adds fused as written (std::fma), so that the
// packed and AVX2 kernels give these bits. Not in the scalar table (it
// keeps f32 activations); the tests' reference for the levels that have them.
#include <cmath>
#include <cstring>

#include "tpp/core/dtype.h"
#include "tpp/kernels/scalar/kernels_scalar.h"

namespace tpp::kernels::scalar {
namespace {

constexpr int kQK = 256;

float half(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return tpp::f16_to_f32(h);
}

// Sub-block j's 6-bit scale and minimum from Q4_K's / Q5_K's 12 packed bytes.
void scale_min(int j, const uint8_t* s, int* sc, int* m) {
  if (j < 4) {
    *sc = s[j] & 63;
    *m = s[j + 4] & 63;
  } else {
    *sc = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4);
    *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

// Q4_K (kFive = false) and Q5_K: weight 64c + l (+32) of a super-block is the
// low (high) nibble of qs[32c + l], with bit 2c (2c + 1) of qh[l] as its fifth.
template <bool kFive>
void matmul_qk(float* y, const int8_t* q, const float* d, const int16_t* bsum, const void* w, int64_t N, int64_t K,
               int64_t m_begin, int64_t m_end, int64_t ldy) {
  constexpr int64_t kBytes = kFive ? 176 : 144;
  const int64_t nb = K / kQK;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t m = m_begin; m < m_end; ++m) {
      const auto* row = static_cast<const uint8_t*>(w) + m * nb * kBytes;
      float acc = 0;
      for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* blk = row + b * kBytes;
        const uint8_t* qh = blk + 16;
        const uint8_t* qs = blk + (kFive ? 48 : 16);
        const int8_t* x = q + n * K + b * kQK;
        const int16_t* bs = bsum + n * (K / 16) + b * 16;
        int32_t isc = 0, imin = 0;
        for (int j = 0; j < 8; ++j) {
          int sc, mn;
          scale_min(j, blk + 4, &sc, &mn);
          const int c = j / 2, high = j % 2;
          int32_t dot = 0;
          for (int l = 0; l < 32; ++l) {
            int v = high ? qs[32 * c + l] >> 4 : qs[32 * c + l] & 15;
            if constexpr (kFive) v |= ((qh[l] >> j) & 1) << 4;
            dot += v * x[32 * j + l];
          }
          isc += sc * dot;
          imin += mn * (bs[2 * j] + bs[2 * j + 1]);
        }
        const float t = std::fma(-half(blk + 2), float(imin), half(blk) * float(isc));
        acc = std::fma(d[n * nb + b], t, acc);
      }
      y[n * ldy + m] = acc;
    }
}

}  // namespace

void quantize_q8_k(int8_t* q, float* d, int16_t* bsum, const float* x, int64_t N, int64_t K) {
  for (int64_t b = 0; b < N * K / kQK; ++b) {
    const float* xb = x + kQK * b;
    float amax = 0;
    for (int i = 0; i < kQK; ++i) amax = std::fmax(amax, std::fabs(xb[i]));
    const float db = amax / 127.0f, id = db != 0.0f ? 1.0f / db : 0.0f;
    for (int j = 0; j < 16; ++j) {
      int sum = 0;
      for (int i = 16 * j; i < 16 * j + 16; ++i) {
        const int v = int(std::nearbyint(xb[i] * id));
        q[kQK * b + i] = int8_t(v);
        sum += v;
      }
      bsum[16 * b + j] = int16_t(sum);
    }
    d[b] = db;
  }
}

void matmul_q4_k_q8k(float* y, const int8_t* q, const float* d, const int16_t* bsum, const void* w, int64_t N,
                     int64_t K, int64_t m_begin, int64_t m_end, int64_t ldy) {
  matmul_qk<false>(y, q, d, bsum, w, N, K, m_begin, m_end, ldy);
}

void matmul_q5_k_q8k(float* y, const int8_t* q, const float* d, const int16_t* bsum, const void* w, int64_t N,
                     int64_t K, int64_t m_begin, int64_t m_end, int64_t ldy) {
  matmul_qk<true>(y, q, d, bsum, w, N, K, m_begin, m_end, ldy);
}

// Q6_K: weight 128h + 32t + l of a super-block takes the low (t = 0, 1) or high
// (t = 2, 3) nibble of ql[64h + 32(t % 2) + l] and bits 2t, 2t + 1 of
// qh[32h + l]; sub-block of 16 i / 16 has the signed scale sc[i / 16].
void matmul_q6_k_q8k(float* y, const int8_t* q, const float* d, const int16_t* bsum, const void* w, int64_t N,
                     int64_t K, int64_t m_begin, int64_t m_end, int64_t ldy) {
  const int64_t nb = K / kQK;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t m = m_begin; m < m_end; ++m) {
      const auto* row = static_cast<const uint8_t*>(w) + m * nb * 210;
      float acc = 0;
      for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* blk = row + b * 210;
        const uint8_t* ql = blk;
        const uint8_t* qh = blk + 128;
        const auto* sc = reinterpret_cast<const int8_t*>(blk + 192);
        const int8_t* x = q + n * K + b * kQK;
        const int16_t* bs = bsum + n * (K / 16) + b * 16;
        int32_t dots[16] = {};
        for (int h = 0; h < 2; ++h)
          for (int t = 0; t < 4; ++t)
            for (int l = 0; l < 32; ++l) {
              const uint8_t nib = ql[64 * h + 32 * (t % 2) + l];
              const int v = (t < 2 ? nib & 15 : nib >> 4) | (((qh[32 * h + l] >> (2 * t)) & 3) << 4);
              const int i = 128 * h + 32 * t + l;
              dots[i / 16] += v * x[i];
            }
        int32_t isc = 0;
        for (int j = 0; j < 16; ++j) isc += sc[j] * (dots[j] - 32 * bs[j]);
        acc = std::fma(d[n * nb + b], half(blk + 208) * float(isc), acc);
      }
      y[n * ldy + m] = acc;
    }
}

}  // namespace tpp::kernels::scalar
