#include "tpp/kernels/kquants.h"

#include <algorithm>
#include <cmath>
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

// ---- Encoding ----

// Round to nearest, ties to even, as GGML's nearest_int: adding 1.5 * 2^23
// leaves a float whose unit is 1, so the rounding happens in the addition and
// the integer sits in the low 23 bits (offset by 2^22). Exact for |v| < 2^22;
// outside that range it gives the reference's (meaningless) value too.
int nearest_int(float v) {
  const float shifted = v + 12582912.0f;
  int32_t bits;
  std::memcpy(&bits, &shifted, 4);
  return (bits & 0x007fffff) - 0x00400000;
}

void put_half(uint8_t* p, float v) {
  const uint16_t h = f32_to_f16(v);
  std::memcpy(p, &h, 2);
}

// The affine fit of a Q4_K / Q5_K sub-block: codes q[32] in 0..nmax with
// x ~ scale * q - *min_out (see kquants.h). Grids t = 0..n_grids-1 step
// (nmax + first + 0.1 t) / span. Returns the scale.
float fit_scale_min(const float* x, const float* w, int nmax, float first, int n_grids, uint8_t* q,
                    float* min_out) {
  constexpr int n = 32;
  float lo = x[0], hi = x[0];
  float sum_w = w[0], sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
    sum_w += w[i];
    sum_x += w[i] * x[i];
  }
  lo = std::min(lo, 0.0f);  // the offset is never positive: min_out >= 0
  if (hi == lo) {
    std::fill(q, q + n, uint8_t(0));
    *min_out = -lo;
    return 0.0f;
  }
  float iscale = float(nmax) / (hi - lo);
  float scale = 1.0f / iscale;
  float best = 0;
  for (int i = 0; i < n; ++i) {
    q[i] = uint8_t(std::clamp(nearest_int(iscale * (x[i] - lo)), 0, nmax));
    const float diff = scale * float(q[i]) + lo - x[i];
    best += w[i] * (diff * diff);
  }
  uint8_t trial[n];
  for (int t = 0; t < n_grids; ++t) {
    // `lo` is the latest kept minimum, so later grids start from it.
    iscale = (first + 0.1f * float(t) + float(nmax)) / (hi - lo);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      const int l = std::clamp(nearest_int(iscale * (x[i] - lo)), 0, nmax);
      trial[i] = uint8_t(l);
      const float wl = w[i] * float(l);
      sum_l += wl;
      sum_l2 += wl * float(l);
      sum_xl += wl * x[i];
    }
    const float det = sum_w * sum_l2 - sum_l * sum_l;
    if (!(det > 0)) continue;
    float s = (sum_w * sum_xl - sum_x * sum_l) / det;
    float m = (sum_l2 * sum_x - sum_l * sum_xl) / det;
    if (m > 0) {
      m = 0;
      s = sum_xl / sum_l2;
    }
    float err = 0;
    for (int i = 0; i < n; ++i) {
      const float diff = s * float(trial[i]) + m - x[i];
      err += w[i] * (diff * diff);
    }
    if (err < best) {
      std::copy(trial, trial + n, q);
      best = err;
      scale = s;
      lo = m;
    }
  }
  *min_out = -lo;
  return scale;
}

// One Q4_K (kFive = false) or Q5_K super-block.
template <bool kFive>
void quantize_qk_block(uint8_t* b, const float* x) {
  constexpr int nmax = kFive ? 31 : 15;
  uint8_t q[kQK];
  float scales[8], mins[8], w[32];
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < 8; ++j) {
    const float* xj = x + 32 * j;
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += xj[l] * xj[l];
    const float rms = std::sqrt(sum_x2 / 32);
    for (int l = 0; l < 32; ++l) w[l] = rms + std::fabs(xj[l]);
    scales[j] = kFive ? fit_scale_min(xj, w, nmax, -0.5f, 16, q + 32 * j, &mins[j])
                      : fit_scale_min(xj, w, nmax, -1.0f, 21, q + 32 * j, &mins[j]);
    if (scales[j] > max_scale) max_scale = scales[j];
    if (mins[j] > max_min) max_min = mins[j];
  }
  const float inv_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f;
  const float inv_min = max_min > 0 ? 63.0f / max_min : 0.0f;
  uint8_t* packed = b + 4;  // scales[12], layout in kquants.h
  for (int j = 0; j < 8; ++j) {
    // The reference keeps the low byte of the rounded value before capping it.
    const uint8_t sc = std::min<uint8_t>(63, uint8_t(nearest_int(inv_scale * scales[j])));
    const uint8_t m = std::min<uint8_t>(63, uint8_t(nearest_int(inv_min * mins[j])));
    if (j < 4) {
      packed[j] = sc;
      packed[j + 4] = m;
    } else {
      packed[j + 4] = uint8_t((sc & 15) | ((m & 15) << 4));
      packed[j - 4] |= uint8_t((sc >> 4) << 6);
      packed[j] |= uint8_t((m >> 4) << 6);
    }
  }
  put_half(b, max_scale / 63.0f);
  put_half(b + 2, max_min / 63.0f);
  const float d = half(b), dmin = half(b + 2);
  for (int j = 0; j < 8; ++j) {
    int sc, m;
    scale_min(j, packed, &sc, &m);
    const float dj = d * float(sc);
    if (dj == 0.0f) continue;  // keeps the fit's codes
    const float mj = dmin * float(m);
    for (int l = 0; l < 32; ++l) q[32 * j + l] = uint8_t(std::clamp(nearest_int((x[32 * j + l] + mj) / dj), 0, nmax));
  }
  uint8_t* qh = b + 16;
  uint8_t* qs = b + (kFive ? 48 : 16);
  if constexpr (kFive) std::fill(qh, qh + 32, uint8_t(0));
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l) {
      const uint8_t lo = q[64 * c + l], hi = q[64 * c + 32 + l];
      qs[32 * c + l] = uint8_t((lo & 15) | ((hi & 15) << 4));
      if constexpr (kFive) qh[l] |= uint8_t(((lo >> 4) << (2 * c)) | ((hi >> 4) << (2 * c + 1)));
    }
}

// The weighted symmetric fit of a Q6_K sub-block of 16 (see kquants.h):
// stores code + 32 in q (all 0 for a sub-block of zeros) and returns the scale.
float fit_scale_q6(const float* x, int8_t* q) {
  constexpr int n = 16, nmax = 32;
  float amax = 0, max = 0;
  for (int i = 0; i < n; ++i)
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      max = x[i];
    }
  if (amax < 1e-15f) {
    std::fill(q, q + n, int8_t(0));
    return 0.0f;
  }
  auto code = [&](float iscale, int i) { return std::clamp(nearest_int(iscale * x[i]), -nmax, nmax - 1); };
  // sum w x l and sum w l^2 with w = x^2, for the grid `iscale`.
  auto sums = [&](float iscale, float* sum_lx, float* sum_l2) {
    *sum_lx = *sum_l2 = 0;
    for (int i = 0; i < n; ++i) {
      const float l = float(code(iscale, i)), w = x[i] * x[i];
      *sum_lx += w * x[i] * l;
      *sum_l2 += w * l * l;
    }
  };
  float iscale = float(-nmax) / max;
  for (int i = 0; i < n; ++i) q[i] = int8_t(code(iscale, i) + nmax);
  float sum_lx, sum_l2;
  sums(iscale, &sum_lx, &sum_l2);
  float scale = sum_l2 != 0 ? sum_lx / sum_l2 : 0.0f;
  float best = scale * sum_lx;
  for (int t = -9; t <= 9; ++t) {
    if (t == 0) continue;
    iscale = -(float(nmax) + 0.1f * float(t)) / max;
    sums(iscale, &sum_lx, &sum_l2);
    if (sum_l2 > 0 && sum_lx * sum_lx > best * sum_l2) {
      for (int i = 0; i < n; ++i) q[i] = int8_t(code(iscale, i) + nmax);
      scale = sum_lx / sum_l2;
      best = scale * sum_lx;
    }
  }
  return scale;
}

void quantize_q6_block(uint8_t* b, const float* x) {
  int8_t q[kQK];
  float scales[16];
  float max_scale = 0, max_abs = 0;
  for (int j = 0; j < 16; ++j) {
    scales[j] = fit_scale_q6(x + 16 * j, q + 16 * j);
    if (std::fabs(scales[j]) > max_abs) {
      max_abs = std::fabs(scales[j]);
      max_scale = scales[j];
    }
  }
  if (max_abs < 1e-15f) {
    std::fill(b, b + 210, uint8_t(0));
    return;
  }
  const float iscale = -128.0f / max_scale;
  put_half(b + 208, 1.0f / iscale);
  const float d = half(b + 208);
  auto* sc = reinterpret_cast<int8_t*>(b + 192);
  for (int j = 0; j < 16; ++j) sc[j] = int8_t(std::min(127, nearest_int(iscale * scales[j])));
  for (int j = 0; j < 16; ++j) {
    const float dj = d * float(sc[j]);
    if (dj == 0.0f) continue;  // keeps the fit's codes
    for (int l = 0; l < 16; ++l) q[16 * j + l] = int8_t(std::clamp(nearest_int(x[16 * j + l] / dj), -32, 31) + 32);
  }
  uint8_t* ql = b;
  uint8_t* qh = b + 128;
  for (int h = 0; h < 2; ++h)
    for (int l = 0; l < 32; ++l) {
      const int q1 = q[128 * h + l], q2 = q[128 * h + l + 32], q3 = q[128 * h + l + 64], q4 = q[128 * h + l + 96];
      ql[64 * h + l] = uint8_t((q1 & 15) | ((q3 & 15) << 4));
      ql[64 * h + 32 + l] = uint8_t((q2 & 15) | ((q4 & 15) << 4));
      qh[32 * h + l] = uint8_t((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
    }
}

}  // namespace

void quantize_q4_k(void* out, const float* in, int64_t n) {
  auto* b = static_cast<uint8_t*>(out);
  for (int64_t i = 0; i < n / kQK; ++i) quantize_qk_block<false>(b + 144 * i, in + kQK * i);
}
void quantize_q5_k(void* out, const float* in, int64_t n) {
  auto* b = static_cast<uint8_t*>(out);
  for (int64_t i = 0; i < n / kQK; ++i) quantize_qk_block<true>(b + 176 * i, in + kQK * i);
}
void quantize_q6_k(void* out, const float* in, int64_t n) {
  auto* b = static_cast<uint8_t*>(out);
  for (int64_t i = 0; i < n / kQK; ++i) quantize_q6_block(b + 210 * i, in + kQK * i);
}

void unpack_qk_block(KBlockInts& out, const void* block, bool five) {
  const auto* b = static_cast<const uint8_t*>(block);
  std::memcpy(&out.d, b, 2);
  std::memcpy(&out.dmin, b + 2, 2);
  for (int j = 0; j < 8; ++j) {
    int sc, m;
    scale_min(j, b + 4, &sc, &m);
    out.sc[j] = int8_t(sc);
    out.mn[j] = uint8_t(m);
  }
  for (int j = 8; j < 16; ++j) out.sc[j] = 0;
  const uint8_t* qh = b + 16;
  const uint8_t* qs = b + (five ? 48 : 16);
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l) {
      int lo = qs[32 * c + l] & 15, hi = qs[32 * c + l] >> 4;
      if (five) {
        lo |= ((qh[l] >> (2 * c)) & 1) << 4;
        hi |= ((qh[l] >> (2 * c + 1)) & 1) << 4;
      }
      out.q[64 * c + l] = uint8_t(lo);
      out.q[64 * c + 32 + l] = uint8_t(hi);
    }
}

void unpack_q6_k_block(KBlockInts& out, const void* block) {
  const auto* b = static_cast<const uint8_t*>(block);
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  std::memcpy(out.sc, b + 192, 16);
  std::memset(out.mn, 0, sizeof out.mn);
  std::memcpy(&out.d, b + 208, 2);
  out.dmin = 0;
  for (int h = 0; h < 2; ++h)
    for (int l = 0; l < 32; ++l) {
      const uint8_t a = ql[64 * h + l], c = ql[64 * h + 32 + l], e = qh[32 * h + l];
      out.q[128 * h + l] = uint8_t((a & 15) | ((e & 3) << 4));
      out.q[128 * h + l + 32] = uint8_t((c & 15) | (((e >> 2) & 3) << 4));
      out.q[128 * h + l + 64] = uint8_t((a >> 4) | (((e >> 4) & 3) << 4));
      out.q[128 * h + l + 96] = uint8_t((c >> 4) | (((e >> 6) & 3) << 4));
    }
}

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
