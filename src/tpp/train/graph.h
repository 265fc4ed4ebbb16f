// The training graph: the shared Transformer++ block (tpp/model/block.h) run
// over whole sequences with keep = true, the output head and cross-entropy,
// and the backward pass of every op.
//
// Templated on the scalar type: float is what training runs (SIMD kernels,
// thread pool); double exists so every backward can be checked against central
// finite differences with the same code (tests/train/graph_test.cpp).
//
// Shapes: B sequences of T tokens, N = B*T rows; every sequence starts at
// position 0. Loss = mean cross-entropy of the N targets.
// Attention keeps only each row's log-sum-exp between passes; the backward
// recomputes the probabilities tile by tile (FlashAttention-2), so the memory
// of a step grows linearly in T.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "tpp/core/thread_pool.h"
#include "tpp/model/config.h"
#include "tpp/train/params.h"

namespace tpp::train {

struct Batch {
  int64_t B = 0, T = 0;
  const int32_t* tokens = nullptr;   // [B, T]
  const int32_t* targets = nullptr;  // [B, T]: the token after each input token
};

template <class R>
class Graph {
 public:
  Graph(const ModelConfig& config, const ParamLayout& layout);
  ~Graph();
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;

  // Mean cross-entropy of the batch; keeps the activations for backward().
  double forward(const R* params, const Batch& batch, ThreadPool& pool);
  // grads += scale * d(loss)/d(params), for the last forward's batch.
  void backward(const R* params, R* grads, R scale, ThreadPool& pool);
  // The same over weights laid out as the graph's layout but stored as the
  // caller prepared them (bf16 compute: Bf16Weights); grads stay in the layout.
  double forward(const ModelWeights& w, const Batch& batch, ThreadPool& pool);
  void backward(const ModelWeights& w, R* grads, R scale, ThreadPool& pool);

  // Logits of the last forward, [N, V] (after the final soft-cap).
  const std::vector<R>& logits() const { return logits_; }
  // After a forward: the first saved activation holding a non-finite value,
  // in forward order ("blk.3 ffn gate", "logits"), or "" when all are finite.
  std::string first_non_finite() const;

  // Bytes held for activations and scratch (after the first step).
  int64_t bytes() const;

  // Called during backward() as gradients become final: on_ready(level)
  // says the gradients of the head (final norm, untied output matrix) and of
  // every layer >= level are complete for this backward; level n_layers
  // after the head, l after layer l, -1 at the end (the embeddings).
  // Data-parallel training starts exchanging them while the backward goes
  // on. Empty: no calls.
  void set_on_ready(std::function<void(int level)> on_ready);

 private:
  struct Impl;
  Impl* impl_;
  std::vector<R> logits_;
};

extern template class Graph<float>;
extern template class Graph<double>;

}  // namespace tpp::train
