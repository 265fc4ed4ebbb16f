#include "tpp/model/kv_cache.h"

#include <algorithm>
#include <cstring>

#include "tpp/core/error.h"
#include "tpp/kernels/api.h"
#include "tpp/quant/quant.h"

namespace tpp {
namespace {

// The rows of one layer's cache: positions held per head.
int64_t layer_rows(const ModelConfig& c, int l, int64_t capacity, bool rolling) {
  const bool ring = rolling && c.is_local(l) && c.window(l) < capacity;
  return ring ? c.window(l) : capacity;
}

}  // namespace

bool is_kv_type(DType t) { return t == DType::f32 || t == DType::f16 || t == DType::bf16 || t == DType::q8_0; }

DType check_kv_type(DType t, int head_dim, const char* what) {
  TPP_CHECK(is_kv_type(t), "{}: a KV cache holds f32, f16, bf16 or q8_0, got {}", what, dtype_name(t));
  TPP_CHECK(t != DType::q8_0 || head_dim % quant::kBlock == 0,
            "{}: q8_0 stores rows in blocks of 32, but head_dim is {}; use f16 or bf16", what, head_dim);
  return t;
}

KvCache::KvCache(const ModelConfig& c, int64_t capacity, DType type, bool rolling)
    : capacity_(capacity), type_(type), head_dim_(c.head_dim_resolved()) {
  TPP_CHECK(capacity > 0, "kv cache: capacity {} must be positive", capacity);
  check_kv_type(type, head_dim_, "kv cache");
  layers_.resize(size_t(c.n_layers));
  for (int l = 0; l < c.n_layers; ++l) {
    if (!c.owns_kv(l)) continue;
    Layer& layer = layers_[size_t(l)];
    layer.n_kv_heads = c.kv_heads(l);
    layer.cap = layer_rows(c, l, capacity, rolling);
    layer.ring = layer.cap < capacity;
    layer.row_bytes = dtype_bytes(type, head_dim_);
    const size_t n = size_t(layer.n_kv_heads * layer.cap * layer.row_bytes);
    layer.k.assign(n, std::byte{0});
    layer.v.assign(n, std::byte{0});
  }
}

int64_t KvCache::bytes() const {
  int64_t total = 0;
  for (const auto& l : layers_) total += int64_t(l.k.size() + l.v.size());
  return total;
}

void KvCache::encode_row(const float* x, std::byte* dst) const {
  const int k = head_dim_;
  switch (type_) {
    case DType::f32: std::memcpy(dst, x, size_t(k) * sizeof(float)); return;
    case DType::f16:
      for (int i = 0; i < k; ++i) {
        // Saturate: a key or value beyond half's range keeps its sign and the largest magnitude.
        const uint16_t h = f32_to_f16(std::clamp(x[i], -65504.0f, 65504.0f));
        std::memcpy(dst + 2 * i, &h, 2);
      }
      return;
    case DType::bf16:
      for (int i = 0; i < k; ++i) {
        const uint16_t h = f32_to_bf16(x[i]);
        std::memcpy(dst + 2 * i, &h, 2);
      }
      return;
    default: quant::quantize_row(DType::q8_0, x, k, dst); return;
  }
}

void KvCache::round_rows(float* x, int64_t rows) const {
  if (type_ == DType::f32) return;
  const int k = head_dim_;
  std::vector<std::byte> row(size_t(dtype_bytes(type_, k)));
  const auto& kr = kernels::kernels();
  for (int64_t r = 0; r < rows; ++r) {
    float* xr = x + r * k;
    encode_row(xr, row.data());
    const auto* u16 = reinterpret_cast<const uint16_t*>(row.data());
    switch (type_) {
      case DType::f16: kr.f16_to_f32(xr, u16, k); break;
      case DType::bf16: kr.bf16_to_f32(xr, u16, k); break;
      default: kr.dequant_q8_0(xr, row.data(), k); break;
    }
  }
}

int64_t kv_cache_bytes(const ModelConfig& c, int64_t tokens, DType dtype) {
  const int64_t row_bytes = dtype_bytes(check_kv_type(dtype, c.head_dim_resolved(), "kv cache"), c.head_dim_resolved());
  int64_t total = 0;
  for (int l = 0; l < c.n_layers; ++l)
    if (c.owns_kv(l)) total += 2 * int64_t(c.kv_heads(l)) * layer_rows(c, l, tokens, true) * row_bytes;
  return total;
}

}  // namespace tpp
