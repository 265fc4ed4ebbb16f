#include "tpp/model/kv_cache.h"

#include <algorithm>

#include "tpp/core/error.h"

namespace tpp {

KvCache::KvCache(const ModelConfig& c, int64_t capacity, bool rolling) : capacity_(capacity) {
  TPP_CHECK(capacity > 0, "kv cache: capacity {} must be positive", capacity);
  const int64_t k = c.head_dim_resolved();
  layers_.resize(size_t(c.n_layers));
  for (int l = 0; l < c.n_layers; ++l) {
    if (!c.owns_kv(l)) continue;
    Layer& layer = layers_[size_t(l)];
    layer.n_kv_heads = c.kv_heads(l);
    layer.ring = rolling && c.is_local(l) && c.window(l) < capacity;
    layer.cap = layer.ring ? c.window(l) : capacity;
    const size_t n = size_t(layer.n_kv_heads * layer.cap * k);
    layer.k.assign(n, 0.0f);
    layer.v.assign(n, 0.0f);
  }
}

int64_t KvCache::bytes() const {
  int64_t total = 0;
  for (const auto& l : layers_) total += int64_t((l.k.size() + l.v.size()) * sizeof(float));
  return total;
}

int64_t kv_cache_bytes(const ModelConfig& c, int64_t tokens, DType dtype) {
  int64_t per_token_elems = 0, total = 0;
  for (int l = 0; l < c.n_layers; ++l) {
    if (!c.owns_kv(l)) continue;
    const int64_t t = c.is_local(l) ? std::min<int64_t>(tokens, c.window(l)) : tokens;
    per_token_elems = int64_t(c.kv_heads(l)) * c.head_dim_resolved();
    total += 2 * per_token_elems * t * dtype_size(dtype);
  }
  return total;
}

}  // namespace tpp
