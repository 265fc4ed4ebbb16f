#include "tpp/kernels/scalar/kernels_scalar.h"

#include <cmath>
#include <cstring>

#include "tpp/core/dtype.h"

namespace tpp::kernels::scalar {
namespace {

template <class Widen, class W>
void matmul(float* y, const float* x, const W* w, int64_t N, int64_t K, int64_t m_begin, int64_t m_end,
            int64_t ldy, Widen widen) {
  for (int64_t n = 0; n < N; ++n)
    for (int64_t m = m_begin; m < m_end; ++m) {
      const float* xr = x + n * K;
      const W* wr = w + m * K;
      float acc = 0;
      for (int64_t k = 0; k < K; ++k) acc += xr[k] * widen(wr[k]);
      y[n * ldy + m] = acc;
    }
}

}  // namespace

void matmul_f32(float* y, const float* x, const float* w, int64_t N, int64_t K, int64_t m_begin,
                int64_t m_end, int64_t ldy) {
  matmul(y, x, w, N, K, m_begin, m_end, ldy, [](float v) { return v; });
}
void matmul_bf16(float* y, const float* x, const uint16_t* w, int64_t N, int64_t K, int64_t m_begin,
                 int64_t m_end, int64_t ldy) {
  matmul(y, x, w, N, K, m_begin, m_end, ldy, [](uint16_t v) { return tpp::bf16_to_f32(v); });
}
void matmul_f16(float* y, const float* x, const uint16_t* w, int64_t N, int64_t K, int64_t m_begin,
                int64_t m_end, int64_t ldy) {
  matmul(y, x, w, N, K, m_begin, m_end, ldy, [](uint16_t v) { return tpp::f16_to_f32(v); });
}
namespace {

// One block of 32 weights widened to f32 (layouts in kernels/api.h).
void widen_q8_0(float* out, const unsigned char* b) {
  uint16_t h;
  std::memcpy(&h, b, 2);
  const float d = tpp::f16_to_f32(h);
  for (int j = 0; j < 32; ++j) out[j] = d * float(static_cast<signed char>(b[2 + j]));
}
void widen_q4_0(float* out, const unsigned char* b) {
  uint16_t h;
  std::memcpy(&h, b, 2);
  const float d = tpp::f16_to_f32(h);
  for (int j = 0; j < 16; ++j) {
    out[j] = d * float((b[2 + j] & 15) - 8);
    out[j + 16] = d * float((b[2 + j] >> 4) - 8);
  }
}

template <int kBlockBytes, void (*Widen)(float*, const unsigned char*)>
void matmul_q(float* y, const float* x, const void* w, int64_t N, int64_t K, int64_t m_begin, int64_t m_end,
              int64_t ldy) {
  const int64_t nb = K / 32;
  float wb[32];
  for (int64_t n = 0; n < N; ++n)
    for (int64_t m = m_begin; m < m_end; ++m) {
      const auto* row = static_cast<const unsigned char*>(w) + m * nb * kBlockBytes;
      const float* xr = x + n * K;
      float acc = 0;
      for (int64_t b = 0; b < nb; ++b) {
        Widen(wb, row + b * kBlockBytes);
        for (int j = 0; j < 32; ++j) acc += xr[b * 32 + j] * wb[j];
      }
      y[n * ldy + m] = acc;
    }
}

template <int kBlockBytes, void (*Widen)(float*, const unsigned char*)>
void dequant(float* dst, const void* src, int64_t n) {
  for (int64_t b = 0; b < n / 32; ++b) Widen(dst + b * 32, static_cast<const unsigned char*>(src) + b * kBlockBytes);
}

}  // namespace

void matmul_q8_0(float* y, const float* x, const void* w, int64_t N, int64_t K, int64_t m_begin, int64_t m_end,
                 int64_t ldy) {
  matmul_q<34, widen_q8_0>(y, x, w, N, K, m_begin, m_end, ldy);
}
void matmul_q4_0(float* y, const float* x, const void* w, int64_t N, int64_t K, int64_t m_begin, int64_t m_end,
                 int64_t ldy) {
  matmul_q<18, widen_q4_0>(y, x, w, N, K, m_begin, m_end, ldy);
}
void dequant_q8_0(float* dst, const void* src, int64_t n) { dequant<34, widen_q8_0>(dst, src, n); }
void dequant_q4_0(float* dst, const void* src, int64_t n) { dequant<18, widen_q4_0>(dst, src, n); }
namespace {

template <bool XT>
void gemm(float* y, const float* x, const float* w, int64_t N, int64_t K, int64_t m_begin, int64_t m_end,
          int64_t ldx, int64_t ldw, int64_t ldy, bool accumulate) {
  for (int64_t n = 0; n < N; ++n) {
    float* yr = y + n * ldy;
    if (!accumulate)
      for (int64_t m = m_begin; m < m_end; ++m) yr[m] = 0;
    for (int64_t k = 0; k < K; ++k) {
      const float xv = XT ? x[k * ldx + n] : x[n * ldx + k];
      const float* wr = w + k * ldw;
      for (int64_t m = m_begin; m < m_end; ++m) yr[m] += xv * wr[m];
    }
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
  float acc = 0;
  for (int64_t i = 0; i < n; ++i) acc += a[i] * b[i];
  return acc;
}
void axpy_f32(float* y, float alpha, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}
void scale_f32(float* y, float alpha, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] *= alpha;
}
void bf16_to_f32(float* dst, const uint16_t* src, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = tpp::bf16_to_f32(src[i]);
}
void f16_to_f32(float* dst, const uint16_t* src, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = tpp::f16_to_f32(src[i]);
}

}  // namespace tpp::kernels::scalar

namespace tpp::kernels::scalar {

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
        if (softcap > 0) v = softcap * std::tanh(v / softcap);
        s[p] = v;
        mx = v > mx ? v : mx;
      }
      const float c = std::exp(m[g] - mx);
      l[g] *= c;
      scale_f32(ag, c, k);
      for (int64_t p = 0; p < np; ++p) {
        const float e = std::exp(s[p] - mx);
        l[g] += e;
        axpy_f32(ag, e, V + (p0 + p) * stride, k);
      }
      m[g] = mx;
    }
  }
}

void to_bf16(uint16_t* dst, const float* src, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = tpp::f32_to_bf16(src[i]);
}

float max_f32(const float* x, int64_t n) {
  float m = -INFINITY;
  for (int64_t i = 0; i < n; ++i) m = std::fmax(m, x[i]);
  return m;
}

float exp_sum_f32(float* dst, const float* x, float shift, int64_t n) {
  float sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float e = std::exp(x[i] - shift);
    if (dst) dst[i] = e;
    sum += e;
  }
  return sum;
}

namespace {

// The packed f32 definition with x(n, k) at x[n * sn + k * sk].
void packed_f32(float* y, const float* x, int64_t sn, int64_t sk, const void* w, int64_t N, int64_t K,
                int64_t m_begin, int64_t m_end, int64_t ldy, bool accumulate) {
  const auto* packed = static_cast<const float*>(w);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t m = m_begin; m < m_end; ++m) {
      const float* column = packed + (m / 16) * 16 * K + m % 16;  // element k at + 16 k
      float acc = accumulate ? y[n * ldy + m] : 0.0f;
      for (int64_t k = 0; k < K; ++k) acc = std::fma(x[n * sn + k * sk], column[16 * k], acc);
      y[n * ldy + m] = acc;
    }
}

}  // namespace

void matmul_f32_packed(float* y, const float* x, const void* w, int64_t N, int64_t K, int64_t m_begin,
                       int64_t m_end, int64_t ldy, bool accumulate) {
  packed_f32(y, x, K, 1, w, N, K, m_begin, m_end, ldy, accumulate);
}
void matmul_f32_packed_xt(float* y, const float* x, int64_t ldx, const void* w, int64_t N, int64_t K,
                          int64_t m_begin, int64_t m_end, int64_t ldy, bool accumulate) {
  packed_f32(y, x, 1, ldx, w, N, K, m_begin, m_end, ldy, accumulate);
}

void matmul_bf16_packed(float* y, const uint16_t* xb, const void* w, int64_t N, int64_t K, int64_t m_begin,
                        int64_t m_end, int64_t ldy, bool accumulate) {
  const auto* packed = static_cast<const uint16_t*>(w);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t m = m_begin; m < m_end; ++m) {
      const uint16_t* pairs = packed + (m / 16) * 16 * K + 2 * (m % 16);  // chunk j at + 32 j
      float acc = 0;
      for (int64_t j = 0; j < K / 2; ++j)
        for (int t = 0; t < 2; ++t)
          acc += tpp::bf16_to_f32(xb[n * K + 2 * j + t]) * tpp::bf16_to_f32(pairs[32 * j + t]);
      y[n * ldy + m] = accumulate ? y[n * ldy + m] + acc : acc;
    }
}

extern const char compiled_features[] =
#include "tpp/kernels/compiled_features.inc"
    ;

void quantize_q8(int8_t* q, float* d, float* s, const float* x, int64_t N, int64_t K) {
  for (int64_t b = 0; b < N * K / 32; ++b) {
    const float* xb = x + 32 * b;
    float amax = 0;
    for (int i = 0; i < 32; ++i) amax = std::fmax(amax, std::fabs(xb[i]));
    const float db = amax / 127.0f, id = db != 0.0f ? 1.0f / db : 0.0f;
    int sum = 0;
    for (int i = 0; i < 32; ++i) {
      const int v = int(std::nearbyint(xb[i] * id));
      q[32 * b + i] = int8_t(v);
      sum += v;
    }
    d[b] = db;
    s[b] = db * float(sum);
  }
}

namespace {

// Packed layout: tpp/kernels/packed.h. Element i of row r in a block.
uint8_t packed_q8(const uint8_t* ints, int r, int i) { return ints[64 * (i / 4) + 4 * r + i % 4]; }
uint8_t packed_q4(const uint8_t* ints, int r, int i) {
  const int j = i / 4;
  const uint8_t byte = ints[64 * (j % 4) + 4 * r + i % 4];
  return j < 4 ? byte & 15 : byte >> 4;
}

template <bool kQ8>
void matmul_packed(float* y, const int8_t* q, const float* d, const float* s, const void* w, int64_t N,
                   int64_t K, int64_t m_begin, int64_t m_end, int64_t ldy) {
  const int64_t nb = K / 32, bb = 32 + (kQ8 ? 512 : 256);
  const float off = kQ8 ? 128.0f : 8.0f;
  const auto* base = static_cast<const uint8_t*>(w);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t m = m_begin; m < m_end; ++m) {
      const int r = int(m % 16);
      float acc = 0;
      for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* blk = base + ((m / 16) * nb + b) * bb;
        uint16_t h;
        std::memcpy(&h, blk + 2 * r, 2);
        int32_t dot = 0;
        for (int i = 0; i < 32; ++i)
          dot += int32_t(kQ8 ? packed_q8(blk + 32, r, i) : packed_q4(blk + 32, r, i)) * q[n * K + 32 * b + i];
        acc = std::fma(tpp::f16_to_f32(h), std::fma(float(dot), d[n * nb + b], -off * s[n * nb + b]), acc);
      }
      y[n * ldy + m] = acc;
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

}  // namespace tpp::kernels::scalar
