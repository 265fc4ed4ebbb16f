// KV cache: per layer that owns K/V (CLA-reusing layers own none), K and V of
// shape [g, cap, k]. Global layers hold every position (cap = capacity);
// sliding-window layers keep a rolling buffer of cap = min(w, capacity)
// positions, position p at row p % cap.
#pragma once

#include <cstdint>
#include <vector>

#include "tpp/core/dtype.h"
#include "tpp/model/config.h"

namespace tpp {

class KvCache {
 public:
  struct Layer {
    int n_kv_heads = 0;  // g
    int64_t cap = 0;     // rows per head
    bool ring = false;   // rolling buffer (local layer)
    std::vector<float> k, v;  // [g, cap, k]
  };

  // capacity: the longest sequence this cache will hold (<= max_seq_len).
  // rolling = false keeps every position even on local layers (the test
  // reference for the rolling buffer; a mask applies the window).
  KvCache(const ModelConfig& config, int64_t capacity, bool rolling = true);

  int64_t capacity() const { return capacity_; }
  int64_t n_past() const { return n_past_; }
  void set_n_past(int64_t n) { n_past_ = n; }
  void clear() { n_past_ = 0; }
  // nullptr for CLA layers that reuse another layer's K/V.
  Layer* layer(int l) { return layers_[size_t(l)].cap ? &layers_[size_t(l)] : nullptr; }
  int64_t bytes() const;

 private:
  std::vector<Layer> layers_;
  int64_t capacity_ = 0;
  int64_t n_past_ = 0;
};

// SPEC §2: 2 * sum over cache-owning layers of (g_l * k) * T_l * bytes, with
// T_l = min(T, w) on sliding-window layers.
int64_t kv_cache_bytes(const ModelConfig& config, int64_t tokens, DType dtype);

}  // namespace tpp
