// ModelConfig: every switch of the Transformer++ (SPEC §1) as one typed field.
//
// Notation (docs/notation.md): d = d_model, h = n_heads, g = n_kv_heads,
// k = head_dim, T = sequence length, V = vocab_size.
//
// ModelConfig::visit lists each field once with its JSON name, default and
// doc string; JSON read/write, equality, `tpp config --help-keys` and the docs
// table are all generated from that one list. Architectures are data: compute
// code reads fields, never a model name.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "tpp/core/switches.h"

namespace tpp {



struct ModelConfig {
  // Sizes.
  int d_model = 256;
  int n_layers = 4;
  int n_heads = 8;
  std::vector<int> n_kv_heads = {0};  // one value for all layers, or one per layer; 0 = n_heads
  int head_dim = 0;                   // 0 = d_model / n_heads
  int d_ff = 768;
  int vocab_size = 260;
  int max_seq_len = 1024;
  double norm_eps = 1e-5;
  // Embedding and output.
  double embed_scale = 1.0;
  bool tie_embeddings = false;
  double final_softcap = 0.0;
  // Positions.
  PosEncoding pos_encoding = PosEncoding::rope;
  double rope_theta = 500000.0;
  int rotary_dim = -1;  // -1 = head_dim, 0 = no rotation
  RopeLayout rope_layout = RopeLayout::half;
  RopeScaling rope_scaling;
  double rope_local_theta = 0.0;  // 0 = rope_theta (and local layers scale like global ones)
  // Normalisation and block layout.
  NormKind norm = NormKind::rmsnorm;
  bool norm_bias = true;
  bool norm_one_plus = false;
  NormPlacement norm_placement = NormPlacement::pre;
  bool parallel_block = false;
  // Attention.
  bool qkv_bias = false;
  bool o_bias = false;
  bool qk_norm = false;
  double attn_scale = 0.0;  // 0 = 1/sqrt(head_dim)
  double attn_softcap = 0.0;
  Softmax softmax = Softmax::standard;
  std::optional<int> sliding_window;  // absent = no window
  std::vector<LayerType> layer_types;  // repeated cyclically; empty = all local if windowed, else global
  int cla_share = 1;
  // Feed-forward.
  Ffn ffn = Ffn::swiglu;
  GeluApprox gelu_approx = GeluApprox::none;
  bool mlp_bias = false;
  bool param_match = false;
  int multiple_of = 1;

  // Lists every field once: v(field, "json_name", "doc").
  template <class Visitor>
  void visit(Visitor& v);

  bool operator==(const ModelConfig&) const = default;

  // Throws tpp::Error naming the source (a file path or "config"), the key,
  // the value and what was expected. Called by every loader.
  void validate(const std::string& source = "config") const;

  // Derived sizes (valid after validate()).
  int kv_heads(int layer) const;  // g_l
  int head_dim_resolved() const { return head_dim > 0 ? head_dim : d_model / n_heads; }
  int rotary_dim_resolved() const;
  int ffn_width() const;  // F: d_ff, or the param-matched 2/3 width for gated FFNs
  LayerType layer_type(int layer) const;
  bool is_local(int layer) const { return layer_type(layer) == LayerType::local; }
  int window(int layer) const { return is_local(layer) ? *sliding_window : 0; }  // 0 = none
  // CLA: the layer whose K/V this layer uses (itself when it computes them).
  int kv_source(int layer) const { return layer / cla_share * cla_share; }
  bool owns_kv(int layer) const { return kv_source(layer) == layer; }
  double attn_scale_resolved() const;
  bool has_final_norm() const { return norm_placement != NormPlacement::post; }
  int64_t n_params() const;
};

// JSON <-> config. from_json is strict: unknown keys and wrong types are errors.
ModelConfig config_from_json(const nlohmann::json& j, const std::string& source);
nlohmann::json config_to_json(const ModelConfig& c);
ModelConfig load_config_file(const std::string& path);  // parses + validates
std::string config_to_string(const ModelConfig& c);     // pretty JSON

// Every key with its default and doc string, for `--help` and docs/config.md.
struct ConfigKeyDoc {
  std::string name, default_value, doc;
};
std::vector<ConfigKeyDoc> config_key_docs();

template <class Visitor>
void ModelConfig::visit(Visitor& v) {
  v(d_model, "d_model", "d: model width");
  v(n_layers, "n_layers", "number of transformer blocks");
  v(n_heads, "n_heads", "h: query heads");
  v(n_kv_heads, "n_kv_heads",
    "g: KV heads; MHA g=h, GQA 1<g<h, MQA g=1; a list gives one per layer (DeciLM); 0 = n_heads");
  v(head_dim, "head_dim", "k: per-head width; 0 = d_model / n_heads");
  v(d_ff, "d_ff", "feed-forward hidden width (the 2-matrix width when param_match)");
  v(vocab_size, "vocab_size", "V: vocabulary size");
  v(max_seq_len, "max_seq_len", "longest sequence (learned position table size)");
  v(norm_eps, "norm_eps", "epsilon inside every norm");
  v(embed_scale, "embed_scale", "x0 = E[token] * embed_scale (Gemma: sqrt(d_model))");
  v(tie_embeddings, "tie_embeddings", "logits = norm(x) . E^T instead of a separate output matrix");
  v(final_softcap, "final_softcap", "logits <- c*tanh(logits/c); 0 = off (Gemma 2: 30)");
  v(pos_encoding, "pos_encoding", "rope | learned (absolute table added to x0) | sinusoidal | alibi (per-head linear biases on the scores, Press et al.) | none");
  v(rope_theta, "rope_theta", "RoPE base: theta_i = base^(-2i/rotary_dim)");
  v(rotary_dim, "rotary_dim", "dims of each head that RoPE rotates; -1 = head_dim, 0 = none");
  v(rope_layout, "rope_layout", "half (HF rotate_half: i with i+r/2) | interleaved (2i with 2i+1)");
  v(rope_scaling, "rope_scaling",
    "{type: none|linear|ntk|dynamic_ntk|llama3|yarn, factor, original_max_position_embeddings, "
    "low_freq_factor, high_freq_factor, beta_fast, beta_slow, attention_factor}");
  v(rope_local_theta, "rope_local_theta",
    "RoPE base of sliding-window layers, unscaled (Gemma 3: 10000); 0 = same as global layers");
  v(norm, "norm", "rmsnorm | layernorm");
  v(norm_bias, "norm_bias", "LayerNorm adds a bias; false = PaLM's bias-free LayerNorm (RMSNorm never has one)");
  v(norm_one_plus, "norm_one_plus", "RMSNorm scales by (1 + w) (Gemma), including QK-norm");
  v(norm_placement, "norm_placement",
    "pre: x+f(N(x)) | post: N(x+f(x)) | sandwich: x+N2(f(N1(x))) (Gemma 2)");
  v(parallel_block, "parallel_block", "x + Attn(N(x)) + MLP(N(x)) (GPT-J, PaLM)");
  v(qkv_bias, "qkv_bias", "biases on the q, k, v projections (Qwen2)");
  v(o_bias, "o_bias", "bias on the attention output projection");
  v(qk_norm, "qk_norm", "RMSNorm over each head's q and k before RoPE (Qwen3, Gemma 3)");
  v(attn_scale, "attn_scale", "score scale; 0 = 1/sqrt(head_dim) (Gemma: query_pre_attn_scalar^-0.5)");
  v(attn_softcap, "attn_softcap", "attention logits s <- c*tanh(s/c); 0 = off (Gemma 2: 50)");
  v(softmax, "softmax", "standard | plus_one: exp(s_i) / (1 + sum_j exp(s_j))");
  v(sliding_window, "sliding_window", "w: local layers attend to keys in (pos-w, pos]; null = none");
  v(layer_types, "layer_types",
    "per-layer local|global pattern, repeated cyclically; [] = all local if windowed, else global");
  v(cla_share, "cla_share", "cross-layer attention: groups of s layers share the first one's K,V");
  v(ffn, "ffn", "relu | gelu (2 matrices) | glu | bilinear | reglu | geglu | swiglu (3 matrices)");
  v(gelu_approx, "gelu_approx", "none (exact erf) | tanh (gelu_pytorch_tanh); gelu and geglu");
  v(mlp_bias, "mlp_bias", "biases on the feed-forward matrices");
  v(param_match, "param_match", "gated FFNs use 2/3 of d_ff so parameters and FLOPs match (Shazeer)");
  v(multiple_of, "multiple_of", "round the param-matched width up to a multiple of this");
}

}  // namespace tpp
