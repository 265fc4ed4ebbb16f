#include "tpp/model/block.h"

#include <algorithm>
#include <cmath>
#include <type_traits>

#include <fmt/format.h>

#include "tpp/core/error.h"
#include "tpp/ops/activation.h"
#include "tpp/ops/embedding.h"
#include "tpp/ops/linear.h"
#include "tpp/ops/norm.h"
#include "tpp/ops/softcap.h"

namespace tpp {
namespace {

using enum TensorId;

int orig_max(const ModelConfig& c) {
  return c.rope_scaling.original_max_position_embeddings > 0 ? c.rope_scaling.original_max_position_embeddings
                                                             : c.max_seq_len;
}

template <class R>
void grow(std::vector<R>& v, int64_t n) {
  if (v.size() < size_t(n)) v.resize(size_t(n));
}

template <class R>
void add_into(R* y, const R* a, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a[i];
}

template <class R>
std::span<const R> bias_of(const TensorSlots& w, TensorId id) {
  const R* b = w.vec<R>(id);
  return b ? std::span<const R>(b, size_t(w[id].rows)) : std::span<const R>();
}

}  // namespace

template <class R>
Block<R>::Block(const ModelConfig& config) : c_(config) {
  const int k = c_.head_dim_resolved(), r = c_.rotary_dim_resolved();
  rope_global_ = make_rope(k, r, c_.rope_layout, c_.rope_theta, c_.rope_scaling, orig_max(c_), 0);
  rope_local_ = c_.rope_local_theta > 0
                    ? make_rope(k, r, c_.rope_layout, c_.rope_local_theta, RopeScaling{}, orig_max(c_), 0)
                    : rope_global_;
}

template <class R>
void Block<R>::plan(RowPlan& plan, std::span<const SeqRows> seqs) const {
  plan.seqs.assign(seqs.begin(), seqs.end());
  plan.attn_seqs.clear();
  plan.N = 0;
  for (const auto& s : seqs) {
    TPP_CHECK(s.row0 == plan.N && s.n > 0, "forward: sequence rows [{}, {}) do not follow row {}", s.row0,
              s.row0 + s.n, plan.N);
    plan.N += s.n;
    plan.attn_seqs.push_back({s.row0, s.n, s.pos0});
  }
  plan.pos.resize(size_t(plan.N));
  for (const auto& s : seqs)
    for (int64_t t = 0; t < s.n; ++t) plan.pos[size_t(s.row0 + t)] = s.pos0 + t;
  const int half = c_.rotary_dim_resolved() / 2;
  if (half == 0) return;
  rope_table_resize(plan.rope_global, plan.N, half);
  if (c_.rope_local_theta > 0) rope_table_resize(plan.rope_local, plan.N, half);
  for (const auto& s : seqs) {
    // Dynamic NTK: the base grows with the length being processed (HF
    // semantics: the sequence's length after these rows).
    const int64_t seq_len = s.pos0 + s.n;
    if (c_.rope_scaling.type == RopeScalingType::dynamic_ntk && seq_len > orig_max(c_)) {
      const RopeParams dyn = make_rope(c_.head_dim_resolved(), c_.rotary_dim_resolved(), c_.rope_layout,
                                       c_.rope_theta, c_.rope_scaling, orig_max(c_), int(seq_len));
      rope_table_fill(plan.rope_global, s.row0, dyn, s.pos0, s.n);
    } else {
      rope_table_fill(plan.rope_global, s.row0, rope_global_, s.pos0, s.n);
    }
    if (c_.rope_local_theta > 0) rope_table_fill(plan.rope_local, s.row0, rope_local_, s.pos0, s.n);
  }
}

template <class R>
const RopeTable& Block<R>::rope_table_for(int l, const RowPlan& plan) const {
  return c_.is_local(l) && c_.rope_local_theta > 0 ? plan.rope_local : plan.rope_global;
}

template <class R>
void Block<R>::embed(R* x, const int32_t* tokens, const RowPlan& plan, const ModelWeights& w, ThreadPool& pool) const {
  for (int64_t i = 0; i < plan.N; ++i)
    TPP_CHECK(tokens[i] >= 0 && tokens[i] < c_.vocab_size, "forward: token id {} at row {} is outside [0, {})",
              tokens[i], i, c_.vocab_size);
  if (c_.pos_encoding == PosEncoding::learned)
    for (const auto& s : plan.seqs)
      TPP_CHECK(s.pos0 + s.n <= c_.max_seq_len, "forward: position {} exceeds the learned position table (max_seq_len {})",
                s.pos0 + s.n - 1, c_.max_seq_len);
  embed_forward(x, tokens, plan.pos.data(), plan.N, w.global[tok_embd], &w.global[pos_embd],
                EmbedParams{c_.embed_scale, c_.pos_encoding}, pool);
}

template <class R>
void Block<R>::norm(R* y, const R* x, int64_t N, const TensorSlots& w, TensorId wi, TensorId bi,
                    ThreadPool& pool) const {
  const NormParams p{c_.norm, c_.norm_one_plus && c_.norm == NormKind::rmsnorm, c_.norm_eps};
  norm_forward<R>(y, x, N, c_.d_model, {w.vec<R>(wi), w.vec<R>(bi)}, p, pool);
}

template <class R>
void Block<R>::norm_bwd(R* dx, bool accumulate, const R* dy, const R* x, int64_t N, const TensorSlots& w,
                        const TensorGrads<R>& g, TensorId wi, TensorId bi, ThreadPool& pool) const {
  const NormParams p{c_.norm, c_.norm_one_plus && c_.norm == NormKind::rmsnorm, c_.norm_eps};
  norm_backward<R>(dx, accumulate, dy, x, N, c_.d_model, {w.vec<R>(wi), w.vec<R>(bi)}, {g[wi], g[bi]}, p, pool);
}

template <class R>
AttentionShape Block<R>::attn_shape(int l) const {
  AttentionShape a;
  a.n_heads = c_.n_heads;
  a.n_kv_heads = c_.kv_heads(c_.kv_source(l));
  a.head_dim = c_.head_dim_resolved();
  a.scale = float(c_.attn_scale_resolved());
  a.softcap = float(c_.attn_softcap);
  a.plus_one = c_.softmax == Softmax::plus_one;
  a.window = c_.window(l);
  a.alibi = c_.pos_encoding == PosEncoding::alibi;
  return a;
}

// ---------------------------------------------------------------------------
// Forward.

template <class R>
void Block<R>::forward(int l, R* x, const RowPlan& plan, const TensorSlots& w, LayerActs<R>& s,
                       const LayerActs<R>& kv, bool keep, ThreadPool& pool) {
  const int64_t N = plan.N, nd = N * c_.d_model;
  const bool post = c_.norm_placement == NormPlacement::post;
  const bool sandwich = c_.norm_placement == NormPlacement::sandwich;
  if (keep) s.x0.assign(x, x + nd);
  const R* in = x;
  if (!post) {
    grow(s.a1, nd);
    norm(s.a1.data(), x, N, w, attn_norm, attn_norm_b, pool);
    in = s.a1.data();
  }
  grow(o_, nd);
  attention(l, in, o_.data(), plan, w, s, kv, keep, pool);
  if (sandwich) {
    if (keep) s.o_raw.assign(o_.begin(), o_.begin() + nd);
    norm(o_.data(), o_.data(), N, w, attn_post_norm, attn_post_norm_b, pool);
  }
  grow(f_, nd);
  if (c_.parallel_block) {
    ffn(in, f_.data(), N, w, s, keep, pool);
    if (sandwich) {
      if (keep) s.f_raw.assign(f_.begin(), f_.begin() + nd);
      norm(f_.data(), f_.data(), N, w, ffn_post_norm, ffn_post_norm_b, pool);
    }
    add_into(x, o_.data(), nd);
    add_into(x, f_.data(), nd);
    if (post) {
      if (keep) s.y.assign(x, x + nd);
      norm(x, x, N, w, attn_norm, attn_norm_b, pool);
    }
    return;
  }
  add_into(x, o_.data(), nd);
  if (keep) s.x1.assign(x, x + nd);
  grow(s.a2, nd);
  if (post) {
    norm(s.a2.data(), x, N, w, attn_norm, attn_norm_b, pool);
    std::copy(s.a2.begin(), s.a2.begin() + nd, x);  // the residual continues from the normalised x1
  } else {
    norm(s.a2.data(), x, N, w, ffn_norm, ffn_norm_b, pool);
  }
  ffn(s.a2.data(), f_.data(), N, w, s, keep, pool);
  if (sandwich) {
    if (keep) s.f_raw.assign(f_.begin(), f_.begin() + nd);
    norm(f_.data(), f_.data(), N, w, ffn_post_norm, ffn_post_norm_b, pool);
  }
  add_into(x, f_.data(), nd);
  if (post) {
    if (keep) s.y.assign(x, x + nd);
    norm(x, x, N, w, ffn_norm, ffn_norm_b, pool);
  }
}

template <class R>
void Block<R>::attention(int l, const R* in, R* out, const RowPlan& plan, const TensorSlots& w, LayerActs<R>& s,
                         const LayerActs<R>& kv, bool keep, ThreadPool& pool) {
  const int64_t N = plan.N;
  const int h = c_.n_heads, k = c_.head_dim_resolved(), src = c_.kv_source(l), g = c_.kv_heads(src);
  const int64_t hk = int64_t(h) * k, gk = int64_t(g) * k;
  const bool owner = l == src, rope = c_.rotary_dim_resolved() > 0;
  const RopeParams& rp = c_.is_local(l) && c_.rope_local_theta > 0 ? rope_local_ : rope_global_;
  const RopeTable& table = rope_table_for(l, plan);
  const NormParams qk{NormKind::rmsnorm, c_.norm_one_plus, c_.norm_eps};

  grow(s.q, N * hk);
  if (owner) {
    // This layer computes the K/V its CLA group shares; they stay in s.k/s.v
    // until the group's last layer has attended, then enter the caches.
    grow(s.k, N * gk);
    grow(s.v, N * gk);
    const LinearOutT<R> outs[3] = {{s.q.data(), &w[attn_q], bias_of<R>(w, attn_q_b)},
                                   {s.k.data(), &w[attn_k], bias_of<R>(w, attn_k_b)},
                                   {s.v.data(), &w[attn_v], bias_of<R>(w, attn_v_b)}};
    linear_forward_multi(in, N, std::span<const LinearOutT<R>>(outs), pool);
  } else {
    linear_forward(s.q.data(), in, N, w[attn_q], bias_of<R>(w, attn_q_b), pool);
  }
  if (c_.qk_norm) {
    if (keep) s.qr.assign(s.q.begin(), s.q.begin() + N * hk);
    norm_forward<R>(s.q.data(), s.q.data(), N * h, k, {w.vec<R>(attn_q_norm)}, qk, pool);
  }
  if (rope) rope_forward(s.q.data(), N, h, rp, table, pool);
  if (owner) {
    if (c_.qk_norm) {
      if (keep) s.kr.assign(s.k.begin(), s.k.begin() + N * gk);
      norm_forward<R>(s.k.data(), s.k.data(), N * g, k, {w.vec<R>(attn_k_norm)}, qk, pool);
    }
    if (rope) rope_forward(s.k.data(), N, g, rp, table, pool);
    if constexpr (std::is_same_v<R, float>) {
      // K and V as a 16- or 8-bit cache will hold them, so that these rows
      // attend to what later tokens read back (tpp/model/kv_cache.h).
      for (const auto& seq : plan.seqs)
        if (seq.cache && seq.cache->type() != DType::f32) {
          seq.cache->round_rows(s.k.data() + seq.row0 * gk, seq.n * g);
          seq.cache->round_rows(s.v.data() + seq.row0 * gk, seq.n * g);
        }
    }
  }

  grow(s.att, N * hk);
  if (keep) grow(s.lse, N * h);
  const AttentionShape shape = attn_shape(l);
  // Rows that can see only each other (training, a prefill of empty caches)
  // run as one pass over all sequences.
  const bool self_only = !naive_attention_ && std::all_of(plan.seqs.begin(), plan.seqs.end(), [](const SeqRows& q) {
    return !q.cache || q.pos0 == 0;
  });
  if (self_only) {
    attention_forward_self<R>(s.att.data(), s.q.data(), kv.k.data(), kv.v.data(), plan.attn_seqs, shape, pool,
                              keep ? s.lse.data() : nullptr);
  } else {
    // Decode rows (one token of a cached sequence) go to attention_decode
    // together: one parallel pass over all of them instead of one each.
    decode_rows_.clear();
    if constexpr (std::is_same_v<R, float>) decode_segs_.resize(2 * plan.seqs.size());
    for (const auto& seq : plan.seqs) {
      KvSegmentT<R> local[2];
      KvSegmentT<R>* segs = local;
      bool decode = false;
      if constexpr (std::is_same_v<R, float>) {
        decode = seq.n == 1 && seq.cache && !naive_attention_;
        if (decode) segs = decode_segs_.data() + 2 * (&seq - plan.seqs.data());
      }
      int n_segs = 0;
      if (seq.cache) {
        if constexpr (std::is_same_v<R, float>) {
          KvCache::Layer* cl = seq.cache->layer(src);
          TPP_CHECK(cl != nullptr, "attention: layer {} has no KV cache", src);
          // Cached positions: [max(0, pos0 - cap), pos0) for a rolling buffer, [0, pos0) otherwise.
          auto& sg = segs[n_segs++];
          sg.type = seq.cache->type();
          if (sg.type == DType::f32) {
            sg.k = reinterpret_cast<const float*>(cl->k.data());
            sg.v = reinterpret_cast<const float*>(cl->v.data());
            sg.head_stride = cl->cap * k;
            sg.pos_stride = k;
          } else {
            sg.kq = cl->k.data();
            sg.vq = cl->v.data();
            sg.head_bytes = cl->cap * cl->row_bytes;
            sg.row_bytes = cl->row_bytes;
          }
          sg.pos_begin = cl->ring ? std::max<int64_t>(0, seq.pos0 - cl->cap) : 0;
          sg.pos_end = seq.pos0;
          sg.ring = cl->ring ? cl->cap : 0;
        } else {
          fail("attention: a KV cache needs float activations");
        }
      }
      // These rows' fresh K/V: [n, g, k].
      auto& fresh = segs[n_segs++];
      fresh.k = kv.k.data() + seq.row0 * gk;
      fresh.v = kv.v.data() + seq.row0 * gk;
      fresh.head_stride = k;
      fresh.pos_stride = gk;
      fresh.pos_begin = seq.pos0;
      fresh.pos_end = seq.pos0 + seq.n;
      R* att = s.att.data() + seq.row0 * hk;
      const R* q = s.q.data() + seq.row0 * hk;
      const std::span<const KvSegmentT<R>> span(segs, size_t(n_segs));
      if constexpr (std::is_same_v<R, float>) {
        if (naive_attention_) {
          attention_naive(att, q, seq.n, seq.pos0, span, shape);
          continue;
        }
        if (decode) {
          decode_rows_.push_back({att, q, seq.pos0, span, keep ? s.lse.data() + seq.row0 * h : nullptr});
          continue;
        }
      }
      attention_forward<R>(att, q, seq.n, seq.pos0, span, shape, pool, keep ? s.lse.data() + seq.row0 * h : nullptr);
    }
    if constexpr (std::is_same_v<R, float>)
      if (!decode_rows_.empty()) attention_decode(decode_rows_, shape, pool);
  }
  linear_forward(out, s.att.data(), N, w[attn_output], bias_of<R>(w, attn_output_b), pool);

  const bool group_done = l + 1 == c_.n_layers || c_.owns_kv(l + 1);
  if constexpr (std::is_same_v<R, float>) {
    if (!group_done) return;
    for (const auto& seq : plan.seqs) {
      if (!seq.cache) continue;
      // Commit the group's fresh K/V: [n, g, k] -> [g, cap, k] at row(p).
      KvCache::Layer* cl = seq.cache->layer(src);
      const int64_t first = cl->ring ? std::max<int64_t>(0, seq.n - cl->cap) : 0;
      for (int64_t t = first; t < seq.n; ++t) {
        const int64_t p = seq.pos0 + t, row = cl->ring ? p % cl->cap : p;
        const int64_t from = (seq.row0 + t) * gk;
        for (int j = 0; j < g; ++j) {
          seq.cache->encode_row(&kv.k[size_t(from + j * k)], cl->k_row(j, row));
          seq.cache->encode_row(&kv.v[size_t(from + j * k)], cl->v_row(j, row));
        }
      }
    }
  }
}

template <class R>
void Block<R>::ffn(const R* in, R* out, int64_t N, const TensorSlots& w, LayerActs<R>& s, bool keep, ThreadPool& pool) {
  const int64_t F = c_.ffn_width();
  const bool gated = ffn_is_gated(c_.ffn);
  grow(s.up, N * F);
  if (gated) {
    grow(s.gate, N * F);
    const LinearOutT<R> outs[2] = {{s.gate.data(), &w[ffn_gate], bias_of<R>(w, ffn_gate_b)},
                                   {s.up.data(), &w[ffn_up], bias_of<R>(w, ffn_up_b)}};
    linear_forward_multi(in, N, std::span<const LinearOutT<R>>(outs), pool);
  } else {
    linear_forward(s.up.data(), in, N, w[ffn_up], bias_of<R>(w, ffn_up_b), pool);
  }
  // Inference overwrites the pre-activation in place; training keeps it.
  R* h = gated ? s.gate.data() : s.up.data();
  if (keep) {
    grow(s.hact, N * F);
    h = s.hact.data();
  }
  const ActParams ap{c_.ffn, c_.gelu_approx};
  pool.parallel_for(size_t(N), 1, [&](size_t b, size_t e, size_t) {
    const int64_t at = int64_t(b) * F, n = int64_t(e - b) * F;
    ffn_act_forward(h + at, gated ? s.gate.data() + at : nullptr, s.up.data() + at, n, ap);
  });
  linear_forward(out, h, N, w[ffn_down], bias_of<R>(w, ffn_down_b), pool);
}

template <class R>
void Block<R>::head(R* logits, R* hn, const R* x, int64_t rows, const ModelWeights& w, ThreadPool& pool) const {
  const int64_t d = c_.d_model, V = c_.vocab_size;
  if (c_.has_final_norm()) {
    const NormParams p{c_.norm, c_.norm_one_plus && c_.norm == NormKind::rmsnorm, c_.norm_eps};
    norm_forward<R>(hn, x, rows, d, {w.global.vec<R>(output_norm), w.global.vec<R>(output_norm_b)}, p, pool);
  } else {
    std::copy(x, x + rows * d, hn);
  }
  linear_forward(logits, hn, rows, w.global[output], std::span<const R>(), pool);
  if (c_.final_softcap > 0) {
    const R cap = R(c_.final_softcap);
    pool.parallel_for(size_t(rows), 1, [&](size_t b, size_t e, size_t) {
      softcap_forward(logits + int64_t(b) * V, int64_t(e - b) * V, cap);
    });
  }
}

// ---------------------------------------------------------------------------
// Backward.

template <class R>
void Block<R>::backward(int l, R* dx, const RowPlan& plan, const TensorSlots& w, const TensorGrads<R>& g,
                        const LayerActs<R>& s, const LayerActs<R>& kv, ThreadPool& pool) {
  const int64_t N = plan.N, nd = N * c_.d_model;
  const bool post = c_.norm_placement == NormPlacement::post;
  const bool sandwich = c_.norm_placement == NormPlacement::sandwich;
  grow(dA_, nd);
  grow(dB_, nd);
  const R* in = post ? s.x0.data() : s.a1.data();
  if (c_.parallel_block) {
    if (post) {  // dx <- d/dy through the block's output norm
      norm_bwd(dA_.data(), false, dx, s.y.data(), N, w, g, attn_norm, attn_norm_b, pool);
      std::copy(dA_.begin(), dA_.begin() + nd, dx);
    }
    // dx is now d(x0 + o + f): both branches get it.
    const R* d_o = dx;
    const R* d_f = dx;
    if (sandwich) {
      norm_bwd(dA_.data(), false, dx, s.o_raw.data(), N, w, g, attn_post_norm, attn_post_norm_b, pool);
      norm_bwd(dB_.data(), false, dx, s.f_raw.data(), N, w, g, ffn_post_norm, ffn_post_norm_b, pool);
      d_o = dA_.data();
      d_f = dB_.data();
    }
    grow(din_, nd);
    attention_bwd(l, in, d_o, din_.data(), false, plan, w, g, s, kv, pool);
    ffn_bwd(in, d_f, din_.data(), true, N, w, g, s, pool);
    if (post)
      add_into(dx, din_.data(), nd);
    else
      norm_bwd(dx, true, din_.data(), s.x0.data(), N, w, g, attn_norm, attn_norm_b, pool);
    return;
  }
  if (post) {
    norm_bwd(dA_.data(), false, dx, s.y.data(), N, w, g, ffn_norm, ffn_norm_b, pool);
    std::copy(dA_.begin(), dA_.begin() + nd, dx);
  }
  // dx = d(base + f).
  const R* d_f = dx;
  if (sandwich) {
    norm_bwd(dA_.data(), false, dx, s.f_raw.data(), N, w, g, ffn_post_norm, ffn_post_norm_b, pool);
    d_f = dA_.data();
  }
  ffn_bwd(s.a2.data(), d_f, dB_.data(), false, N, w, g, s, pool);  // dB = d(a2) from the FFN
  if (post) {
    add_into(dB_.data(), dx, nd);  // base = a2
    norm_bwd(dx, false, dB_.data(), s.x1.data(), N, w, g, attn_norm, attn_norm_b, pool);
  } else {
    norm_bwd(dx, true, dB_.data(), s.x1.data(), N, w, g, ffn_norm, ffn_norm_b, pool);
  }
  // dx = d(x1) = d(x0 + o).
  const R* d_o = dx;
  if (sandwich) {
    norm_bwd(dA_.data(), false, dx, s.o_raw.data(), N, w, g, attn_post_norm, attn_post_norm_b, pool);
    d_o = dA_.data();
  }
  attention_bwd(l, in, d_o, dB_.data(), false, plan, w, g, s, kv, pool);
  if (post)
    add_into(dx, dB_.data(), nd);
  else
    norm_bwd(dx, true, dB_.data(), s.x0.data(), N, w, g, attn_norm, attn_norm_b, pool);
}

template <class R>
void Block<R>::attention_bwd(int l, const R* in, const R* dout, R* din, bool din_acc, const RowPlan& plan,
                             const TensorSlots& w, const TensorGrads<R>& g, const LayerActs<R>& s,
                             const LayerActs<R>& kv, ThreadPool& pool) {
  const int64_t N = plan.N;
  const int h = c_.n_heads, k = c_.head_dim_resolved(), src = c_.kv_source(l), gh = c_.kv_heads(src);
  const int64_t hk = int64_t(h) * k, gk = int64_t(gh) * k;
  const bool rope = c_.rotary_dim_resolved() > 0;
  const RopeParams& rp = c_.is_local(l) && c_.rope_local_theta > 0 ? rope_local_ : rope_global_;
  const RopeTable& table = rope_table_for(l, plan);
  const NormParams qk{NormKind::rmsnorm, c_.norm_one_plus, c_.norm_eps};
  // The CLA group's dK/dV accumulate from its last layer down to its owner.
  if (l + 1 == c_.n_layers || c_.owns_kv(l + 1)) {
    dkv_k_.assign(size_t(N * gk), R(0));
    dkv_v_.assign(size_t(N * gk), R(0));
  }
  grow(datt_, N * hk);
  linear_backward<R>(datt_.data(), false, {g[attn_output], g[attn_output_b]}, dout, s.att.data(), N, w[attn_output],
                     pool);
  grow(dq_, N * hk);
  AttentionBackward<R> ab;
  ab.dout = datt_.data();
  ab.q = s.q.data();
  ab.k = kv.k.data();
  ab.v = kv.v.data();
  ab.out = s.att.data();
  ab.lse = s.lse.data();
  ab.dq = dq_.data();
  ab.dk = dkv_k_.data();
  ab.dv = dkv_v_.data();
  attention_backward(ab, plan.attn_seqs, attn_shape(l), pool);
  // d(rope(qk_norm(x))) -> dx for q or k rows [N, heads, k]; returns the buffer holding it.
  auto through_rope_and_norm = [&](R* d, const std::vector<R>& pre_norm, int heads, TensorId norm_w) -> const R* {
    if (rope) rope_backward(d, N, heads, rp, table, pool);
    if (!c_.qk_norm) return d;
    grow(tmp_, N * heads * k);
    norm_backward<R>(tmp_.data(), false, d, pre_norm.data(), N * heads, k, {w.vec<R>(norm_w)}, {g[norm_w]}, qk,
                     pool);
    return tmp_.data();
  };
  const R* dq = through_rope_and_norm(dq_.data(), s.qr, h, attn_q_norm);
  linear_backward<R>(din, din_acc, {g[attn_q], g[attn_q_b]}, dq, in, N, w[attn_q], pool);
  if (src != l) return;
  const R* dk = through_rope_and_norm(dkv_k_.data(), s.kr, gh, attn_k_norm);
  linear_backward<R>(din, true, {g[attn_k], g[attn_k_b]}, dk, in, N, w[attn_k], pool);
  linear_backward<R>(din, true, {g[attn_v], g[attn_v_b]}, dkv_v_.data(), in, N, w[attn_v], pool);
}

template <class R>
void Block<R>::ffn_bwd(const R* in, const R* dout, R* din, bool din_acc, int64_t N, const TensorSlots& w,
                       const TensorGrads<R>& g, const LayerActs<R>& s, ThreadPool& pool) {
  const int64_t F = c_.ffn_width();
  const bool gated = ffn_is_gated(c_.ffn);
  grow(dup_, N * F);
  linear_backward<R>(dup_.data(), false, {g[ffn_down], g[ffn_down_b]}, dout, s.hact.data(), N, w[ffn_down], pool);
  // dup_ holds dh; turn it into d(up) and d(gate).
  if (gated) grow(dgate_, N * F);
  const ActParams ap{c_.ffn, c_.gelu_approx};
  pool.parallel_for(size_t(N), 16, [&](size_t b, size_t e, size_t) {
    const int64_t at = int64_t(b) * F, n = int64_t(e - b) * F;
    ffn_act_backward(gated ? dgate_.data() + at : nullptr, dup_.data() + at, dup_.data() + at,
                     gated ? s.gate.data() + at : nullptr, s.up.data() + at, n, ap);
  });
  linear_backward<R>(din, din_acc, {g[ffn_up], g[ffn_up_b]}, dup_.data(), in, N, w[ffn_up], pool);
  if (gated) linear_backward<R>(din, true, {g[ffn_gate], g[ffn_gate_b]}, dgate_.data(), in, N, w[ffn_gate], pool);
}

// ---------------------------------------------------------------------------

template <class R>
int64_t Block<R>::scratch_bytes() const {
  int64_t total = 0;
  for (const auto* v : {&o_, &f_, &dA_, &dB_, &din_, &datt_, &dq_, &dkv_k_, &dkv_v_, &dgate_, &dup_, &tmp_})
    total += int64_t(v->capacity() * sizeof(R));
  return total;
}

template <class R>
int64_t LayerActs<R>::bytes() const {
  int64_t total = 0;
  for (const auto* v : {&x0, &a1, &qr, &kr, &q, &k, &v, &att, &lse, &o_raw, &x1, &a2, &gate, &up, &hact, &f_raw, &y})
    total += int64_t(v->capacity() * sizeof(R));
  return total;
}

template <class R>
std::string LayerActs<R>::first_non_finite() const {
  const std::pair<const std::vector<R>*, const char*> named[] = {
      {&x0, "input"},     {&a1, "attention norm"}, {&q, "q"},           {&k, "k"},
      {&v, "v"},          {&att, "attention"},     {&o_raw, "attention output"},
      {&x1, "residual"},  {&a2, "ffn norm"},       {&gate, "ffn gate"}, {&up, "ffn up"},
      {&hact, "ffn hidden"}, {&f_raw, "ffn output"}, {&y, "block output"}};
  for (const auto& [v, name] : named)
    for (R x : *v)
      if (!std::isfinite(x)) return name;
  return "";
}

template class Block<float>;
template class Block<double>;
template struct LayerActs<float>;
template struct LayerActs<double>;

}  // namespace tpp
