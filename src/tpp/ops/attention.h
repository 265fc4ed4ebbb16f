// Causal multi-head attention with GQA/MQA, sliding windows, soft-capping and
// the plus-one softmax, over keys that live in one or more segments (the KV
// cache, possibly a rolling buffer, and the current chunk's fresh K/V).
//
//   s_j = (q . k_j) * scale;  s_j <- c*tanh(s_j/c) if softcap c > 0
//   visible keys: p_j <= p_q and, with a window w, p_j > p_q - w
//   standard: o = sum_j softmax(s)_j v_j;  plus_one: o = sum_j e^{s_j} v_j / (1 + sum_j e^{s_j})
// Query head i reads KV head floor(i * g / h).
// Ref: FlashAttention (Dao et al. 2022) online softmax; "Attention is off by one"
// (Miller 2023) for plus_one; Gemma 2 for the soft-cap.
//
// attention_forward is the fused kernel: keys are visited in tiles with a
// running max and sum (online softmax), so no T x T score matrix exists and
// memory is O(T). attention_naive materialises each query's scores and is
// the reference the fused kernel is tested against.
#pragma once

#include <cstdint>
#include <span>

#include "tpp/core/thread_pool.h"

namespace tpp {

// Positions [pos_begin, pos_end) of K and V for all g KV heads.
// Element (head j, position p, dim i) is at base[j*head_stride + row(p)*pos_stride + i],
// row(p) = p % ring when ring > 0 (rolling buffer), else p - pos_begin.
struct KvSegment {
  const float* k = nullptr;
  const float* v = nullptr;
  int64_t head_stride = 0, pos_stride = 0;
  int64_t pos_begin = 0, pos_end = 0;
  int64_t ring = 0;
  int64_t row(int64_t p) const { return ring > 0 ? p % ring : p - pos_begin; }
};

struct AttentionShape {
  int n_heads = 0;     // h
  int n_kv_heads = 0;  // g
  int head_dim = 0;    // k
  float scale = 0;
  float softcap = 0;   // 0 = off
  bool plus_one = false;
  int64_t window = 0;  // 0 = global
};

// out: [n, h*k]   q: [n, h*k]; query row t is at position q_pos0 + t.
void attention_forward(float* out, const float* q, int64_t n, int64_t q_pos0,
                       std::span<const KvSegment> segments, const AttentionShape& shape,
                       ThreadPool& pool);
void attention_naive(float* out, const float* q, int64_t n, int64_t q_pos0,
                     std::span<const KvSegment> segments, const AttentionShape& shape);

}  // namespace tpp
