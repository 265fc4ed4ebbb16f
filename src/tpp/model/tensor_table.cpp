#include "tpp/model/tensor_table.h"

namespace tpp {
namespace {

using Shape = std::vector<int64_t>;
using C = const ModelConfig&;

int64_t d(C c) { return c.d_model; }
int64_t qdim(C c) { return int64_t(c.n_heads) * c.head_dim_resolved(); }
int64_t kvdim(C c, int l) { return int64_t(c.kv_heads(l)) * c.head_dim_resolved(); }
bool ln(C c) { return c.norm == NormKind::layernorm; }
bool sandwich(C c) { return c.norm_placement == NormPlacement::sandwich; }

}  // namespace

const std::vector<TensorRow>& tensor_table() {
  using M = ModelWeights;
  using L = LayerWeights;
  static const std::vector<TensorRow> table = {
      {"tok_embd.weight", "model.embed_tokens.weight", false,
       [](C c, int) { return Shape{c.vocab_size, d(c)}; }, [](C, int) { return true; },
       Init::normal, &M::tok_embd, "[vocab_size, d_model]"},
      {"pos_embd.weight", "", false, [](C c, int) { return Shape{c.max_seq_len, d(c)}; },
       [](C c, int) { return c.pos_encoding == PosEncoding::learned; }, Init::normal, &M::pos_embd,
       "[max_seq_len, d_model]"},
      {"output_norm.weight", "model.norm.weight", false, [](C c, int) { return Shape{d(c)}; },
       [](C c, int) { return c.has_final_norm(); }, Init::ones, &M::output_norm_w, "[d_model]"},
      {"output_norm.bias", "model.norm.bias", false, [](C c, int) { return Shape{d(c)}; },
       [](C c, int) { return c.has_final_norm() && ln(c); }, Init::zeros, &M::output_norm_b,
       "[d_model]"},
      {"output.weight", "lm_head.weight", false, [](C c, int) { return Shape{c.vocab_size, d(c)}; },
       [](C c, int) { return !c.tie_embeddings; }, Init::normal, &M::output,
       "[vocab_size, d_model]"},
      // Attention.
      {"blk.{L}.attn_norm.weight", "model.layers.{L}.input_layernorm.weight", true,
       [](C c, int) { return Shape{d(c)}; }, [](C, int) { return true; }, Init::ones,
       &L::attn_norm_w, "[d_model]"},
      {"blk.{L}.attn_norm.bias", "model.layers.{L}.input_layernorm.bias", true,
       [](C c, int) { return Shape{d(c)}; }, [](C c, int) { return ln(c); }, Init::zeros,
       &L::attn_norm_b, "[d_model]"},
      {"blk.{L}.attn_q.weight", "model.layers.{L}.self_attn.q_proj.weight", true,
       [](C c, int) { return Shape{qdim(c), d(c)}; }, [](C, int) { return true; }, Init::normal,
       &L::q, "[n_heads * head_dim, d_model]"},
      {"blk.{L}.attn_q.bias", "model.layers.{L}.self_attn.q_proj.bias", true,
       [](C c, int) { return Shape{qdim(c)}; }, [](C c, int) { return c.qkv_bias; }, Init::zeros,
       &L::q_b, "[n_heads * head_dim]"},
      {"blk.{L}.attn_k.weight", "model.layers.{L}.self_attn.k_proj.weight", true,
       [](C c, int l) { return Shape{kvdim(c, l), d(c)}; },
       [](C c, int l) { return c.owns_kv(l); }, Init::normal, &L::k,
       "[n_kv_heads * head_dim, d_model]"},
      {"blk.{L}.attn_k.bias", "model.layers.{L}.self_attn.k_proj.bias", true,
       [](C c, int l) { return Shape{kvdim(c, l)}; },
       [](C c, int l) { return c.qkv_bias && c.owns_kv(l); }, Init::zeros, &L::k_b,
       "[n_kv_heads * head_dim]"},
      {"blk.{L}.attn_v.weight", "model.layers.{L}.self_attn.v_proj.weight", true,
       [](C c, int l) { return Shape{kvdim(c, l), d(c)}; },
       [](C c, int l) { return c.owns_kv(l); }, Init::normal, &L::v,
       "[n_kv_heads * head_dim, d_model]"},
      {"blk.{L}.attn_v.bias", "model.layers.{L}.self_attn.v_proj.bias", true,
       [](C c, int l) { return Shape{kvdim(c, l)}; },
       [](C c, int l) { return c.qkv_bias && c.owns_kv(l); }, Init::zeros, &L::v_b,
       "[n_kv_heads * head_dim]"},
      {"blk.{L}.attn_q_norm.weight", "model.layers.{L}.self_attn.q_norm.weight", true,
       [](C c, int) { return Shape{c.head_dim_resolved()}; }, [](C c, int) { return c.qk_norm; },
       Init::ones, &L::q_norm, "[head_dim]"},
      {"blk.{L}.attn_k_norm.weight", "model.layers.{L}.self_attn.k_norm.weight", true,
       [](C c, int) { return Shape{c.head_dim_resolved()}; },
       [](C c, int l) { return c.qk_norm && c.owns_kv(l); }, Init::ones, &L::k_norm, "[head_dim]"},
      {"blk.{L}.attn_output.weight", "model.layers.{L}.self_attn.o_proj.weight", true,
       [](C c, int) { return Shape{d(c), qdim(c)}; }, [](C, int) { return true; }, Init::normal_out,
       &L::o, "[d_model, n_heads * head_dim]"},
      {"blk.{L}.attn_output.bias", "model.layers.{L}.self_attn.o_proj.bias", true,
       [](C c, int) { return Shape{d(c)}; }, [](C c, int) { return c.o_bias; }, Init::zeros, &L::o_b,
       "[d_model]"},
      {"blk.{L}.attn_post_norm.weight", "", true, [](C c, int) { return Shape{d(c)}; },
       [](C c, int) { return sandwich(c); }, Init::ones, &L::attn_post_norm_w, "[d_model]"},
      {"blk.{L}.attn_post_norm.bias", "", true, [](C c, int) { return Shape{d(c)}; },
       [](C c, int) { return sandwich(c) && ln(c); }, Init::zeros, &L::attn_post_norm_b, "[d_model]"},
      // Feed-forward.
      {"blk.{L}.ffn_norm.weight", "model.layers.{L}.post_attention_layernorm.weight", true,
       [](C c, int) { return Shape{d(c)}; }, [](C c, int) { return !c.parallel_block; }, Init::ones,
       &L::ffn_norm_w, "[d_model]"},
      {"blk.{L}.ffn_norm.bias", "model.layers.{L}.post_attention_layernorm.bias", true,
       [](C c, int) { return Shape{d(c)}; }, [](C c, int) { return !c.parallel_block && ln(c); },
       Init::zeros, &L::ffn_norm_b, "[d_model]"},
      {"blk.{L}.ffn_post_norm.weight", "", true, [](C c, int) { return Shape{d(c)}; },
       [](C c, int) { return sandwich(c); }, Init::ones, &L::ffn_post_norm_w, "[d_model]"},
      {"blk.{L}.ffn_post_norm.bias", "", true, [](C c, int) { return Shape{d(c)}; },
       [](C c, int) { return sandwich(c) && ln(c); }, Init::zeros, &L::ffn_post_norm_b, "[d_model]"},
      {"blk.{L}.ffn_gate.weight", "model.layers.{L}.mlp.gate_proj.weight", true,
       [](C c, int) { return Shape{c.ffn_width(), d(c)}; },
       [](C c, int) { return ffn_is_gated(c.ffn); }, Init::normal, &L::gate, "[ffn width, d_model]"},
      {"blk.{L}.ffn_gate.bias", "model.layers.{L}.mlp.gate_proj.bias", true,
       [](C c, int) { return Shape{c.ffn_width()}; },
       [](C c, int) { return ffn_is_gated(c.ffn) && c.mlp_bias; }, Init::zeros, &L::gate_b,
       "[ffn width]"},
      {"blk.{L}.ffn_up.weight", "model.layers.{L}.mlp.up_proj.weight", true,
       [](C c, int) { return Shape{c.ffn_width(), d(c)}; }, [](C, int) { return true; },
       Init::normal, &L::up, "[ffn width, d_model]"},
      {"blk.{L}.ffn_up.bias", "model.layers.{L}.mlp.up_proj.bias", true,
       [](C c, int) { return Shape{c.ffn_width()}; }, [](C c, int) { return c.mlp_bias; },
       Init::zeros, &L::up_b, "[ffn width]"},
      {"blk.{L}.ffn_down.weight", "model.layers.{L}.mlp.down_proj.weight", true,
       [](C c, int) { return Shape{d(c), c.ffn_width()}; }, [](C, int) { return true; },
       Init::normal_out, &L::down, "[d_model, ffn width]"},
      {"blk.{L}.ffn_down.bias", "model.layers.{L}.mlp.down_proj.bias", true,
       [](C c, int) { return Shape{d(c)}; }, [](C c, int) { return c.mlp_bias; }, Init::zeros,
       &L::down_b, "[d_model]"},
  };
  return table;
}

std::string tensor_name(const TensorRow& row, NameStyle style, int layer) {
  std::string_view base = style == NameStyle::hf ? row.hf : row.tpp;
  if (style == NameStyle::gguf) {
    if (base == "tok_embd.weight") base = "token_embd.weight";
    else if (base == "blk.{L}.attn_post_norm.weight") base = "blk.{L}.post_attention_norm.weight";
    else if (base == "blk.{L}.ffn_post_norm.weight") base = "blk.{L}.post_ffw_norm.weight";
    else if (base.find("post_norm.bias") != std::string_view::npos) base = "";  // llama.cpp has none
  }
  std::string name(base);
  if (const auto at = name.find("{L}"); at != std::string::npos)
    name.replace(at, 3, std::to_string(layer));
  return name;
}

namespace {

// Gemma 2/3 (sandwich norms) name the four norms of a block differently from
// Llama: post_attention_layernorm is the norm after attention, and the FFN has
// pre_ and post_feedforward_layernorm.
std::string hf_sandwich_name(const TensorRow& row, int layer) {
  const std::string_view tpp(row.tpp);
  const char* hf = tpp == "blk.{L}.attn_post_norm.weight" ? "post_attention_layernorm"
                   : tpp == "blk.{L}.ffn_norm.weight"     ? "pre_feedforward_layernorm"
                   : tpp == "blk.{L}.ffn_post_norm.weight" ? "post_feedforward_layernorm"
                                                           : nullptr;
  if (!hf) return tensor_name(row, NameStyle::hf, layer);
  return "model.layers." + std::to_string(layer) + "." + hf + ".weight";
}

}  // namespace

std::vector<TensorSpec> expected_tensors(const ModelConfig& c, NameStyle style) {
  std::vector<TensorSpec> out;
  const bool sandwich_hf = style == NameStyle::hf && c.norm_placement == NormPlacement::sandwich;
  for (const auto& row : tensor_table()) {
    const int n = row.per_layer ? c.n_layers : 1;
    for (int i = 0; i < n; ++i) {
      const int layer = row.per_layer ? i : -1;
      if (!row.present(c, layer)) continue;
      std::string name = sandwich_hf && row.per_layer ? hf_sandwich_name(row, layer) : tensor_name(row, style, layer);
      out.push_back({&row, layer, std::move(name), row.shape(c, layer)});
    }
  }
  return out;
}

}  // namespace tpp
