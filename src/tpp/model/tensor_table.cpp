#include "tpp/model/tensor_table.h"

namespace tpp {
namespace {

using Shape = std::vector<int64_t>;
using C = const ModelConfig&;
using enum TensorId;

int64_t d(C c) { return c.d_model; }
int64_t qdim(C c) { return int64_t(c.n_heads) * c.head_dim_resolved(); }
int64_t kvdim(C c, int l) { return int64_t(c.kv_heads(l)) * c.head_dim_resolved(); }
bool ln(C c) { return c.norm == NormKind::layernorm && c.norm_bias; }  // norms with a bias
bool sandwich(C c) { return c.norm_placement == NormPlacement::sandwich; }

Shape vec_d(C c, int) { return {d(c)}; }
Shape vec_head(C c, int) { return {c.head_dim_resolved()}; }
Shape vec_ffn(C c, int) { return {c.ffn_width()}; }
bool always(C, int) { return true; }

}  // namespace

const std::vector<TensorRow>& tensor_table() {
  static const std::vector<TensorRow> table = [] {
    std::vector<TensorRow> t = {
        {tok_embd, "tok_embd.weight", "model.embed_tokens.weight", "token_embd.weight", "", Fused::none, true,
         [](C c, int) { return Shape{c.vocab_size, d(c)}; }, always, Init::normal, "[vocab_size, d_model]"},
        {pos_embd, "pos_embd.weight", "", "pos_embd.weight", "", Fused::none, true,
         [](C c, int) { return Shape{c.max_seq_len, d(c)}; },
         [](C c, int) { return c.pos_encoding == PosEncoding::learned; }, Init::normal, "[max_seq_len, d_model]"},
        {output_norm, "output_norm.weight", "model.norm.weight", "output_norm.weight", "", Fused::none, false,
         vec_d, [](C c, int) { return c.has_final_norm(); }, Init::ones, "[d_model]"},
        {output_norm_b, "output_norm.bias", "model.norm.bias", "output_norm.bias", "", Fused::none, false, vec_d,
         [](C c, int) { return c.has_final_norm() && ln(c); }, Init::zeros, "[d_model]"},
        {output, "output.weight", "lm_head.weight", "output.weight", "", Fused::none, true,
         [](C c, int) { return Shape{c.vocab_size, d(c)}; }, [](C c, int) { return !c.tie_embeddings; },
         Init::normal, "[vocab_size, d_model]"},
        // Attention.
        {attn_norm, "blk.{L}.attn_norm.weight", "model.layers.{L}.input_layernorm.weight",
         "blk.{L}.attn_norm.weight", "", Fused::none, false, vec_d, always, Init::ones, "[d_model]"},
        {attn_norm_b, "blk.{L}.attn_norm.bias", "model.layers.{L}.input_layernorm.bias", "blk.{L}.attn_norm.bias",
         "", Fused::none, false, vec_d, [](C c, int) { return ln(c); }, Init::zeros, "[d_model]"},
        {attn_q, "blk.{L}.attn_q.weight", "model.layers.{L}.self_attn.q_proj.weight", "blk.{L}.attn_q.weight", "",
         Fused::qkv, true, [](C c, int) { return Shape{qdim(c), d(c)}; }, always, Init::normal,
         "[n_heads * head_dim, d_model]"},
        {attn_q_b, "blk.{L}.attn_q.bias", "model.layers.{L}.self_attn.q_proj.bias", "blk.{L}.attn_q.bias", "",
         Fused::none, false, [](C c, int) { return Shape{qdim(c)}; }, [](C c, int) { return c.qkv_bias; },
         Init::zeros, "[n_heads * head_dim]"},
        {attn_k, "blk.{L}.attn_k.weight", "model.layers.{L}.self_attn.k_proj.weight", "blk.{L}.attn_k.weight", "",
         Fused::qkv, true, [](C c, int l) { return Shape{kvdim(c, l), d(c)}; },
         [](C c, int l) { return c.owns_kv(l); }, Init::normal, "[n_kv_heads * head_dim, d_model]"},
        {attn_k_b, "blk.{L}.attn_k.bias", "model.layers.{L}.self_attn.k_proj.bias", "blk.{L}.attn_k.bias", "",
         Fused::none, false, [](C c, int l) { return Shape{kvdim(c, l)}; },
         [](C c, int l) { return c.qkv_bias && c.owns_kv(l); }, Init::zeros, "[n_kv_heads * head_dim]"},
        {attn_v, "blk.{L}.attn_v.weight", "model.layers.{L}.self_attn.v_proj.weight", "blk.{L}.attn_v.weight", "",
         Fused::qkv, true, [](C c, int l) { return Shape{kvdim(c, l), d(c)}; },
         [](C c, int l) { return c.owns_kv(l); }, Init::normal, "[n_kv_heads * head_dim, d_model]"},
        {attn_v_b, "blk.{L}.attn_v.bias", "model.layers.{L}.self_attn.v_proj.bias", "blk.{L}.attn_v.bias", "",
         Fused::none, false, [](C c, int l) { return Shape{kvdim(c, l)}; },
         [](C c, int l) { return c.qkv_bias && c.owns_kv(l); }, Init::zeros, "[n_kv_heads * head_dim]"},
        {attn_q_norm, "blk.{L}.attn_q_norm.weight", "model.layers.{L}.self_attn.q_norm.weight",
         "blk.{L}.attn_q_norm.weight", "", Fused::none, false, vec_head, [](C c, int) { return c.qk_norm; },
         Init::ones, "[head_dim]"},
        {attn_k_norm, "blk.{L}.attn_k_norm.weight", "model.layers.{L}.self_attn.k_norm.weight",
         "blk.{L}.attn_k_norm.weight", "", Fused::none, false, vec_head,
         [](C c, int l) { return c.qk_norm && c.owns_kv(l); }, Init::ones, "[head_dim]"},
        {attn_output, "blk.{L}.attn_output.weight", "model.layers.{L}.self_attn.o_proj.weight",
         "blk.{L}.attn_output.weight", "", Fused::none, true, [](C c, int) { return Shape{d(c), qdim(c)}; },
         always, Init::normal_out, "[d_model, n_heads * head_dim]"},
        {attn_output_b, "blk.{L}.attn_output.bias", "model.layers.{L}.self_attn.o_proj.bias",
         "blk.{L}.attn_output.bias", "", Fused::none, false, vec_d, [](C c, int) { return c.o_bias; },
         Init::zeros, "[d_model]"},
        {attn_post_norm, "blk.{L}.attn_post_norm.weight", "", "blk.{L}.post_attention_norm.weight",
         "model.layers.{L}.post_attention_layernorm.weight", Fused::none, false, vec_d,
         [](C c, int) { return sandwich(c); }, Init::ones, "[d_model]"},
        {attn_post_norm_b, "blk.{L}.attn_post_norm.bias", "", "", "", Fused::none, false, vec_d,
         [](C c, int) { return sandwich(c) && ln(c); }, Init::zeros, "[d_model]"},
        // Feed-forward.
        {ffn_norm, "blk.{L}.ffn_norm.weight", "model.layers.{L}.post_attention_layernorm.weight",
         "blk.{L}.ffn_norm.weight", "model.layers.{L}.pre_feedforward_layernorm.weight", Fused::none, false,
         vec_d, [](C c, int) { return !c.parallel_block; }, Init::ones, "[d_model]"},
        {ffn_norm_b, "blk.{L}.ffn_norm.bias", "model.layers.{L}.post_attention_layernorm.bias",
         "blk.{L}.ffn_norm.bias", "", Fused::none, false, vec_d,
         [](C c, int) { return !c.parallel_block && ln(c); }, Init::zeros, "[d_model]"},
        {ffn_post_norm, "blk.{L}.ffn_post_norm.weight", "", "blk.{L}.post_ffw_norm.weight",
         "model.layers.{L}.post_feedforward_layernorm.weight", Fused::none, false, vec_d,
         [](C c, int) { return sandwich(c); }, Init::ones, "[d_model]"},
        {ffn_post_norm_b, "blk.{L}.ffn_post_norm.bias", "", "", "", Fused::none, false, vec_d,
         [](C c, int) { return sandwich(c) && ln(c); }, Init::zeros, "[d_model]"},
        {ffn_gate, "blk.{L}.ffn_gate.weight", "model.layers.{L}.mlp.gate_proj.weight", "blk.{L}.ffn_gate.weight",
         "", Fused::gate_up, true, [](C c, int) { return Shape{c.ffn_width(), d(c)}; },
         [](C c, int) { return ffn_is_gated(c.ffn); }, Init::normal, "[ffn width, d_model]"},
        {ffn_gate_b, "blk.{L}.ffn_gate.bias", "model.layers.{L}.mlp.gate_proj.bias", "blk.{L}.ffn_gate.bias", "",
         Fused::none, false, vec_ffn, [](C c, int) { return ffn_is_gated(c.ffn) && c.mlp_bias; }, Init::zeros,
         "[ffn width]"},
        {ffn_up, "blk.{L}.ffn_up.weight", "model.layers.{L}.mlp.up_proj.weight", "blk.{L}.ffn_up.weight", "",
         Fused::gate_up, true, [](C c, int) { return Shape{c.ffn_width(), d(c)}; }, always, Init::normal,
         "[ffn width, d_model]"},
        {ffn_up_b, "blk.{L}.ffn_up.bias", "model.layers.{L}.mlp.up_proj.bias", "blk.{L}.ffn_up.bias", "",
         Fused::none, false, vec_ffn, [](C c, int) { return c.mlp_bias; }, Init::zeros, "[ffn width]"},
        {ffn_down, "blk.{L}.ffn_down.weight", "model.layers.{L}.mlp.down_proj.weight", "blk.{L}.ffn_down.weight",
         "", Fused::none, true, [](C c, int) { return Shape{d(c), c.ffn_width()}; }, always, Init::normal_out,
         "[d_model, ffn width]"},
        {ffn_down_b, "blk.{L}.ffn_down.bias", "model.layers.{L}.mlp.down_proj.bias", "blk.{L}.ffn_down.bias", "",
         Fused::none, false, vec_d, [](C c, int) { return c.mlp_bias; }, Init::zeros, "[d_model]"},
    };
    for (size_t i = 0; i < t.size(); ++i)
      if (size_t(t[i].id) != i) throw std::logic_error("tensor table out of id order");
    if (t.size() != kTensorIds) throw std::logic_error("tensor table misses an id");
    return t;
  }();
  return table;
}

std::string tensor_name(const TensorRow& row, NameStyle style, int layer, bool sandwich_hf) {
  std::string_view base = style == NameStyle::hf ? (sandwich_hf && !row.hf_sandwich.empty() ? row.hf_sandwich : row.hf)
                          : style == NameStyle::gguf ? row.gguf
                                                     : row.tpp;
  std::string name(base);
  if (const auto at = name.find("{L}"); at != std::string::npos) name.replace(at, 3, std::to_string(layer));
  return name;
}

std::vector<TensorSpec> expected_tensors(const ModelConfig& c, NameStyle style) {
  std::vector<TensorSpec> out;
  const bool sandwich_hf = style == NameStyle::hf && sandwich(c);
  for (const auto& row : tensor_table()) {
    const bool per_layer = is_per_layer(row.id);
    const int n = per_layer ? c.n_layers : 1;
    for (int i = 0; i < n; ++i) {
      const int layer = per_layer ? i : -1;
      if (!row.present(c, layer)) continue;
      out.push_back({&row, layer, tensor_name(row, style, layer, sandwich_hf), row.shape(c, layer)});
    }
  }
  return out;
}

std::optional<FusedPart> fused_part(const TensorSpec& spec, const ModelConfig& c, NameStyle style) {
  if (spec.row->fused == Fused::none || style == NameStyle::tpp) return std::nullopt;
  const int64_t dm = c.d_model, k = c.head_dim_resolved(), h = c.n_heads, F = c.ffn_width();
  const int64_t g = c.kv_heads(spec.layer);
  const std::string L = std::to_string(spec.layer);
  const bool hf = style == NameStyle::hf;
  FusedPart p;
  if (spec.row->fused == Fused::qkv) {
    p.tensor = hf ? "model.layers." + L + ".self_attn.qkv_proj.weight" : "blk." + L + ".attn_qkv.weight";
    p.shape = {(h + 2 * g) * k, dm};
    p.row0 = spec.row->id == TensorId::attn_q ? 0 : spec.row->id == TensorId::attn_k ? h * k : (h + g) * k;
  } else {
    p.tensor = hf ? "model.layers." + L + ".mlp.gate_up_proj.weight" : "blk." + L + ".ffn_up.weight";
    p.shape = {2 * F, dm};
    p.row0 = spec.row->id == TensorId::ffn_gate ? 0 : F;
  }
  return p;
}

}  // namespace tpp
