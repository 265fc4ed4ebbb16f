#include "tpp/model/transformer.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "tpp/core/error.h"
#include "tpp/ops/activation.h"
#include "tpp/ops/linear.h"
#include "tpp/ops/norm.h"

namespace tpp {
namespace {

int orig_max(const ModelConfig& c) {
  return c.rope_scaling.original_max_position_embeddings > 0
             ? c.rope_scaling.original_max_position_embeddings
             : c.max_seq_len;
}

void add_into(float* x, const float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

}  // namespace

Transformer::Transformer(const Model& model, int max_chunk) : model_(model), max_chunk_(max_chunk) {
  const ModelConfig& c = model.config;
  TPP_CHECK(max_chunk > 0, "transformer: max_chunk {} must be positive", max_chunk);
  const int k = c.head_dim_resolved(), r = c.rotary_dim_resolved();
  rope_global_ = make_rope(k, r, c.rope_layout, c.rope_theta, c.rope_scaling, orig_max(c), 0);
  if (c.rope_local_theta > 0)
    rope_local_ = make_rope(k, r, c.rope_layout, c.rope_local_theta, RopeScaling{}, orig_max(c), 0);
  else
    rope_local_ = rope_global_;
  int g_max = 0;
  for (int l = 0; l < c.n_layers; ++l) g_max = std::max(g_max, c.kv_heads(l));
  const size_t n = size_t(max_chunk), d = size_t(c.d_model), hk = size_t(c.n_heads) * size_t(k);
  x_.resize(n * d);
  a_.resize(n * d);
  o_.resize(n * d);
  f_.resize(n * d);
  q_.resize(n * hk);
  kk_.resize(n * size_t(g_max) * size_t(k));
  vv_.resize(kk_.size());
  att_.resize(n * hk);
  gate_.resize(n * size_t(c.ffn_width()));
  up_.resize(n * size_t(c.ffn_width()));
  row_.resize(d);
}

void Transformer::prepare_rope(int64_t pos0, int64_t n) {
  const ModelConfig& c = model_.config;
  if (c.rotary_dim_resolved() == 0) return;
  const int64_t seq_len = pos0 + n;
  // Dynamic NTK: the base grows with the length being processed (HF semantics).
  dynamic_now_ = c.rope_scaling.type == RopeScalingType::dynamic_ntk && seq_len > orig_max(c);
  if (dynamic_now_)
    rope_dynamic_ = make_rope(c.head_dim_resolved(), c.rotary_dim_resolved(), c.rope_layout,
                              c.rope_theta, c.rope_scaling, orig_max(c), int(seq_len));
  rope_table(table_global_, dynamic_now_ ? rope_dynamic_ : rope_global_, pos0, n);
  if (c.rope_local_theta > 0) rope_table(table_local_, rope_local_, pos0, n);
}

std::pair<const RopeParams*, const RopeTable*> Transformer::rope_for(int l) const {
  const ModelConfig& c = model_.config;
  if (c.is_local(l) && c.rope_local_theta > 0) return {&rope_local_, &table_local_};
  return {dynamic_now_ ? &rope_dynamic_ : &rope_global_, &table_global_};
}

void Transformer::norm(const std::vector<float>& w, const std::vector<float>& b, const float* in,
                       float* out, int64_t n, int64_t d) const {
  const ModelConfig& c = model_.config;
  if (c.norm == NormKind::rmsnorm)
    rmsnorm_forward(out, in, n, d, w, float(c.norm_eps), c.norm_one_plus);
  else
    layernorm_forward(out, in, n, d, w, b, float(c.norm_eps));
}

void Transformer::forward(KvCache& cache, std::span<const int32_t> tokens, float* logits,
                          bool all_logits, ThreadPool& pool) {
  const ModelConfig& c = model_.config;
  const int64_t n = int64_t(tokens.size());
  TPP_CHECK(n > 0, "forward: no tokens");
  TPP_CHECK(cache.n_past() + n <= cache.capacity(),
            "forward: {} cached + {} new tokens exceed the KV cache capacity {}", cache.n_past(), n,
            cache.capacity());
  for (int64_t i = 0; i < n; ++i)
    TPP_CHECK(tokens[size_t(i)] >= 0 && tokens[size_t(i)] < c.vocab_size,
              "forward: token id {} at index {} is outside the vocabulary [0, {})",
              tokens[size_t(i)], i, c.vocab_size);
  if (c.pos_encoding == PosEncoding::learned)
    TPP_CHECK(cache.n_past() + n <= c.max_seq_len,
              "forward: position {} exceeds the learned position table (max_seq_len {})",
              cache.n_past() + n - 1, c.max_seq_len);
  for (int64_t done = 0; done < n; done += max_chunk_) {
    const int64_t m = std::min<int64_t>(max_chunk_, n - done);
    const bool last = done + m == n;
    float* out = all_logits ? logits + done * c.vocab_size : (last ? logits : nullptr);
    forward_chunk(cache, tokens.data() + done, m, out, all_logits, pool);
  }
}

void Transformer::embed(const int32_t* tokens, int64_t n, int64_t pos0) {
  const ModelConfig& c = model_.config;
  const int64_t d = c.d_model;
  const float scale = float(c.embed_scale);
  for (int64_t t = 0; t < n; ++t) {
    float* x = x_.data() + t * d;
    model_.weights.tok_embd.row_f32(tokens[t], x);
    if (scale != 1.0f)
      for (int64_t i = 0; i < d; ++i) x[i] *= scale;
    const int64_t pos = pos0 + t;
    if (c.pos_encoding == PosEncoding::learned) {
      model_.weights.pos_embd.row_f32(pos, row_.data());
      add_into(x, row_.data(), d);
    } else if (c.pos_encoding == PosEncoding::sinusoidal) {
      // Vaswani et al.: PE[pos, 2i] = sin(pos / 10000^(2i/d)), PE[pos, 2i+1] = cos(...)
      for (int64_t i = 0; 2 * i < d; ++i) {
        const double angle = double(pos) / std::pow(10000.0, double(2 * i) / double(d));
        x[2 * i] += float(std::sin(angle));
        if (2 * i + 1 < d) x[2 * i + 1] += float(std::cos(angle));
      }
    }
  }
}

void Transformer::forward_chunk(KvCache& cache, const int32_t* tokens, int64_t n, float* logits,
                                bool all_logits, ThreadPool& pool) {
  const ModelConfig& c = model_.config;
  const auto& W = model_.weights;
  const int64_t d = c.d_model, pos0 = cache.n_past();
  const bool post = c.norm_placement == NormPlacement::post;
  const bool sandwich = c.norm_placement == NormPlacement::sandwich;
  embed(tokens, n, pos0);
  prepare_rope(pos0, n);
  float* x = x_.data();
  for (int l = 0; l < c.n_layers; ++l) {
    const LayerWeights& L = W.layers[size_t(l)];
    const float* in = x;
    if (!post) {
      norm(L.attn_norm_w, L.attn_norm_b, x, a_.data(), n, d);
      in = a_.data();
    }
    attention(l, cache, in, n, pos0, o_.data(), pool);
    if (c.parallel_block) {
      ffn(l, in, n, f_.data(), pool);
      if (sandwich) {
        norm(L.attn_post_norm_w, L.attn_post_norm_b, o_.data(), o_.data(), n, d);
        norm(L.ffn_post_norm_w, L.ffn_post_norm_b, f_.data(), f_.data(), n, d);
      }
      add_into(x, o_.data(), n * d);
      add_into(x, f_.data(), n * d);
      if (post) norm(L.attn_norm_w, L.attn_norm_b, x, x, n, d);
      continue;
    }
    if (sandwich) norm(L.attn_post_norm_w, L.attn_post_norm_b, o_.data(), o_.data(), n, d);
    add_into(x, o_.data(), n * d);
    if (post) {
      norm(L.attn_norm_w, L.attn_norm_b, x, x, n, d);
      in = x;
    } else {
      norm(L.ffn_norm_w, L.ffn_norm_b, x, a_.data(), n, d);
      in = a_.data();
    }
    ffn(l, in, n, f_.data(), pool);
    if (sandwich) norm(L.ffn_post_norm_w, L.ffn_post_norm_b, f_.data(), f_.data(), n, d);
    add_into(x, f_.data(), n * d);
    if (post) norm(L.ffn_norm_w, L.ffn_norm_b, x, x, n, d);
  }
  cache.set_n_past(pos0 + n);
  if (!logits) return;
  // Only the rows whose logits are wanted go through the output head.
  const int64_t rows = all_logits ? n : 1;
  const float* h = x + (n - rows) * d;
  if (c.has_final_norm()) {
    norm(W.output_norm_w, W.output_norm_b, h, a_.data(), rows, d);
    h = a_.data();
  }
  linear_forward(logits, h, rows, W.output, {}, pool);
  if (c.final_softcap > 0) {
    const float cap = float(c.final_softcap);
    for (int64_t i = 0; i < rows * c.vocab_size; ++i) logits[i] = cap * std::tanh(logits[i] / cap);
  }
}

void Transformer::attention(int l, KvCache& cache, const float* in, int64_t n, int64_t pos0,
                            float* out, ThreadPool& pool) {
  const ModelConfig& c = model_.config;
  const LayerWeights& L = model_.weights.layers[size_t(l)];
  const int h = c.n_heads, g = c.kv_heads(l), k = c.head_dim_resolved();
  const int src = c.kv_source(l);
  const auto [rope, table] = rope_for(l);

  if (l == src) {
    // This layer computes the K/V its CLA group shares; they stay in kk_/vv_
    // until the last layer of the group has attended, then enter the cache.
    const LinearOut outs[3] = {{q_.data(), &L.q, L.q_b}, {kk_.data(), &L.k, L.k_b}, {vv_.data(), &L.v, L.v_b}};
    linear_forward_multi(in, n, outs, pool);
  } else {
    linear_forward(q_.data(), in, n, L.q, L.q_b, pool);
  }
  if (c.qk_norm) rmsnorm_forward(q_.data(), q_.data(), n * h, k, L.q_norm, float(c.norm_eps), c.norm_one_plus);
  rope_forward(q_.data(), n, h, *rope, *table);
  if (l == src) {
    if (c.qk_norm)
      rmsnorm_forward(kk_.data(), kk_.data(), n * g, k, L.k_norm, float(c.norm_eps), c.norm_one_plus);
    rope_forward(kk_.data(), n, g, *rope, *table);
  }

  KvCache::Layer* kv = cache.layer(src);
  TPP_CHECK(kv != nullptr, "attention: layer {} has no KV cache", src);
  KvSegment segs[2];
  // Cached positions: [max(0, pos0 - cap), pos0) for a rolling buffer, [0, pos0) otherwise.
  segs[0].k = kv->k.data();
  segs[0].v = kv->v.data();
  segs[0].head_stride = kv->cap * k;
  segs[0].pos_stride = k;
  segs[0].pos_begin = kv->ring ? std::max<int64_t>(0, pos0 - kv->cap) : 0;
  segs[0].pos_end = pos0;
  segs[0].ring = kv->ring ? kv->cap : 0;
  // This chunk's fresh K/V: [n, g, k].
  segs[1].k = kk_.data();
  segs[1].v = vv_.data();
  segs[1].head_stride = k;
  segs[1].pos_stride = int64_t(g) * k;
  segs[1].pos_begin = pos0;
  segs[1].pos_end = pos0 + n;

  AttentionShape shape;
  shape.n_heads = h;
  shape.n_kv_heads = g;
  shape.head_dim = k;
  shape.scale = float(c.attn_scale_resolved());
  shape.softcap = float(c.attn_softcap);
  shape.plus_one = c.softmax == Softmax::plus_one;
  shape.window = c.window(l);
  if (naive_attention_)
    attention_naive(att_.data(), q_.data(), n, pos0, segs, shape);
  else
    attention_forward(att_.data(), q_.data(), n, pos0, segs, shape, pool);
  linear_forward(out, att_.data(), n, L.o, L.o_b, pool);

  const bool group_done = l + 1 == c.n_layers || c.owns_kv(l + 1);
  if (group_done) {
    // Commit the group's chunk K/V: [n, g, k] -> [g, cap, k] at row(p).
    const int64_t first = kv->ring ? std::max<int64_t>(0, n - kv->cap) : 0;
    for (int64_t t = first; t < n; ++t) {
      const int64_t p = pos0 + t, row = kv->ring ? p % kv->cap : p;
      for (int j = 0; j < g; ++j) {
        std::memcpy(&kv->k[size_t((j * kv->cap + row) * k)], &kk_[size_t((t * g + j) * k)], size_t(k) * 4);
        std::memcpy(&kv->v[size_t((j * kv->cap + row) * k)], &vv_[size_t((t * g + j) * k)], size_t(k) * 4);
      }
    }
  }
}

void Transformer::ffn(int l, const float* in, int64_t n, float* out, ThreadPool& pool) {
  const ModelConfig& c = model_.config;
  const LayerWeights& L = model_.weights.layers[size_t(l)];
  const int64_t F = c.ffn_width();
  if (ffn_is_gated(c.ffn)) {
    const LinearOut outs[2] = {{gate_.data(), &L.gate, L.gate_b}, {up_.data(), &L.up, L.up_b}};
    linear_forward_multi(in, n, outs, pool);
    pool.parallel_for(size_t(n), 1, [&](size_t b, size_t e, size_t) {
      gated_activation_forward(gate_.data() + int64_t(b) * F, up_.data() + int64_t(b) * F,
                               int64_t(e - b) * F, c.ffn, c.gelu_approx);
    });
    linear_forward(out, gate_.data(), n, L.down, L.down_b, pool);
  } else {
    linear_forward(up_.data(), in, n, L.up, L.up_b, pool);
    pool.parallel_for(size_t(n), 1, [&](size_t b, size_t e, size_t) {
      activation_forward(up_.data() + int64_t(b) * F, int64_t(e - b) * F, c.ffn, c.gelu_approx);
    });
    linear_forward(out, up_.data(), n, L.down, L.down_b, pool);
  }
}

}  // namespace tpp
