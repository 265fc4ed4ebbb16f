// The Transformer++ forward pass over KV caches: a thin caller of the shared
// block (tpp/model/block.h) with keep = false.
//
// forward() takes the next n tokens of one sequence (positions n_past ..
// n_past+n-1), processes them in chunks of at most max_chunk tokens (batched,
// chunked prefill; decode is n = 1), appends their K/V to the cache and
// writes logits. forward_batch() runs the next tokens of several sequences,
// each with its own cache, as one batch (continuous batching): every matrix
// is read once for all of them. Scratch grows to the largest batch seen and
// is then reused: the per-token path allocates nothing.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "tpp/core/thread_pool.h"
#include "tpp/model/block.h"
#include "tpp/model/kv_cache.h"
#include "tpp/model/model.h"

namespace tpp {

class Transformer {
 public:
  explicit Transformer(const Model& model, int max_chunk = 256);

  const ModelConfig& config() const { return model_.config; }
  const Model& model() const { return model_; }

  // logits: [n, V] when all_logits, else [1, V] (the last token's).
  void forward(KvCache& cache, std::span<const int32_t> tokens, float* logits, bool all_logits,
               ThreadPool& pool);

  // One step of several sequences: each request's tokens continue its own
  // cache. logits: [n, V] when all_logits, else [1, V]; null = none wanted.
  struct Request {
    KvCache* cache = nullptr;
    std::span<const int32_t> tokens;
    float* logits = nullptr;
    bool all_logits = false;
  };
  void forward_batch(std::span<const Request> requests, ThreadPool& pool);

  // Use the naive attention (materialised scores) instead of the fused
  // kernel: the slow path the fused one is tested against.
  void set_naive_attention(bool naive) { block_.set_naive_attention(naive); }

 private:
  const Model& model_;
  int max_chunk_;
  Block<float> block_;
  RowPlan plan_;
  LayerActs<float> acts_;
  std::vector<SeqRows> seqs_;
  std::vector<int32_t> tokens_;
  std::vector<float> x_;       // [N, d] residual stream
  std::vector<float> rows_;    // [R, d] rows whose logits are wanted
  std::vector<float> hn_;      // [R, d] their final norm
  std::vector<float> logits_;  // [R, V] when several requests want logits
};

}  // namespace tpp
