// KV cache: per layer that owns K/V (CLA-reusing layers own none), K and V of
// shape [g, cap, k]. Global layers hold every position (cap = capacity);
// sliding-window layers keep a rolling buffer of cap = min(w, capacity)
// positions, position p at row p % cap.
//
// Rows are stored in the cache's type (llama.cpp's -ctk / -ctv):
//   f32  4 bytes per element
//   f16  2 (IEEE half; values beyond +-65504 saturate)
//   bf16 2 (round to nearest even)
//   q8_0 34 bytes per 32 elements (GGML's block: f16 scale, 32 int8; head_dim
//        a multiple of 32)
// Attention reads the stored rows directly (tpp/ops/attention.h). K and V
// enter a 16- or 8-bit cache rounded once: round_rows gives the rows' values
// as the cache will hold them, so the rows being processed attend to the
// same keys and values later tokens will read back, and a prompt evaluated
// at once gives the same result as one fed token by token.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "tpp/core/dtype.h"
#include "tpp/model/config.h"

namespace tpp {

class KvCache {
 public:
  struct Layer {
    int n_kv_heads = 0;         // g
    int64_t cap = 0;            // rows per head
    bool ring = false;          // rolling buffer (local layer)
    int64_t row_bytes = 0;      // one head's K (or V) at one position
    std::vector<std::byte> k, v;  // [g, cap] rows of row_bytes
    std::byte* k_row(int head, int64_t row) { return k.data() + (head * cap + row) * row_bytes; }
    std::byte* v_row(int head, int64_t row) { return v.data() + (head * cap + row) * row_bytes; }
  };

  // capacity: the longest sequence this cache will hold (<= max_seq_len).
  // type: f32, f16, bf16 or q8_0. rolling = false keeps every position even
  // on local layers (the test reference for the rolling buffer; a mask
  // applies the window).
  KvCache(const ModelConfig& config, int64_t capacity, DType type = DType::f32, bool rolling = true);

  int64_t capacity() const { return capacity_; }
  DType type() const { return type_; }
  int head_dim() const { return head_dim_; }
  int64_t n_past() const { return n_past_; }
  void set_n_past(int64_t n) { n_past_ = n; }
  void clear() { n_past_ = 0; }
  // nullptr for CLA layers that reuse another layer's K/V.
  Layer* layer(int l) { return layers_[size_t(l)].cap ? &layers_[size_t(l)] : nullptr; }
  // The bytes the K and V arrays hold (what the engine allocated).
  int64_t bytes() const;

  // Each of `rows` rows of head_dim floats replaced by its value in the
  // cache's type (encoded, then decoded); nothing changes for f32.
  void round_rows(float* x, int64_t rows) const;
  // One row of head_dim floats stored at dst (row_bytes of the layer).
  void encode_row(const float* x, std::byte* dst) const;

 private:
  std::vector<Layer> layers_;
  int64_t capacity_ = 0;
  int64_t n_past_ = 0;
  DType type_ = DType::f32;
  int head_dim_ = 0;
};

// The types a KV cache can hold, and the error for any other, naming `what`
// (an option or field) and the expected values.
bool is_kv_type(DType t);
DType check_kv_type(DType t, int head_dim, const char* what);

// The bytes a KvCache(config, tokens, dtype) allocates: 2 * sum over
// cache-owning layers of g_l * T_l * bytes(k elements in dtype), with
// T_l = min(T, w) on sliding-window layers (SPEC §2; for f32, f16 and bf16
// the bytes per element are 4, 2, 2; q8_0 stores 34 per 32).
int64_t kv_cache_bytes(const ModelConfig& config, int64_t tokens, DType dtype);

}  // namespace tpp
