// The Transformer++ layer, written once for inference and training.
//
// A forward pass runs over a batch of rows: one or more sequences, each with
// its own positions and, in inference, its own KV cache (decode, chunked
// prefill and continuous batching are all "some rows of some sequences").
// Training sequences have no cache: attention reads their own rows only.
// The same code computes both, so "training forward equals inference
// forward" holds by construction.
//
// Layer wiring (N = a norm, f = attention or FFN):
//   pre:      x + f(N(x))          post: N(x + f(x))
//   sandwich: x + N2(f(N1(x)))     parallel: x + Attn(N(x)) + FFN(N(x))
// with CLA (layers reusing the K/V of the first layer of their group) and
// every attention switch of the config.
//
// With keep = true the forward keeps in LayerActs what backward() needs
// (inputs of every norm, q/k/v, the attention output and its log-sum-exp,
// the FFN's pre-activations): O(T) per layer, no T x T buffer.
// Templated on R: float runs the kernels (weights in any storage dtype);
// double runs the same wiring for the finite-difference checks (f64 weights).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "tpp/core/thread_pool.h"
#include "tpp/model/config.h"
#include "tpp/model/kv_cache.h"
#include "tpp/model/weights.h"
#include "tpp/ops/attention.h"
#include "tpp/ops/rope.h"

namespace tpp {

// One sequence's rows in a batch: rows [row0, row0 + n) at positions
// pos0 .. pos0 + n - 1. cache: its KV cache (inference), holding positions
// [0, pos0); nullptr = attend to these rows only (training).
struct SeqRows {
  int64_t row0 = 0, n = 0, pos0 = 0;
  KvCache* cache = nullptr;
};

// A batch's rows: built once per forward, shared by all layers.
struct RowPlan {
  std::vector<SeqRows> seqs;
  std::vector<AttnSeq> attn_seqs;  // the same, for the attention backward
  std::vector<int64_t> pos;        // [N] position of each row
  int64_t N = 0;
  RopeTable rope_global, rope_local;  // [N] rows of cos/sin
};

// Gradients of one layer's (or the global) tensors, by id; nullptr = absent.
template <class R>
struct TensorGrads {
  std::array<R*, kTensorIds> g{};
  R* operator[](TensorId id) const { return g[size_t(id)]; }
};

// What a layer's forward keeps (keep = true), and its scratch.
template <class R>
struct LayerActs {
  std::vector<R> x0;     // [N, d] layer input (kept)
  std::vector<R> a1;     // [N, d] attention input after its norm
  std::vector<R> qr, kr; // [N, h*k], [N, g*k] q/k before QK-norm (kept)
  std::vector<R> q;      // [N, h*k] after QK-norm and RoPE
  std::vector<R> k, v;   // [N, g*k] (the CLA group's first layer only)
  std::vector<R> att;    // [N, h*k] attention output before the o projection
  std::vector<R> lse;    // [N, h] attention log-sum-exp (kept)
  std::vector<R> o_raw;  // [N, d] attention output before the sandwich norm (kept)
  std::vector<R> x1;     // [N, d] residual after attention (kept)
  std::vector<R> a2;     // [N, d] FFN input after its norm
  std::vector<R> gate, up, hact;  // [N, F]
  std::vector<R> f_raw;  // [N, d] FFN output before the sandwich norm (kept)
  std::vector<R> y;      // [N, d] post-norm block output before its norm (kept)

  int64_t bytes() const;
  // The first buffer holding a non-finite value, by name ("" when none).
  std::string first_non_finite() const;
};

template <class R>
class Block {
 public:
  explicit Block(const ModelConfig& config);
  const ModelConfig& config() const { return c_; }

  // Positions and RoPE tables of a batch of sequences (rows in order).
  void plan(RowPlan& plan, std::span<const SeqRows> seqs) const;

  // x: [N, d] = embeddings of tokens [N] (with absolute positions).
  void embed(R* x, const int32_t* tokens, const RowPlan& plan, const ModelWeights& w, ThreadPool& pool) const;

  // Layer l on x: [N, d] in place. kv: the activations of the layer whose K/V
  // this layer reads (itself, or its CLA group's first layer). When this
  // layer is its group's last, the group's fresh K/V enter the sequences'
  // caches.
  void forward(int l, R* x, const RowPlan& plan, const TensorSlots& w, LayerActs<R>& acts, const LayerActs<R>& kv,
               bool keep, ThreadPool& pool);

  // dx: [N, d] holds d(loss)/d(layer output) on entry, d/d(layer input) on
  // exit; parameter gradients accumulate into g. Layers must be walked from
  // the last to the first (a CLA group's dK/dV accumulate down to its owner).
  void backward(int l, R* dx, const RowPlan& plan, const TensorSlots& w, const TensorGrads<R>& g,
                const LayerActs<R>& acts, const LayerActs<R>& kv, ThreadPool& pool);

  // logits: [rows, V] from x: [rows, d] (final norm, output head, soft-cap).
  // hn: [rows, d] receives the final norm's output (the head's input).
  void head(R* logits, R* hn, const R* x, int64_t rows, const ModelWeights& w, ThreadPool& pool) const;

  // Use the naive attention (materialised scores, float only) instead of the
  // fused kernel: the slow path the fused one is tested against.
  void set_naive_attention(bool naive) { naive_attention_ = naive; }

  // Bytes of the scratch shared by the layers.
  int64_t scratch_bytes() const;

 private:
  void norm(R* y, const R* x, int64_t N, const TensorSlots& w, TensorId wi, TensorId bi, ThreadPool& pool) const;
  void norm_bwd(R* dx, bool accumulate, const R* dy, const R* x, int64_t N, const TensorSlots& w,
                const TensorGrads<R>& g, TensorId wi, TensorId bi, ThreadPool& pool) const;
  void attention(int l, const R* in, R* out, const RowPlan& plan, const TensorSlots& w, LayerActs<R>& s,
                 const LayerActs<R>& kv, bool keep, ThreadPool& pool);
  void attention_bwd(int l, const R* in, const R* dout, R* din, bool din_acc, const RowPlan& plan,
                     const TensorSlots& w, const TensorGrads<R>& g, const LayerActs<R>& s, const LayerActs<R>& kv,
                     ThreadPool& pool);
  void ffn(const R* in, R* out, int64_t N, const TensorSlots& w, LayerActs<R>& s, bool keep, ThreadPool& pool);
  void ffn_bwd(const R* in, const R* dout, R* din, bool din_acc, int64_t N, const TensorSlots& w,
               const TensorGrads<R>& g, const LayerActs<R>& s, ThreadPool& pool);
  AttentionShape attn_shape(int l) const;
  const RopeTable& rope_table_for(int l, const RowPlan& plan) const;

  ModelConfig c_;
  RopeParams rope_global_, rope_local_;
  bool naive_attention_ = false;
  // Scratch shared by the layers: attention / FFN outputs and backward buffers.
  std::vector<R> o_, f_, dA_, dB_, din_, datt_, dq_, dkv_k_, dkv_v_, dgate_, dup_, tmp_;
  // The single-row sequences of a batch (decode steps), attended in one pass.
  std::vector<KvSegment> decode_segs_;
  std::vector<DecodeRow> decode_rows_;
};

extern template class Block<float>;
extern template class Block<double>;

}  // namespace tpp
