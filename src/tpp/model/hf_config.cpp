#include "tpp/model/hf_config.h"

#include <algorithm>
#include <cmath>
#include <set>

#include <nlohmann/json.hpp>

#include "tpp/core/error.h"
#include "tpp/model/json_read.h"

namespace tpp {
namespace {

using json = nlohmann::json;

// Keys that do not change the forward computation: provenance, token ids,
// training-time settings (initialisation, dropout), runtime hints (cache,
// dtype), framework bookkeeping, and tools' own notes (transformers.js,
// unsloth). pretraining_tp only sliced the matmuls of old training code into
// tp pieces whose sum is the same product.
const std::set<std::string>& harmless_keys() {
  static const std::set<std::string> keys = {
      "_name_or_path", "architectures", "model_type", "torch_dtype", "dtype", "transformers_version",
      "bos_token_id", "eos_token_id", "pad_token_id", "sep_token_id", "decoder_start_token_id", "use_cache",
      "initializer_range", "attention_dropout", "mlp_dropout", "resid_pdrop", "embd_pdrop", "pretraining_tp",
      "output_attentions", "output_hidden_states", "return_dict", "use_return_dict", "is_decoder",
      "is_encoder_decoder", "max_length", "min_length", "tokenizer_class", "prefix", "task_specific_params",
      "id2label", "label2id", "problem_type", "is_llama_config", "auto_map", "transformers.js_config",
      "unsloth_fixed", "unsloth_version", "_attn_implementation_autoset", "cache_implementation"};
  return keys;
}

// Keys that mean the weights are not plain f32/f16/bf16 tensors.
const std::set<std::string>& quantization_keys() {
  static const std::set<std::string> keys = {"quantization_config", "quantization"};
  return keys;
}

// A boolean key whose `true` tpp cannot honour (false is the plain layout).
void require_false(JsonObject& o, const char* key, const char* why) {
  if (o.get_bool(key, false)) fail("{}: got true: {}, which tpp cannot honour; expected false", o.at(key).str(), why);
}

std::vector<LayerType> hf_layer_types(const json& v, const JsonAt& at, int n_layers) {
  if (!v.is_array() || int(v.size()) != n_layers)
    fail("{}: got {}, expected a list of {} entries (num_hidden_layers)", at.str(), json_show(v), n_layers);
  std::vector<LayerType> out;
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string t = json_string(v[i], at.index(i));
    if (t == "sliding_attention") out.push_back(LayerType::local);
    else if (t == "full_attention") out.push_back(LayerType::global);
    else fail("{}: got \"{}\", expected \"sliding_attention\" or \"full_attention\"", at.index(i).str(), t);
  }
  return out;
}

// The config of one family's text model (`j` may be a multimodal config's text_config).
ModelConfig map_family(const json& j_in, const Family& fam, const JsonAt& at) {
  // The family's config-class defaults stand in for keys the file leaves out.
  json j = j_in;
  const json defaults = fam.hf_defaults.empty() ? json::object() : json::parse(fam.hf_defaults);
  for (const auto& [key, value] : defaults.items())
      // Only for absent keys: null is a value (Gemma 3's attn_logit_softcapping: null = no cap).
      if (!j.contains(key) && !(key == "hidden_activation" && j.contains("hidden_act")))
        j[key] = value;
  JsonObject o(j, at);
  o.ignore(harmless_keys());
  for (const auto& key : quantization_keys())
    if (o.has(key))
      fail("{}: the checkpoint's weights are quantized ({}), which tpp cannot load from a Hugging Face "
           "directory; expected f32, f16 or bf16 weights", o.at(key).str(), json_show(*o.raw(key)));
  const std::string what = "tpp's " + std::string(fam.name) + " mapping";

  ModelConfig c;
  c.d_model = o.get_int("hidden_size");
  c.n_layers = o.get_int("num_hidden_layers");
  c.n_heads = o.get_int("num_attention_heads");
  c.n_kv_heads = {o.get_int("num_key_value_heads", c.n_heads)};
  c.head_dim = o.get_int("head_dim", 0);
  c.d_ff = o.get_int("intermediate_size");
  c.vocab_size = o.get_int("vocab_size");
  c.max_seq_len = o.get_int("max_position_embeddings");
  c.norm_eps = o.get_number("rms_norm_eps", 1e-6);
  c.rope_theta = o.get_number("rope_theta", 10000.0);
  if (const json* rs = o.raw("rope_scaling")) c.rope_scaling = read_rope_scaling(*rs, o.at("rope_scaling"), RopeDialect::hf);
  c.tie_embeddings = o.get_bool("tie_word_embeddings", false);
  c.qkv_bias = c.o_bias = o.get_bool("attention_bias", false);
  c.mlp_bias = o.get_bool("mlp_bias", false);
  c.rope_layout = RopeLayout::half;  // HF stores q/k for rotate_half
  // nanotron's flag: false is HF's rotate_half layout, which HF always runs.
  require_false(o, "rope_interleaved", "nanotron's interleaved RoPE layout, which transformers does not run");
  require_false(o, "use_mrope", "multimodal RoPE sections (Qwen2-VL)");
  require_false(o, "use_bidirectional_attention", "bidirectional (non-causal) attention");
  apply_family(fam, c);

  // Activation: SiLU for the SwiGLU families, tanh GELU (or exact) for Gemma.
  if (fam.ffn == Ffn::geglu) {
    // Gemma's MLP reads hidden_activation; hidden_act is the older spelling,
    // used only when hidden_activation is absent.
    auto act = o.opt_string("hidden_activation");
    if (const auto old = o.opt_string("hidden_act"); !act) act = old.value_or("gelu_pytorch_tanh");
    if (*act == "gelu_pytorch_tanh") c.gelu_approx = GeluApprox::tanh;
    else if (*act == "gelu") c.gelu_approx = GeluApprox::none;
    else fail("{}: got \"{}\", expected \"gelu_pytorch_tanh\" or \"gelu\"", o.at("hidden_activation").str(), *act);
  } else if (const auto act = o.opt_string("hidden_act"); act && *act != "silu") {
    fail("{}: got \"{}\", expected \"silu\" for {}", o.at("hidden_act").str(), *act, fam.name);
  }

  // Phi-3: partial rotary; original_max_position_embeddings only matters to
  // longrope scaling, which read_rope_scaling refuses by name.
  if (fam.hf_partial_rotary) {
    o.ignore({"original_max_position_embeddings"});
    const double partial = o.get_number("partial_rotary_factor", 1.0);
    const int k = c.head_dim_resolved();
    if (!(partial > 0 && partial <= 1) || std::fmod(partial * k, 2.0) != 0)
      fail("{}: got {}, expected a fraction of head_dim {} giving an even width", o.at("partial_rotary_factor").str(),
           partial, k);
    if (partial < 1) c.rotary_dim = int(partial * k);
  }

  // Gemma: score scale, soft-caps, local RoPE base.
  if (fam.hf_window == HfWindow::pattern) {
    c.attn_scale = 1.0 / std::sqrt(o.get_number("query_pre_attn_scalar", 0));
    c.final_softcap = o.get_number("final_logit_softcapping", 0.0);
    // Gemma 3 configs carry attn_logit_softcapping: null; a value is honoured.
    c.attn_softcap = o.get_number("attn_logit_softcapping", 0.0);
    if (fam.local_rope_theta > 0) c.rope_local_theta = o.get_number("rope_local_base_freq", fam.local_rope_theta);
  }

  // The window and which layers use it.
  std::optional<std::vector<LayerType>> listed;
  if (const json* lt = o.raw("layer_types")) {
    if (fam.hf_window == HfWindow::none || fam.hf_window == HfWindow::every_layer)
      fail("{}: not understood by {}; refusing rather than ignoring it", o.at("layer_types").str(), what);
    listed = hf_layer_types(*lt, o.at("layer_types"), c.n_layers);
  }
  switch (fam.hf_window) {
    case HfWindow::none: break;
    case HfWindow::every_layer: {
      const int w = o.get_int("sliding_window", 0);
      if (w < 0) fail("{}: got {}, expected a positive window or null", o.at("sliding_window").str(), w);
      if (w > 0) c.sliding_window = w;
      break;
    }
    case HfWindow::upper_layers: {
      const bool on = o.get_bool("use_sliding_window", false);
      o.ignore({"sliding_window", "max_window_layers"});  // read below only when the window is on
      if (!on) {
        if (listed && std::count(listed->begin(), listed->end(), LayerType::local))
          fail("{}: lists sliding layers but use_sliding_window is false", o.at("layer_types").str());
        break;
      }
      const int w = o.get_int("sliding_window");
      if (w <= 0) fail("{}: got {}, expected a positive window", o.at("sliding_window").str(), w);
      c.sliding_window = w;
      if (listed) {
        c.layer_types = *listed;
        break;
      }
      const int first = o.get_int("max_window_layers", c.n_layers);
      if (first < 0 || first > c.n_layers)
        fail("{}: got {}, expected 0 .. num_hidden_layers ({})", o.at("max_window_layers").str(), first, c.n_layers);
      for (int l = 0; l < c.n_layers; ++l) c.layer_types.push_back(l >= first ? LayerType::local : LayerType::global);
      break;
    }
    case HfWindow::pattern: {
      const int w = o.get_int("sliding_window");
      if (w <= 0) fail("{}: got {}, expected a positive window", o.at("sliding_window").str(), w);
      if (const auto old = o.opt_int("sliding_window_size"); old && *old != w)  // older Gemma 2 configs
        fail("{}: got {}, but sliding_window is {}; expected them equal", o.at("sliding_window_size").str(), *old, w);
      c.sliding_window = w;
      // Gemma 3 names its period sliding_window_pattern (newer files: _sliding_window_pattern).
      int every = fam.global_every;
      if (fam.period_in_file)
        for (const char* key : {"sliding_window_pattern", "_sliding_window_pattern"})
          if (const auto p = o.opt_int(key)) {
            if (*p <= 0) fail("{}: got {}, expected a positive integer", o.at(key).str(), *p);
            every = *p;
          }
      c.layer_types = listed ? *listed : every_nth_global(every);
      break;
    }
  }
  o.refuse_unread(what);
  c.validate(at.source);
  return c;
}

// Gemma 3 with a vision tower: the text model is text_config; the vision
// tower and the image-token ids do not change text generation.
HfMapping map_gemma3_multimodal(const json& j, const std::string& source) {
  JsonObject o(j, {source, ""});
  o.ignore(harmless_keys());
  o.ignore({"vision_config", "boi_token_index", "eoi_token_index", "image_token_index", "mm_tokens_per_image"});
  const json* text = o.raw("text_config");
  if (!text)
    fail("{}: key 'model_type': got \"gemma3\" (Gemma 3 with a vision tower) but key 'text_config', which "
         "describes its language model, is missing; expected a text_config, or a model_type of {}",
         source, hf_model_type_list());
  if (text->contains("model_type") && (*text)["model_type"] != "gemma3_text")
    fail("{}: key 'text_config.model_type': got {}, expected \"gemma3_text\"", source,
         json_show((*text)["model_type"]));
  json text_cfg = *text;
  // The wrapper's tie flag is the language model's.
  if (const auto tie = o.opt_bool("tie_word_embeddings"); tie && !text_cfg.contains("tie_word_embeddings"))
    text_cfg["tie_word_embeddings"] = *tie;
  o.refuse_unread("tpp's gemma3 (multimodal) mapping");
  HfMapping m;
  m.family = family_for_hf_type("gemma3_text");
  m.model_type = "gemma3";
  m.config = map_family(text_cfg, *m.family, {source, "text_config"});
  m.notes.push_back("gemma3 multimodal config: text_config mapped; the vision tower (vision_config) is left out");
  m.wrapped_language_model = true;
  m.other_towers = {"vision_tower.", "multi_modal_projector.", "model.vision_tower.", "model.multi_modal_projector."};
  return m;
}

}  // namespace

bool is_hf_config(const json& j) { return j.is_object() && j.contains("model_type"); }

HfMapping map_hf_config(const json& j, const std::string& source) {
  const auto type = j.is_object() ? j.find("model_type") : j.end();
  if (!j.is_object() || type == j.end() || !type->is_string())
    fail("{}: key 'model_type': missing or not a string", source);
  const std::string model_type = type->get<std::string>();
  if (model_type == "gemma3") return map_gemma3_multimodal(j, source);
  const Family* fam = family_for_hf_type(model_type);
  if (!fam)
    fail("{}: key 'model_type': got \"{}\", which tpp does not support; expected one of {}, or gemma3 "
         "(multimodal, text part only)", source, model_type, hf_model_type_list());
  HfMapping m;
  m.family = fam;
  m.model_type = model_type;
  m.config = map_family(j, *fam, {source, ""});
  return m;
}

ModelConfig config_from_hf(const json& j, const std::string& source) { return map_hf_config(j, source).config; }

}  // namespace tpp
