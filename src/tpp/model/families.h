// The model families tpp maps from other formats, each described once: the
// switches the family fixes, its Hugging Face model_type names, its llama.cpp
// GGUF architecture name, and its per-family rules. Both mappings read these
// descriptions: hf_config.cpp (config.json) and gguf_model.cpp (GGUF
// metadata), so a family fact is never written twice.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "tpp/model/config.h"

namespace tpp {

// Where a family's sliding window comes from in a Hugging Face config.json.
enum class HfWindow : uint8_t {
  none,         // no window keys (LLaMA)
  every_layer,  // optional `sliding_window` on every layer (Mistral, Phi-3)
  upper_layers, // `use_sliding_window` + `sliding_window` on layers >= `max_window_layers` (Qwen2/3)
  pattern,      // local:global pattern with a required window (Gemma 2/3)
};

struct Family {
  std::string_view name;                         // "llama", "gemma3", ...
  std::vector<std::string_view> hf_model_types;  // config.json "model_type" values it maps
  std::string_view gguf_arch;                    // general.architecture; "" = written as another's

  // Switches the family fixes.
  NormPlacement norm_placement = NormPlacement::pre;
  bool norm_one_plus = false;       // RMSNorm scales by (1 + w)
  Ffn ffn = Ffn::swiglu;
  GeluApprox gelu_approx = GeluApprox::none;
  bool embed_scale_sqrt_d = false;  // x0 = E[token] * sqrt(d_model)
  bool qk_norm = false;
  bool qkv_bias = false;            // biases on q, k, v (not o), whatever the config says
  bool fused_qkv_gate_up = false;   // checkpoints store q|k|v and gate|up as one matrix each

  // Attention window and layer pattern.
  HfWindow hf_window = HfWindow::none;
  bool gguf_optional_window = false;  // GGUF: an optional window on every layer
  // Every n-th layer is global, the others local (counting from 1); 0 = no
  // pattern. Gemma 2 alternates (2, layer 0 local); Gemma 3 defaults to 6,
  // which its configs may override.
  int global_every = 0;
  // Files may give that period: HF `sliding_window_pattern`, GGUF
  // `<arch>.attention.sliding_window_pattern` (Gemma 3).
  bool period_in_file = false;
  bool attn_softcap = false;   // the family carries an attention-logit soft-cap
  bool final_softcap = false;  // and a final-logit soft-cap
  double local_rope_theta = 0; // RoPE base of local layers, unscaled (Gemma 3: 10000); 0 = global's

  // Hugging Face: `partial_rotary_factor` rotates part of each head (Phi-3).
  bool hf_partial_rotary = false;
  // Hugging Face: the defaults of the family's config class, for keys a config.json
  // leaves out (JSON object text). Keys that have no default there are required.
  std::string_view hf_defaults;
  // GGUF: llama.cpp's converter permutes q/k rows so that RoPE rotates adjacent pairs.
  bool gguf_qk_permuted = false;
  // GGUF: llama.cpp scales scores by 1/sqrt(d_model / n_heads) instead of
  // 1/sqrt(head_dim) for models of this many layers (the 27B Gemmas, whose
  // query_pre_attn_scalar is d/h); 0 = never.
  int gguf_wide_scale_layers = 0;
};

const std::vector<Family>& families();
const Family* family_for_hf_type(std::string_view model_type);  // nullptr when none maps it
const Family* family_for_gguf_arch(std::string_view arch);
std::string hf_model_type_list();  // "llama, mistral, ...", for messages
std::string gguf_arch_list();

// Sets the switches `f` fixes on `c`; the sizes (d_model) must be set first.
void apply_family(const Family& f, ModelConfig& c);

// The layer pattern with every n-th layer global: n-1 local layers, then one global.
std::vector<LayerType> every_nth_global(int n);

}  // namespace tpp
