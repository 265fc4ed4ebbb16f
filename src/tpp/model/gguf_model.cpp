#include "tpp/model/gguf_model.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include "tpp/core/error.h"

namespace tpp {
namespace {

const std::set<std::string>& known_architectures() {
  static const std::set<std::string> archs = {"llama", "qwen2", "qwen3", "gemma2", "gemma3"};
  return archs;
}

class Meta {
 public:
  Meta(const io::GgufFile& f, std::string arch) : f_(f), arch_(std::move(arch)) {}
  const std::string& arch() const { return arch_; }
  std::string key(std::string_view k) const { return arch_ + "." + std::string(k); }
  // A required positive integer.
  int size(std::string_view k) const {
    const auto v = f_.get_int(key(k));
    if (!v) fail("{}: missing metadata key '{}' (a positive integer)", f_.path(), key(k));
    if (*v <= 0 || *v > INT32_MAX) fail("{}: metadata key '{}': {}, expected a positive integer", f_.path(), key(k), *v);
    used_.insert(key(k));
    return int(*v);
  }
  std::optional<int64_t> opt_int(std::string_view k) const {
    used_.insert(key(k));
    return f_.get_int(key(k));
  }
  double number(std::string_view k, double dflt) const {
    used_.insert(key(k));
    return f_.get_float(key(k)).value_or(dflt);
  }
  std::optional<std::string> string(std::string_view k) const {
    used_.insert(key(k));
    return f_.get_string(key(k));
  }
  const io::GgufValue* raw(std::string_view k) const {
    used_.insert(key(k));
    return f_.find(key(k));
  }
  // Every "<arch>.*" key must have been read by the mapping.
  void refuse_unread() const {
    const std::string prefix = arch_ + ".";
    for (const auto& k : f_.keys())
      if (k.rfind(prefix, 0) == 0 && !used_.count(k))
        fail("{}: metadata key '{}' is not understood by tpp's {} mapping; refusing rather than ignoring it",
             f_.path(), k, arch_);
  }
  const io::GgufFile& file() const { return f_; }

 private:
  const io::GgufFile& f_;
  std::string arch_;
  mutable std::set<std::string> used_;
};

// head_count_kv: one value, or one per layer (llama.cpp allows an array).
std::vector<int> kv_heads(const Meta& m, int n_layers, int n_heads) {
  const io::GgufValue* v = m.raw("attention.head_count_kv");
  if (!v) return {n_heads};
  if (v->type != io::GgufType::array) {
    const auto g = m.opt_int("attention.head_count_kv");
    if (*g <= 0 || *g > n_heads || n_heads % *g != 0)
      fail("{}: metadata key '{}': {}, expected a divisor of the head count {}", m.file().path(),
           m.key("attention.head_count_kv"), *g, n_heads);
    return {int(*g)};
  }
  const auto list = m.file().get_ints(m.key("attention.head_count_kv"));
  if (int(list->size()) != n_layers)
    fail("{}: metadata key '{}': {} entries, expected one per layer ({})", m.file().path(),
         m.key("attention.head_count_kv"), list->size(), n_layers);
  std::vector<int> out;
  for (auto g : *list) {
    if (g <= 0 || g > n_heads || n_heads % g != 0)
      fail("{}: metadata key '{}': entry {}, expected a divisor of the head count {}", m.file().path(),
           m.key("attention.head_count_kv"), g, n_heads);
    out.push_back(int(g));
  }
  return out;
}

RopeScaling rope_scaling(const Meta& m) {
  RopeScaling r;
  const auto type = m.string("rope.scaling.type");
  m.raw("rope.scaling.finetuned");  // informational
  if (!type || *type == "none") {
    if (m.raw("rope.scaling.factor") && m.number("rope.scaling.factor", 1.0) != 1.0 && !type)
      r.type = RopeScalingType::linear;  // older files give the factor alone (linear)
    else
      return r;
  } else if (*type == "linear") {
    r.type = RopeScalingType::linear;
  } else if (*type == "yarn") {
    r.type = RopeScalingType::yarn;
  } else {
    fail("{}: metadata key '{}': \"{}\", which tpp cannot honour; expected none, linear or yarn", m.file().path(),
         m.key("rope.scaling.type"), *type);
  }
  r.factor = m.number("rope.scaling.factor", 1.0);
  if (!(r.factor > 0)) fail("{}: metadata key '{}': {}, expected > 0", m.file().path(), m.key("rope.scaling.factor"), r.factor);
  if (const auto orig = m.opt_int("rope.scaling.original_context_length")) r.original_max_position_embeddings = int(*orig);
  return r;
}

}  // namespace

bool is_gguf_file(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return false;
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  in.read(magic, 4);
  return in.gcount() == 4 && std::memcmp(magic, "GGUF", 4) == 0;
}

ModelConfig config_from_gguf(const io::GgufFile& f) {
  const auto arch_value = f.get_string("general.architecture");
  if (!arch_value) fail("{}: missing metadata key 'general.architecture' (a string)", f.path());
  const std::string& arch = *arch_value;
  if (!known_architectures().count(arch))
    fail("{}: metadata key 'general.architecture': \"{}\", which tpp does not support; expected one of llama, "
         "qwen2, qwen3, gemma2, gemma3", f.path(), arch);
  const Meta m(f, arch);
  const bool gemma = arch == "gemma2" || arch == "gemma3";

  ModelConfig c;
  c.d_model = m.size("embedding_length");
  c.n_layers = m.size("block_count");
  c.n_heads = m.size("attention.head_count");
  c.n_kv_heads = kv_heads(m, c.n_layers, c.n_heads);
  c.d_ff = m.size("feed_forward_length");
  c.max_seq_len = m.size("context_length");
  c.head_dim = m.opt_int("attention.key_length") ? m.size("attention.key_length") : c.d_model / c.n_heads;
  if (m.opt_int("attention.value_length") && m.size("attention.value_length") != c.head_dim)
    fail("{}: metadata key '{}': {}, expected the key length {} (tpp's heads have one width)", f.path(),
         m.key("attention.value_length"), m.size("attention.value_length"), c.head_dim);
  c.rotary_dim = m.opt_int("rope.dimension_count") ? m.size("rope.dimension_count") : -1;
  if (c.rotary_dim == c.head_dim) c.rotary_dim = -1;
  c.norm_eps = m.number("attention.layer_norm_rms_epsilon", 1e-5);
  c.rope_theta = m.number("rope.freq_base", 10000.0);
  c.rope_scaling = rope_scaling(m);
  for (const char* k : {"expert_count", "expert_used_count"})
    if (const auto n = m.opt_int(k); n && *n != 0)
      fail("{}: metadata key '{}': {}: mixture-of-experts models are not supported", f.path(), m.key(k), *n);
  if (const auto layout = m.string("tensor_data_layout"))
    fail("{}: metadata key '{}': \"{}\", which tpp cannot honour (expected the key to be absent)", f.path(),
         m.key("tensor_data_layout"), *layout);

  // Vocabulary size and tied output from the tensors.
  const io::GgufTensor* embd = f.find_tensor("token_embd.weight");
  if (!embd || embd->ne.size() != 2)
    fail("{}: missing tensor 'token_embd.weight' (2 dimensions: [d_model, vocab_size] in GGUF order)", f.path());
  c.vocab_size = int(embd->ne[1]);
  if (const auto v = m.opt_int("vocab_size"); v && *v != c.vocab_size)
    fail("{}: metadata key '{}': {}, but token_embd.weight has {} rows", f.path(), m.key("vocab_size"), *v,
         c.vocab_size);
  c.tie_embeddings = f.find_tensor("output.weight") == nullptr;
  c.pos_encoding = PosEncoding::rope;
  c.norm = NormKind::rmsnorm;
  c.norm_placement = NormPlacement::pre;
  c.ffn = Ffn::swiglu;
  c.rope_layout = RopeLayout::half;

  if (arch == "llama") {
    // The converter permutes q/k rows so that llama.cpp's RoPE rotates
    // adjacent pairs.
    c.rope_layout = RopeLayout::interleaved;
    if (const auto w = m.opt_int("attention.sliding_window"); w && *w > 0) c.sliding_window = int(*w);
  }
  const bool has_q_bias = f.find_tensor("blk.0.attn_q.bias") != nullptr;
  if (arch == "qwen2" || has_q_bias) c.qkv_bias = true;
  c.o_bias = f.find_tensor("blk.0.attn_output.bias") != nullptr;
  c.mlp_bias = f.find_tensor("blk.0.ffn_up.bias") != nullptr;
  if (arch == "qwen3" || arch == "gemma3") c.qk_norm = true;

  if (gemma) {
    c.norm_placement = NormPlacement::sandwich;
    c.norm_one_plus = false;  // stored as 1 + w by the converter
    c.ffn = Ffn::geglu;
    c.gelu_approx = GeluApprox::tanh;
    c.embed_scale = std::sqrt(double(c.d_model));
    const auto w = m.opt_int("attention.sliding_window");
    if (!w || *w <= 0)
      fail("{}: metadata key '{}': missing or not positive, expected the sliding window", f.path(),
           m.key("attention.sliding_window"));
    c.sliding_window = int(*w);
    // llama.cpp's attention scale for Gemma: 1/sqrt(d_model / n_heads) for the
    // 27B models (query_pre_attn_scalar = 144 / 168), else 1/sqrt(head_dim);
    // an explicit attention.scale wins.
    const bool is_27b = (arch == "gemma2" && c.n_layers == 46) || (arch == "gemma3" && c.n_layers == 62);
    c.attn_scale = is_27b ? 1.0 / std::sqrt(double(c.d_model / c.n_heads)) : 0.0;
    c.attn_scale = m.number("attention.scale", c.attn_scale);
    if (arch == "gemma2") {
      c.attn_softcap = m.number("attn_logit_softcapping", 0.0);
      c.final_softcap = m.number("final_logit_softcapping", 0.0);
      c.layer_types = {LayerType::local, LayerType::global};
    } else {
      // Gemma 3: every sliding_window_pattern-th layer is global (llama.cpp's
      // default 6: five sliding layers, then one global); sliding layers use
      // RoPE base 10000 unscaled (fixed by llama.cpp for this architecture).
      c.final_softcap = m.number("final_logit_softcapping", 0.0);
      const auto pattern = m.opt_int("attention.sliding_window_pattern").value_or(6);
      if (pattern <= 0 || pattern > 1024)
        fail("{}: metadata key '{}': {}, expected a positive layer count", f.path(),
             m.key("attention.sliding_window_pattern"), pattern);
      c.layer_types.assign(size_t(pattern), LayerType::local);
      c.layer_types.back() = LayerType::global;
      c.rope_local_theta = 10000.0;
    }
  }
  m.refuse_unread();
  c.validate(f.path());
  return c;
}

}  // namespace tpp
