#include "tpp/train/graph.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <type_traits>

#include <fmt/format.h>

#include "tpp/core/error.h"
#include "tpp/model/block.h"
#include "tpp/ops/cross_entropy.h"
#include "tpp/ops/embedding.h"
#include "tpp/ops/linear.h"
#include "tpp/ops/norm.h"

namespace tpp::train {

template <class R>
struct Graph<R>::Impl {
  const ModelConfig& c;
  const ParamLayout& L;
  Block<R> block;
  RowPlan plan;
  std::vector<LayerActs<R>> acts;
  std::vector<int32_t> tokens, targets;
  std::vector<R> x, hn, dx, dtmp;  // [N, d]: residual stream (after the last layer), head input, gradients
  int64_t N = 0;
  // f32 on a CPU with the packed f32 kernel: the forward multiplies packed
  // copies, as inference does.
  std::unique_ptr<PackedF32Weights> packed;
  std::function<void(int)> on_ready;

  Impl(const ModelConfig& config, const ParamLayout& layout)
      : c(config), L(layout), block(config), acts(size_t(config.n_layers)) {
    if constexpr (std::is_same_v<R, float>)
      if (PackedF32Weights::supported()) packed = std::make_unique<PackedF32Weights>(layout);
  }

  void ready(int level) const {
    if (on_ready) on_ready(level);
  }

  TensorGrads<R> grads_of(R* grads, int layer) const {
    TensorGrads<R> g;
    for (size_t i = 0; i < kTensorIds; ++i) {
      const int64_t off = layer >= 0 ? L.layers[size_t(layer)][i] : L.global[i];
      if (is_per_layer(TensorId(i)) == (layer >= 0) && off >= 0) g.g[i] = grads + off;
    }
    return g;
  }
};

template <class R>
Graph<R>::Graph(const ModelConfig& config, const ParamLayout& layout) : impl_(new Impl(config, layout)) {}

template <class R>
Graph<R>::~Graph() {
  delete impl_;
}

template <class R>
double Graph<R>::forward(const R* params, const Batch& batch, ThreadPool& pool) {
  if constexpr (std::is_same_v<R, float>)
    if (impl_->packed) return forward(impl_->packed->refresh(params, pool), batch, pool);
  return forward(weights_view(impl_->L, params), batch, pool);
}

template <class R>
void Graph<R>::backward(const R* params, R* grads, R scale, ThreadPool& pool) {
  backward(weights_view(impl_->L, params), grads, scale, pool);
}

template <class R>
double Graph<R>::forward(const ModelWeights& w, const Batch& batch, ThreadPool& pool) {
  Impl& m = *impl_;
  const ModelConfig& c = m.c;
  TPP_CHECK(batch.B > 0 && batch.T > 0, "train: empty batch ({} x {})", batch.B, batch.T);
  if (c.pos_encoding == PosEncoding::learned)
    TPP_CHECK(batch.T <= c.max_seq_len, "train: sequence length {} exceeds max_seq_len {} (learned positions)", batch.T,
              c.max_seq_len);
  const int64_t N = batch.B * batch.T, d = c.d_model, V = c.vocab_size;
  m.N = 0;
  m.tokens.assign(batch.tokens, batch.tokens + N);
  m.targets.assign(batch.targets, batch.targets + N);
  for (int64_t i = 0; i < N; ++i)
    TPP_CHECK(m.targets[size_t(i)] >= 0 && m.targets[size_t(i)] < V, "train: target id {} at {} outside [0, {})",
              m.targets[size_t(i)], i, V);
  std::vector<SeqRows> seqs;
  for (int64_t b = 0; b < batch.B; ++b) seqs.push_back({b * batch.T, batch.T, 0, nullptr});
  m.block.plan(m.plan, seqs);
  m.x.resize(size_t(N * d));
  m.block.embed(m.x.data(), m.tokens.data(), m.plan, w, pool);
  for (int l = 0; l < c.n_layers; ++l)
    m.block.forward(l, m.x.data(), m.plan, w.layers[size_t(l)], m.acts[size_t(l)], m.acts[size_t(c.kv_source(l))],
                    true, pool);
  m.hn.resize(size_t(N * d));
  logits_.resize(size_t(N * V));
  m.block.head(logits_.data(), m.hn.data(), m.x.data(), N, w, pool);
  m.N = N;
  return cross_entropy_forward(logits_.data(), m.targets.data(), N, V, pool);
}

template <class R>
void Graph<R>::backward(const ModelWeights& w, R* grads, R scale, ThreadPool& pool) {
  Impl& m = *impl_;
  const ModelConfig& c = m.c;
  const int64_t N = m.N, d = c.d_model, V = c.vocab_size;
  TPP_CHECK(N > 0 && logits_.size() == size_t(N * V), "train: backward() without a forward()");
  const TensorGrads<R> gg = m.grads_of(grads, -1);
  // dlogits in place, through the final soft-cap.
  cross_entropy_backward(logits_.data(), m.targets.data(), N, V, scale, R(c.final_softcap), pool);
  m.dx.resize(size_t(N * d));
  linear_backward<R>(m.dx.data(), false, {gg[TensorId::output]}, logits_.data(), m.hn.data(), N,
                     w.global[TensorId::output], pool);
  if (c.has_final_norm()) {
    m.dtmp.resize(size_t(N * d));
    const NormParams p{c.norm, c.norm_one_plus && c.norm == NormKind::rmsnorm, c.norm_eps};
    norm_backward<R>(m.dtmp.data(), false, m.dx.data(), m.x.data(), N, d,
                     {w.global.vec<R>(TensorId::output_norm), w.global.vec<R>(TensorId::output_norm_b)},
                     {gg[TensorId::output_norm], gg[TensorId::output_norm_b]}, p, pool);
    m.dx.swap(m.dtmp);
  }
  m.ready(c.n_layers);
  for (int l = c.n_layers - 1; l >= 0; --l) {
    m.block.backward(l, m.dx.data(), m.plan, w.layers[size_t(l)], m.grads_of(grads, l), m.acts[size_t(l)],
                     m.acts[size_t(c.kv_source(l))], pool);
    m.ready(l);
  }
  embed_backward(gg[TensorId::tok_embd], gg[TensorId::pos_embd], m.dx.data(), m.tokens.data(), m.plan.pos.data(), N,
                 d, EmbedParams{c.embed_scale, c.pos_encoding});
  m.ready(-1);
  m.N = 0;  // the logits now hold gradients: a second backward needs a new forward
}

template <class R>
void Graph<R>::set_on_ready(std::function<void(int)> on_ready) {
  impl_->on_ready = std::move(on_ready);
}

template <class R>
std::string Graph<R>::first_non_finite() const {
  for (size_t l = 0; l < impl_->acts.size(); ++l) {
    const std::string bad = impl_->acts[l].first_non_finite();
    if (!bad.empty()) return fmt::format("blk.{} {}", l, bad);
  }
  for (R v : impl_->x)
    if (!std::isfinite(v)) return "final residual";
  for (R v : logits_)
    if (!std::isfinite(v)) return "logits";
  return "";
}

template <class R>
int64_t Graph<R>::bytes() const {
  int64_t total = int64_t(logits_.capacity() * sizeof(R)) + impl_->block.scratch_bytes();
  for (const auto& a : impl_->acts) total += a.bytes();
  for (const auto* v : {&impl_->x, &impl_->hn, &impl_->dx, &impl_->dtmp}) total += int64_t(v->capacity() * sizeof(R));
  return total;
}

template class Graph<float>;
template class Graph<double>;

}  // namespace tpp::train
