#include "tpp/quant/quant.h"

#include <cmath>
#include <cstring>

#include "tpp/core/error.h"
#include "tpp/kernels/api.h"
#include "tpp/kernels/kquants.h"

namespace tpp::quant {
namespace {

void put_scale(std::byte* block, float d) {
  const uint16_t h = f32_to_f16(d);
  std::memcpy(block, &h, 2);
}

void quantize_q8_0(const float* x, std::byte* block) {
  float amax = 0;
  for (int j = 0; j < kBlock; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  put_scale(block, d);
  for (int j = 0; j < kBlock; ++j) block[2 + j] = std::byte(static_cast<int8_t>(std::lround(x[j] * id)));
}

void quantize_q4_0(const float* x, std::byte* block) {
  float amax = 0, max = 0;
  for (int j = 0; j < kBlock; ++j)
    if (std::fabs(x[j]) > amax) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  const float d = max / -8.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  put_scale(block, d);
  for (int j = 0; j < kBlock / 2; ++j) {
    const int lo = std::min(15, int(static_cast<int8_t>(x[j] * id + 8.5f)));
    const int hi = std::min(15, int(static_cast<int8_t>(x[j + kBlock / 2] * id + 8.5f)));
    block[2 + j] = std::byte(uint8_t(lo | hi << 4));
  }
}

}  // namespace

void quantize_row(DType t, const float* x, int64_t n, std::byte* out) {
  TPP_CHECK(is_block_dtype(t), "quantize: dtype {}, expected q8_0, q4_0, q4_k, q5_k or q6_k", dtype_name(t));
  TPP_CHECK(n % dtype_block(t) == 0, "quantize: {} elements, expected a multiple of {} for {}", n, dtype_block(t),
            dtype_name(t));
  for (int64_t i = 0; i < n; ++i)
    TPP_CHECK(std::isfinite(x[i]), "quantize: element {} is {}, expected a finite value", i, x[i]);
  switch (t) {
    case DType::q4_k: kernels::quantize_q4_k(out, x, n); return;
    case DType::q5_k: kernels::quantize_q5_k(out, x, n); return;
    case DType::q6_k: kernels::quantize_q6_k(out, x, n); return;
    default: break;
  }
  for (int64_t b = 0; b < n / kBlock; ++b) {
    std::byte* block = out + b * dtype_size(t);
    if (t == DType::q8_0) quantize_q8_0(x + b * kBlock, block);
    else quantize_q4_0(x + b * kBlock, block);
  }
}

void dequantize_row(DType t, const std::byte* in, int64_t n, float* out) {
  TPP_CHECK(is_block_dtype(t), "dequantize: dtype {}, expected q8_0, q4_0, q4_k, q5_k or q6_k", dtype_name(t));
  TPP_CHECK(n % dtype_block(t) == 0, "dequantize: {} elements, expected a multiple of {}", n, dtype_block(t));
  const auto& k = kernels::kernels();
  switch (t) {
    case DType::q8_0: k.dequant_q8_0(out, in, n); return;
    case DType::q4_0: k.dequant_q4_0(out, in, n); return;
    case DType::q4_k: k.dequant_q4_k(out, in, n); return;
    case DType::q5_k: k.dequant_q5_k(out, in, n); return;
    case DType::q6_k: k.dequant_q6_k(out, in, n); return;
    default: fail("dequantize: dtype {}, expected q8_0, q4_0, q4_k, q5_k or q6_k", dtype_name(t));
  }
}

}  // namespace tpp::quant
