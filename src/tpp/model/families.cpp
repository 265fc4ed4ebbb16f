#include "tpp/model/families.h"

#include <cmath>

namespace tpp {

namespace {

Family family(std::string_view name, std::vector<std::string_view> hf_model_types, std::string_view gguf_arch) {
  Family f;
  f.name = name;
  f.hf_model_types = std::move(hf_model_types);
  f.gguf_arch = gguf_arch;
  return f;
}

}  // namespace

const std::vector<Family>& families() {
  static const std::vector<Family> list = [] {
    std::vector<Family> v;
    // LLaMA 2 / 3.x, TinyLlama, SmolLM2. Mistral GGUF files are written as llama.
    Family llama = family("llama", {"llama"}, "llama");
    llama.gguf_optional_window = true;
    llama.gguf_qk_permuted = true;
    llama.hf_defaults = R"({"max_position_embeddings": 2048, "rope_theta": 10000.0, "rms_norm_eps": 1e-6,
                            "tie_word_embeddings": false})";
    v.push_back(llama);

    Family mistral = family("mistral", {"mistral"}, "");
    mistral.hf_window = HfWindow::every_layer;
    mistral.hf_defaults = llama.hf_defaults;
    v.push_back(mistral);

    // Qwen2 / Qwen2.5: biases on q, k, v; an optional window on the upper layers.
    Family qwen2 = family("qwen2", {"qwen2"}, "qwen2");
    qwen2.qkv_bias = true;
    qwen2.hf_window = HfWindow::upper_layers;
    qwen2.hf_defaults = llama.hf_defaults;
    v.push_back(qwen2);

    // Qwen3: QK-norm instead of the biases.
    Family qwen3 = family("qwen3", {"qwen3"}, "qwen3");
    qwen3.qk_norm = true;
    qwen3.hf_window = HfWindow::upper_layers;
    qwen3.hf_defaults = llama.hf_defaults;
    v.push_back(qwen3);

    // Phi-3 / 3.5: q/k/v and gate/up fused; an optional window on every layer.
    Family phi3 = family("phi3", {"phi3"}, "phi3");
    phi3.fused_qkv_gate_up = true;
    phi3.hf_window = HfWindow::every_layer;
    phi3.gguf_optional_window = true;
    phi3.hf_partial_rotary = true;
    phi3.hf_defaults = llama.hf_defaults;
    v.push_back(phi3);

    // Gemma 2: sandwich norms with (1 + w), GeGLU (tanh GELU), sqrt(d) embedding
    // scale, sliding and global layers alternating from layer 0, both soft-caps.
    Family gemma2 = family("gemma2", {"gemma2"}, "gemma2");
    gemma2.norm_placement = NormPlacement::sandwich;
    gemma2.norm_one_plus = true;
    gemma2.ffn = Ffn::geglu;
    gemma2.gelu_approx = GeluApprox::tanh;
    gemma2.embed_scale_sqrt_d = true;
    gemma2.hf_window = HfWindow::pattern;
    gemma2.global_every = 2;
    gemma2.attn_softcap = gemma2.final_softcap = true;
    gemma2.gguf_wide_scale_layers = 46;
    // Gemma2Config's defaults (transformers).
    gemma2.hf_defaults = R"({"head_dim": 256, "max_position_embeddings": 8192, "rope_theta": 10000.0,
                             "rms_norm_eps": 1e-6, "tie_word_embeddings": true, "query_pre_attn_scalar": 256,
                             "sliding_window": 4096, "attn_logit_softcapping": 50.0,
                             "final_logit_softcapping": 30.0, "hidden_activation": "gelu_pytorch_tanh"})";
    v.push_back(gemma2);

    // Gemma 3: Gemma 2's block plus QK-norm, every 6th layer global by
    // default, local layers on their own RoPE base (unscaled), no attention cap.
    Family gemma3 = gemma2;
    gemma3.name = "gemma3";
    gemma3.hf_model_types = {"gemma3_text"};
    gemma3.gguf_arch = "gemma3";
    gemma3.qk_norm = true;
    gemma3.global_every = 6;
    gemma3.period_in_file = true;
    gemma3.attn_softcap = false;
    gemma3.local_rope_theta = 10000.0;
    gemma3.gguf_wide_scale_layers = 62;
    // Gemma3TextConfig's defaults (transformers): a gemma3 multimodal config's
    // text_config often gives only what differs from them.
    gemma3.hf_defaults = R"({"vocab_size": 262208, "hidden_size": 2304, "intermediate_size": 9216,
                             "num_hidden_layers": 26, "num_attention_heads": 8, "num_key_value_heads": 4,
                             "head_dim": 256, "max_position_embeddings": 131072, "rope_theta": 1000000.0,
                             "rms_norm_eps": 1e-6, "tie_word_embeddings": true, "query_pre_attn_scalar": 256,
                             "sliding_window": 4096, "sliding_window_pattern": 6, "rope_local_base_freq": 10000.0,
                             "hidden_activation": "gelu_pytorch_tanh"})";
    v.push_back(gemma3);
    return v;
  }();
  return list;
}

const Family* family_for_hf_type(std::string_view model_type) {
  for (const auto& f : families())
    for (auto t : f.hf_model_types)
      if (t == model_type) return &f;
  return nullptr;
}

const Family* family_for_gguf_arch(std::string_view arch) {
  for (const auto& f : families())
    if (!f.gguf_arch.empty() && f.gguf_arch == arch) return &f;
  return nullptr;
}

std::string hf_model_type_list() {
  std::string out;
  for (const auto& f : families())
    for (auto t : f.hf_model_types) out += (out.empty() ? "" : ", ") + std::string(t);
  return out;
}

std::string gguf_arch_list() {
  std::string out;
  for (const auto& f : families())
    if (!f.gguf_arch.empty()) out += (out.empty() ? "" : ", ") + std::string(f.gguf_arch);
  return out;
}

void apply_family(const Family& f, ModelConfig& c) {
  c.pos_encoding = PosEncoding::rope;
  c.norm = NormKind::rmsnorm;
  c.norm_placement = f.norm_placement;
  c.norm_one_plus = f.norm_one_plus;
  c.ffn = f.ffn;
  c.gelu_approx = f.gelu_approx;
  if (f.embed_scale_sqrt_d) c.embed_scale = std::sqrt(double(c.d_model));
  c.qk_norm = f.qk_norm;
  if (f.qkv_bias) {
    c.qkv_bias = true;
    c.o_bias = false;
  }
  if (f.local_rope_theta > 0) c.rope_local_theta = f.local_rope_theta;
}

std::vector<LayerType> every_nth_global(int n) {
  std::vector<LayerType> pattern(size_t(n), LayerType::local);
  pattern.back() = LayerType::global;
  return pattern;
}

}  // namespace tpp
