#include "tpp/kernels/kquants.h"

#include <cstring>

#include "tpp/core/dtype.h"

namespace tpp::kernels {
namespace {

float half(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return f16_to_f32(h);
}

// Sub-block j's 6-bit scale and minimum from the 12 packed bytes.
void scale_min(int j, const uint8_t* s, int* sc, int* m) {
  if (j < 4) {
    *sc = s[j] & 63;
    *m = s[j + 4] & 63;
  } else {
    *sc = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4);
    *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

// Q4_K and Q5_K share everything but the fifth bit.
template <bool kFive>
void dequant_qk(float* out, const void* in, int64_t n) {
  constexpr int kBytes = kFive ? 176 : 144;
  const auto* b = static_cast<const uint8_t*>(in);
  for (int64_t i = 0; i < n / kQK; ++i, b += kBytes) {
    const float d = half(b), dmin = half(b + 2);
    const uint8_t* scales = b + 4;
    const uint8_t* qh = b + 16;
    const uint8_t* qs = b + (kFive ? 48 : 16);
    float* y = out + i * kQK;
    for (int c = 0; c < 4; ++c) {
      int sc, m;
      scale_min(2 * c, scales, &sc, &m);
      const float d1 = d * float(sc), m1 = dmin * float(m);
      scale_min(2 * c + 1, scales, &sc, &m);
      const float d2 = d * float(sc), m2 = dmin * float(m);
      for (int l = 0; l < 32; ++l) {
        int lo = qs[32 * c + l] & 15, hi = qs[32 * c + l] >> 4;
        if constexpr (kFive) {
          lo |= ((qh[l] >> (2 * c)) & 1) << 4;
          hi |= ((qh[l] >> (2 * c + 1)) & 1) << 4;
        }
        const float a = d1 * float(lo), bb = d2 * float(hi);  // rounded before the subtraction
        y[64 * c + l] = a - m1;
        y[64 * c + 32 + l] = bb - m2;
      }
    }
  }
}

}  // namespace

void dequant_q4_k(float* out, const void* in, int64_t n) { dequant_qk<false>(out, in, n); }
void dequant_q5_k(float* out, const void* in, int64_t n) { dequant_qk<true>(out, in, n); }

void dequant_q6_k(float* out, const void* in, int64_t n) {
  const auto* b = static_cast<const uint8_t*>(in);
  for (int64_t i = 0; i < n / kQK; ++i, b += 210) {
    const uint8_t* ql = b;
    const uint8_t* qh = b + 128;
    const auto* sc = reinterpret_cast<const int8_t*>(b + 192);
    const float d = half(b + 208);
    float* y = out + i * kQK;
    for (int h = 0; h < 2; ++h) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const uint8_t a = ql[64 * h + l], c = ql[64 * h + 32 + l], e = qh[32 * h + l];
        const int q1 = ((a & 15) | ((e & 3) << 4)) - 32;
        const int q2 = ((c & 15) | (((e >> 2) & 3) << 4)) - 32;
        const int q3 = ((a >> 4) | (((e >> 4) & 3) << 4)) - 32;
        const int q4 = ((c >> 4) | (((e >> 6) & 3) << 4)) - 32;
        const float s1 = d * float(sc[8 * h + is]), s2 = d * float(sc[8 * h + is + 2]);
        const float s3 = d * float(sc[8 * h + is + 4]), s4 = d * float(sc[8 * h + is + 6]);
        y[128 * h + l] = s1 * float(q1);
        y[128 * h + l + 32] = s2 * float(q2);
        y[128 * h + l + 64] = s3 * float(q3);
        y[128 * h + l + 96] = s4 * float(q4);
      }
    }
  }
}

}  // namespace tpp::kernels
