// The Transformer++ forward pass over a KV cache.
//
// forward() takes the next n tokens of a sequence (positions n_past .. n_past+n-1),
// processes them in chunks of at most max_chunk tokens (batched, chunked
// prefill; decode is n = 1), appends their K/V to the cache and writes logits.
// All scratch is allocated once here: the per-token path allocates nothing.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "tpp/core/thread_pool.h"
#include "tpp/model/kv_cache.h"
#include "tpp/model/model.h"
#include "tpp/ops/attention.h"
#include "tpp/ops/rope.h"

namespace tpp {

class Transformer {
 public:
  explicit Transformer(const Model& model, int max_chunk = 256);

  const ModelConfig& config() const { return model_.config; }
  const Model& model() const { return model_; }

  // logits: [n, V] when all_logits, else [1, V] (the last token's).
  void forward(KvCache& cache, std::span<const int32_t> tokens, float* logits, bool all_logits,
               ThreadPool& pool);

  // Use the naive attention (materialised scores) instead of the fused
  // kernel: the slow path the fused one is tested against.
  void set_naive_attention(bool naive) { naive_attention_ = naive; }

 private:
  void forward_chunk(KvCache& cache, const int32_t* tokens, int64_t n, float* logits,
                     bool all_logits, ThreadPool& pool);
  void embed(const int32_t* tokens, int64_t n, int64_t pos0);
  void norm(const std::vector<float>& w, const std::vector<float>& b, const float* in, float* out,
            int64_t n, int64_t d) const;
  void attention(int l, KvCache& cache, const float* in, int64_t n, int64_t pos0, float* out,
                 ThreadPool& pool);
  void ffn(int l, const float* in, int64_t n, float* out, ThreadPool& pool);
  // The RoPE parameters and this chunk's cos/sin table for layer l.
  std::pair<const RopeParams*, const RopeTable*> rope_for(int l) const;
  void prepare_rope(int64_t pos0, int64_t n);

  const Model& model_;
  int max_chunk_;
  bool naive_attention_ = false;
  RopeParams rope_global_, rope_local_, rope_dynamic_;
  RopeTable table_global_, table_local_;
  bool dynamic_now_ = false;  // this chunk uses the dynamic-NTK base
  // Scratch, sized for max_chunk rows.
  std::vector<float> x_;      // [n, d] residual stream
  std::vector<float> a_;      // [n, d] normed input
  std::vector<float> o_;      // [n, d] attention output
  std::vector<float> f_;      // [n, d] ffn output
  std::vector<float> q_;      // [n, h*k]
  std::vector<float> kk_;     // [n, g*k] chunk K of the current CLA group
  std::vector<float> vv_;     // [n, g*k]
  std::vector<float> att_;    // [n, h*k]
  std::vector<float> gate_;   // [n, F]
  std::vector<float> up_;     // [n, F]
  std::vector<float> row_;    // [d]
};

}  // namespace tpp
