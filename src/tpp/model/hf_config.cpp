#include "tpp/model/hf_config.h"

#include <cmath>
#include <set>

#include <nlohmann/json.hpp>

#include "tpp/core/error.h"

namespace tpp {
namespace {

using json = nlohmann::json;

// Keys of a LlamaConfig that do not change the forward computation.
const std::set<std::string>& ignored_llama_keys() {
  static const std::set<std::string> keys = {
      "_name_or_path", "architectures", "model_type", "torch_dtype", "dtype",
      "transformers_version", "bos_token_id", "eos_token_id", "pad_token_id", "use_cache",
      "initializer_range", "attention_dropout", "mlp_dropout", "tie_word_embeddings",
      "pretraining_tp", "hidden_act", "output_attentions", "output_hidden_states",
      "return_dict", "is_decoder", "is_encoder_decoder", "max_length", "min_length",
      "tokenizer_class", "prefix", "task_specific_params", "id2label", "label2id",
      "problem_type", "use_return_dict", "sep_token_id", "decoder_start_token_id"};
  return keys;
}

int get_int(const json& j, const char* key, const std::string& source, std::optional<int> dflt = {}) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (dflt) return *dflt;
    fail("{}: missing key '{}' (an integer)", source, key);
  }
  if (!it->is_number_integer())
    fail("{}: key '{}': got {}, expected an integer", source, key, it->dump());
  return it->get<int>();
}

double get_double(const json& j, const char* key, const std::string& source, double dflt) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return dflt;
  if (!it->is_number()) fail("{}: key '{}': got {}, expected a number", source, key, it->dump());
  return it->get<double>();
}

bool get_bool(const json& j, const char* key, const std::string& source, bool dflt) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return dflt;
  if (!it->is_boolean()) fail("{}: key '{}': got {}, expected true or false", source, key, it->dump());
  return it->get<bool>();
}

RopeScaling hf_rope_scaling(const json& j, const std::string& source) {
  RopeScaling r;
  if (j.is_null()) return r;
  if (!j.is_object()) fail("{}: key 'rope_scaling': got {}, expected null or an object", source, j.dump());
  std::string type;
  for (const char* key : {"rope_type", "type"}) {
    if (!j.contains(key)) continue;
    if (!j[key].is_string()) fail("{}: key 'rope_scaling.{}': expected a string, got {}", source, key, j[key].dump());
    type = j[key].get<std::string>();
    break;
  }
  if (type == "default" || type.empty()) return r;
  if (type == "linear") r.type = RopeScalingType::linear;
  else if (type == "dynamic") r.type = RopeScalingType::dynamic_ntk;
  else if (type == "llama3") r.type = RopeScalingType::llama3;
  else if (type == "yarn") r.type = RopeScalingType::yarn;
  else
    fail("{}: key 'rope_scaling.rope_type': got \"{}\", which tpp cannot honour; expected one of "
         "default, linear, dynamic, llama3, yarn", source, type);
  for (const auto& [key, value] : j.items()) {
    const std::string at = "rope_scaling." + key;
    if (key == "rope_type" || key == "type") continue;
    if (!value.is_number())
      fail("{}: key '{}': got {}, expected a number", source, at, value.dump());
    if (key == "factor") r.factor = value.get<double>();
    else if (key == "original_max_position_embeddings") r.original_max_position_embeddings = value.get<int>();
    else if (key == "low_freq_factor") r.low_freq_factor = value.get<double>();
    else if (key == "high_freq_factor") r.high_freq_factor = value.get<double>();
    else if (key == "beta_fast") r.beta_fast = value.get<double>();
    else if (key == "beta_slow") r.beta_slow = value.get<double>();
    else if (key == "attention_factor") r.attention_factor = value.get<double>();
    else fail("{}: key '{}' is not supported by tpp's {} scaling", source, at, type);
  }
  return r;
}

// Every key must be mapped or known not to change the computation.
void refuse_unknown_keys(const json& j, const std::set<std::string>& mapped, const std::string& model_type,
                         const std::string& source) {
  for (const auto& [key, value] : j.items())
    if (!mapped.count(key) && !ignored_llama_keys().count(key))
      fail("{}: key '{}' (value {}) is not understood by tpp's {} mapping; refusing rather "
           "than ignoring it", source, key, value.dump(), model_type);
}

// The sizes every family names the same way.
ModelConfig hf_sizes(const json& j, const std::string& source, int head_dim_default, int max_pos_default) {
  ModelConfig c;
  c.d_model = get_int(j, "hidden_size", source);
  c.n_layers = get_int(j, "num_hidden_layers", source);
  c.n_heads = get_int(j, "num_attention_heads", source);
  c.n_kv_heads = {get_int(j, "num_key_value_heads", source, c.n_heads)};
  c.head_dim = get_int(j, "head_dim", source, head_dim_default);
  c.d_ff = get_int(j, "intermediate_size", source);
  c.vocab_size = get_int(j, "vocab_size", source);
  c.max_seq_len = get_int(j, "max_position_embeddings", source, max_pos_default);
  c.norm_eps = get_double(j, "rms_norm_eps", source, 1e-6);
  c.rope_scaling = hf_rope_scaling(j.value("rope_scaling", json()), source);
  c.qkv_bias = c.o_bias = get_bool(j, "attention_bias", source, false);
  c.rope_layout = RopeLayout::half;  // HF stores q/k for rotate_half
  c.pos_encoding = PosEncoding::rope;
  c.norm = NormKind::rmsnorm;
  return c;
}

// The Llama-architecture families: LLaMA 2/3, TinyLlama, SmolLM2 ("llama"),
// Mistral (sliding window on every layer), Qwen2 (q/k/v biases; sliding
// window on layers >= max_window_layers when enabled), Qwen3 (QK-norm), Phi-3
// (sliding window on every layer; q/k/v and gate/up stored fused, see model.cpp).
// Every key is either mapped, known not to change the computation, or refused.
ModelConfig llama_family_config(const json& j, const std::string& model_type, const std::string& source) {
  std::set<std::string> mapped = {
      "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
      "head_dim", "intermediate_size", "vocab_size", "max_position_embeddings", "rms_norm_eps",
      "rope_theta", "rope_scaling", "attention_bias", "mlp_bias"};
  const bool qwen = model_type == "qwen2" || model_type == "qwen3";
  if (model_type == "mistral") mapped.insert("sliding_window");
  // Phi-3: dropout rates (inference ignores them); original_max_position_embeddings
  // only matters to longrope scaling, which hf_rope_scaling refuses by name.
  if (model_type == "phi3")
    mapped.insert({"sliding_window", "resid_pdrop", "embd_pdrop", "original_max_position_embeddings",
                   "partial_rotary_factor"});
  if (qwen) mapped.insert({"use_sliding_window", "sliding_window", "max_window_layers"});
  refuse_unknown_keys(j, mapped, model_type, source);
  if (auto act = j.find("hidden_act"); act != j.end() && *act != "silu")
    fail("{}: key 'hidden_act': got {}, expected \"silu\" for {}", source, act->dump(), model_type);
  if (auto tp = j.find("pretraining_tp"); tp != j.end() && tp->is_number() && tp->get<int>() != 1)
    fail("{}: key 'pretraining_tp': got {}, expected 1", source, tp->dump());

  ModelConfig c = hf_sizes(j, source, 0, 2048);
  c.rope_theta = get_double(j, "rope_theta", source, 10000.0);
  c.tie_embeddings = get_bool(j, "tie_word_embeddings", source, false);
  c.mlp_bias = get_bool(j, "mlp_bias", source, false);
  if (model_type == "qwen2") {
    c.qkv_bias = true;  // Qwen2Attention: biases on q/k/v, none on o
    c.o_bias = false;
  }
  if (model_type == "qwen3") c.qk_norm = true;
  if (model_type == "phi3") {
    const double partial = get_double(j, "partial_rotary_factor", source, 1.0);
    const int k = c.head_dim_resolved();
    if (!(partial > 0 && partial <= 1) || std::fmod(partial * k, 2.0) != 0)
      fail("{}: key 'partial_rotary_factor': got {}, expected a fraction of head_dim {} giving an even width",
           source, partial, k);
    if (partial < 1) c.rotary_dim = int(partial * k);
  }
  if (model_type == "mistral" || model_type == "phi3") {
    const int w = get_int(j, "sliding_window", source, 0);
    if (w < 0) fail("{}: key 'sliding_window': got {}, expected a positive window or null", source, w);
    if (w > 0) c.sliding_window = w;
  }
  if (qwen && get_bool(j, "use_sliding_window", source, false)) {
    const int w = get_int(j, "sliding_window", source);
    const int first = get_int(j, "max_window_layers", source, c.n_layers);
    if (w <= 0) fail("{}: key 'sliding_window': got {}, expected a positive window", source, w);
    if (first < 0 || first > c.n_layers)
      fail("{}: key 'max_window_layers': got {}, expected 0 .. num_hidden_layers ({})", source, first, c.n_layers);
    c.sliding_window = w;
    for (int l = 0; l < c.n_layers; ++l) c.layer_types.push_back(l >= first ? LayerType::local : LayerType::global);
  }
  c.norm_placement = NormPlacement::pre;
  c.ffn = Ffn::swiglu;
  c.validate(source);
  return c;
}

// Gemma 2 and 3: sandwich norms with (1 + w) RMSNorm, embeddings scaled by
// sqrt(hidden_size), GeGLU (tanh GELU), scores scaled by
// query_pre_attn_scalar^-1/2, sliding-window and global layers (as listed in
// layer_types, else Gemma 2 alternates from layer 0 and Gemma 3 makes every
// sliding_window_pattern-th layer global). Gemma 2 adds attention and final
// soft-caps; Gemma 3 adds QK-norm and its own RoPE base for sliding layers
// (rope_local_base_freq, unscaled; rope_scaling applies to global layers).
ModelConfig gemma_config(const json& j, const std::string& model_type, const std::string& source) {
  const bool gemma3 = model_type != "gemma2";
  std::set<std::string> mapped = {
      "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "head_dim",
      "intermediate_size", "vocab_size", "max_position_embeddings", "rms_norm_eps", "rope_theta",
      "attention_bias", "query_pre_attn_scalar", "sliding_window", "final_logit_softcapping",
      "attn_logit_softcapping", "hidden_activation", "layer_types", "cache_implementation", "rope_scaling"};
  if (gemma3) mapped.insert({"rope_local_base_freq", "sliding_window_pattern"});
  refuse_unknown_keys(j, mapped, model_type, source);
  ModelConfig c = hf_sizes(j, source, 256, 8192);
  c.rope_theta = get_double(j, "rope_theta", source, gemma3 ? 1000000.0 : 10000.0);
  if (gemma3) {
    c.qk_norm = true;
    c.rope_local_theta = get_double(j, "rope_local_base_freq", source, 10000.0);
  }
  c.tie_embeddings = get_bool(j, "tie_word_embeddings", source, true);
  c.attn_scale = 1.0 / std::sqrt(get_double(j, "query_pre_attn_scalar", source, 256.0));
  c.attn_softcap = get_double(j, "attn_logit_softcapping", source, 0.0);
  c.final_softcap = get_double(j, "final_logit_softcapping", source, 0.0);
  const int w = get_int(j, "sliding_window", source, 4096);
  if (w <= 0) fail("{}: key 'sliding_window': got {}, expected a positive window", source, w);
  c.sliding_window = w;
  if (auto it = j.find("layer_types"); it != j.end() && !it->is_null()) {
    if (!it->is_array() || int(it->size()) != c.n_layers)
      fail("{}: key 'layer_types': expected a list of {} entries", source, c.n_layers);
    for (const auto& t : *it) {
      if (t == "sliding_attention") c.layer_types.push_back(LayerType::local);
      else if (t == "full_attention") c.layer_types.push_back(LayerType::global);
      else fail("{}: key 'layer_types': got {}, expected \"sliding_attention\" or \"full_attention\"", source, t.dump());
    }
  } else if (gemma3) {
    const int pattern = get_int(j, "sliding_window_pattern", source, 6);
    if (pattern <= 0) fail("{}: key 'sliding_window_pattern': got {}, expected a positive integer", source, pattern);
    for (int l = 0; l < pattern; ++l)
      c.layer_types.push_back((l + 1) % pattern != 0 ? LayerType::local : LayerType::global);
  } else {
    c.layer_types = {LayerType::local, LayerType::global};  // layer 0 slides, then alternate
  }
  std::string act = "gelu_pytorch_tanh";
  for (const char* key : {"hidden_activation", "hidden_act"})
    if (auto it = j.find(key); it != j.end() && !it->is_null()) {
      if (!it->is_string()) fail("{}: key '{}': expected a string, got {}", source, key, it->dump());
      act = it->get<std::string>();
      break;
    }
  if (act == "gelu_pytorch_tanh") c.gelu_approx = GeluApprox::tanh;
  else if (act == "gelu") c.gelu_approx = GeluApprox::none;
  else fail("{}: key 'hidden_activation': got \"{}\", expected \"gelu_pytorch_tanh\" or \"gelu\"", source, act);
  if (auto it = j.find("cache_implementation"); it != j.end() && !it->is_null() && *it != "hybrid")
    fail("{}: key 'cache_implementation': got {}, expected \"hybrid\"", source, it->dump());
  c.embed_scale = std::sqrt(double(c.d_model));
  c.norm_one_plus = true;
  c.norm_placement = NormPlacement::sandwich;
  c.ffn = Ffn::geglu;
  c.validate(source);
  return c;
}

}  // namespace

bool is_hf_config(const json& j) { return j.is_object() && j.contains("model_type"); }

ModelConfig config_from_hf(const json& j, const std::string& source) {
  const auto type = j.find("model_type");
  if (type == j.end() || !type->is_string())
    fail("{}: key 'model_type': missing or not a string", source);
  const std::string model_type = type->get<std::string>();
  if (model_type == "llama" || model_type == "mistral" || model_type == "qwen2" || model_type == "qwen3" ||
      model_type == "phi3")
    return llama_family_config(j, model_type, source);
  if (model_type == "gemma2" || model_type == "gemma3_text") return gemma_config(j, model_type, source);
  fail("{}: key 'model_type': got \"{}\", which tpp does not support; expected one of llama, mistral, "
       "qwen2, qwen3, phi3, gemma2, gemma3_text", source, model_type);
}

}  // namespace tpp
