// Causal multi-head attention with GQA/MQA, sliding windows, soft-capping and
// the plus-one softmax, over keys that live in one or more segments (the KV
// cache, possibly a rolling buffer, and the current rows' fresh K/V).
//
//   s_j = (q . k_j) * scale - m_i (p_q - p_j);  s_j <- c*tanh(s_j/c) if softcap c > 0
// with ALiBi slopes m_i per query head (Press et al. 2022, "Train Short, Test
// Long"; 0 without ALiBi): m_i = 2^(-8 (i+1) / h) for h a power of two, and
// BLOOM's interleaving of the next power's slopes otherwise.
//   visible keys: p_j <= p_q and, with a window w, p_j > p_q - w
//   standard: o = sum_j softmax(s)_j v_j;  plus_one: o = sum_j e^{s_j} v_j / (1 + sum_j e^{s_j})
// Query head i reads KV head floor(i * g / h) (h a multiple of g); any h/g runs (groups larger
// than the kernel's are processed in parts).
// Ref: FlashAttention (Dao et al. 2022) online softmax, FlashAttention-2 (Dao
// 2023) backward from the saved log-sum-exp; "Attention is off by one"
// (Miller 2023) for plus_one; Gemma 2 for the soft-cap.
//
// attention_forward is the fused kernel: keys are visited in tiles with a
// running max and sum (online softmax), so no T x T score matrix exists and
// memory is O(T). It can save each row's log-sum-exp; attention_backward then
// recomputes the probabilities block by block from it (P = exp(s - lse)), so
// training holds O(T) memory too. attention_naive materialises each query's
// scores and is the reference the fused kernel is tested against.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "tpp/core/dtype.h"
#include "tpp/core/thread_pool.h"

namespace tpp {

// Positions [pos_begin, pos_end) of K and V for all g KV heads.
// Element (head j, position p, dim i) is at base[j*head_stride + row(p)*pos_stride + i],
// row(p) = p % ring when ring > 0 (rolling buffer), else p - pos_begin.
//
// A KV cache stored in f16, bf16 or q8_0 (float attention only) sets `type`
// and gives its rows instead: head j, position p at the bytes
// kq + j*head_bytes + row(p)*row_bytes (vq likewise), each row head_dim
// elements in that type (tpp/model/kv_cache.h); k and v stay null.
template <class R>
struct KvSegmentT {
  const R* k = nullptr;
  const R* v = nullptr;
  int64_t head_stride = 0, pos_stride = 0;
  int64_t pos_begin = 0, pos_end = 0;
  int64_t ring = 0;
  DType type = DType::f32;
  const std::byte* kq = nullptr;
  const std::byte* vq = nullptr;
  int64_t head_bytes = 0, row_bytes = 0;
  int64_t row(int64_t p) const { return ring > 0 ? p % ring : p - pos_begin; }
};
using KvSegment = KvSegmentT<float>;

struct AttentionShape {
  int n_heads = 0;     // h
  int n_kv_heads = 0;  // g
  int head_dim = 0;    // k
  float scale = 0;
  float softcap = 0;   // 0 = off
  bool plus_one = false;
  int64_t window = 0;  // 0 = global
  bool alibi = false;  // ALiBi biases with alibi_slopes(n_heads)
};

// The ALiBi slope of each of h query heads (transformers' build_alibi_tensor).
std::vector<float> alibi_slopes(int n_heads);

// out: [n, h*k]   q: [n, h*k]; query row t is at position q_pos0 + t.
// lse: [n, h] or null: log(sum_j e^{s_j}) of each row and head (with the
// plus-one softmax's phantom e^0 included).
template <class R>
void attention_forward(R* out, const R* q, int64_t n, int64_t q_pos0, std::span<const KvSegmentT<R>> segments,
                       const AttentionShape& shape, ThreadPool& pool, R* lse = nullptr);
// Spans of float segments from arrays or vectors.
inline void attention_forward(float* out, const float* q, int64_t n, int64_t q_pos0,
                              std::span<const KvSegment> segments, const AttentionShape& shape, ThreadPool& pool,
                              float* lse = nullptr) {
  attention_forward<float>(out, q, n, q_pos0, segments, shape, pool, lse);
}
// One query row of each of several sequences (the decode steps of a
// continuous batch): what attention_forward gives each with n = 1, bit for
// bit, computed in one parallel pass over all of them.
struct DecodeRow {
  float* out = nullptr;        // [h*k]
  const float* q = nullptr;    // [h*k]
  int64_t q_pos0 = 0;
  std::span<const KvSegment> segments;
  float* lse = nullptr;        // [h] or null
};
void attention_decode(std::span<const DecodeRow> rows, const AttentionShape& shape, ThreadPool& pool);

void attention_naive(float* out, const float* q, int64_t n, int64_t q_pos0,
                     std::span<const KvSegment> segments, const AttentionShape& shape);

// The rows of one sequence inside a batch: rows [row0, row0 + n) at
// positions pos0 .. pos0 + n - 1, attending to its own rows only (training).
struct AttnSeq {
  int64_t row0 = 0, n = 0, pos0 = 0;
};

// The forward of sequences that attend to their own rows only (no cache), in
// one parallel pass over all of them: q, out: [N, h*k]; k, v: [N, g*k];
// lse: [N, h] or null. attention_forward takes this path by itself when its
// only keys are the query rows.
template <class R>
void attention_forward_self(R* out, const R* q, const R* k, const R* v, std::span<const AttnSeq> seqs,
                            const AttentionShape& shape, ThreadPool& pool, R* lse = nullptr);

template <class R>
struct AttentionBackward {
  const R* dout = nullptr;  // [N, h*k]
  const R* q = nullptr;     // [N, h*k]
  const R* k = nullptr;     // [N, g*k]
  const R* v = nullptr;     // [N, g*k]
  const R* out = nullptr;   // [N, h*k] the forward's output
  const R* lse = nullptr;   // [N, h] the forward's log-sum-exp
  R* dq = nullptr;          // [N, h*k] written
  R* dk = nullptr;          // [N, g*k] accumulated (CLA groups share K/V)
  R* dv = nullptr;          // [N, g*k] accumulated
};

// Work items are (sequence, KV head) pairs; each walks its query rows in
// blocks of 64 over the visible keys only, with O(64 * T) scratch per worker.
template <class R>
void attention_backward(const AttentionBackward<R>& a, std::span<const AttnSeq> seqs, const AttentionShape& shape,
                        ThreadPool& pool);

}  // namespace tpp
