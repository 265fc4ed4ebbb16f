#include "tpp/model/gguf_model.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <numbers>
#include <set>

#include <fmt/ranges.h>

#include "tpp/core/error.h"
#include "tpp/model/families.h"
#include "tpp/model/json_read.h"
#include "tpp/ops/rope.h"

namespace tpp {
namespace {

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

// <arch>.rope.scaling.*: read through the same reader as config.json's
// rope_scaling block (type names none / linear / yarn; a factor alone is linear).
RopeScaling rope_scaling(const Meta& m) {
  nlohmann::json block = nlohmann::json::object();
  if (const auto type = m.string("rope.scaling.type")) block["type"] = *type;
  m.raw("rope.scaling.finetuned");  // informational
  const double factor = m.number("rope.scaling.factor", 1.0);
  if (!(factor > 0))
    fail("{}: metadata key '{}': {}, expected > 0", m.file().path(), m.key("rope.scaling.factor"), factor);
  if (m.raw("rope.scaling.factor")) block["factor"] = factor;
  RopeScaling r = read_rope_scaling(block, JsonAt{m.file().path(), m.key("rope.scaling")}, RopeDialect::gguf);
  if (const auto orig = m.opt_int("rope.scaling.original_context_length")) {
    if (*orig <= 0 || *orig > INT32_MAX)
      fail("{}: metadata key '{}': {}, expected a positive context length", m.file().path(),
           m.key("rope.scaling.original_context_length"), *orig);
    r.original_max_position_embeddings = int(*orig);
  }
  return r;
}

// llama.cpp stores LLaMA 3.1-style scaling not as parameters but as the
// per-pair divisors of the inverse frequencies (rope_freqs.weight, f32 [r/2]):
// 1 for short wavelengths, `factor` for long ones and a smooth blend between.
// The llama3 parameters that reproduce them are recovered here (the
// boundaries are only determined up to the pairs that lie between them),
// and the result is checked pair by pair, so a file whose factors follow
// another rule is refused rather than approximated.
RopeScaling llama3_from_factors(const io::GgufFile& f, const io::GgufTensor& t, const ModelConfig& c,
                                int orig_max) {
  const int r = c.rotary_dim_resolved(), half = r / 2;
  // Checked here, before the config's own validation, as the fit needs them.
  if (r <= 0 || r % 2 != 0 || r > c.head_dim_resolved())
    fail("{}: metadata key '{}.rope.dimension_count': {}, expected an even count up to the head width {}", f.path(),
         *f.get_string("general.architecture"), r, c.head_dim_resolved());
  if (!(c.rope_theta > 1) || !std::isfinite(c.rope_theta))
    fail("{}: metadata key '{}.rope.freq_base': {}, expected a finite base > 1", f.path(),
         *f.get_string("general.architecture"), c.rope_theta);
  if (t.info().dtype != DType::f32 || t.ne.size() != 1 || t.ne[0] != half)
    fail("{}: tensor 'rope_freqs.weight': {} {}, expected F32 [{}] (rotary_dim / 2)", f.path(), t.info().name,
         t.ne.size() == 1 ? std::to_string(t.ne[0]) : "matrix", half);
  // The unscaled frequencies, from the same code that applies the scaling.
  const RopeParams plain = make_rope(c.head_dim_resolved(), r, c.rope_layout, c.rope_theta, RopeScaling{}, orig_max, 0);
  std::vector<double> factor(static_cast<size_t>(half)), wavelen(static_cast<size_t>(half));
  double max_factor = 1;
  for (int i = 0; i < half; ++i) {
    float v;
    std::memcpy(&v, t.data + 4 * i, 4);
    if (!(v >= 1.0f) || !std::isfinite(v))
      fail("{}: tensor 'rope_freqs.weight'[{}] = {}, expected a finite factor >= 1", f.path(), i, v);
    factor[size_t(i)] = v;
    wavelen[size_t(i)] = 2 * std::numbers::pi / plain.inv_freq[size_t(i)];
    max_factor = std::max(max_factor, double(v));
  }
  RopeScaling s;
  if (max_factor == 1) return s;
  s.type = RopeScalingType::llama3;
  s.factor = max_factor;
  s.original_max_position_embeddings = orig_max;
  const double tol = 1e-5;
  // Smooth pairs: s_i = (1/f_i - 1/F) / (1 - 1/F) = orig/wavelen * a - b, a = 1/(high-low), b = low/(high-low).
  std::vector<std::pair<double, double>> smooth;  // (orig / wavelen, s)
  double last_one = 0, first_full = 1e300;
  for (int i = 0; i < half; ++i) {
    const double fi = factor[size_t(i)];
    if (std::abs(fi - 1) <= tol) last_one = std::max(last_one, wavelen[size_t(i)]);
    else if (std::abs(fi - max_factor) <= tol * max_factor) first_full = std::min(first_full, wavelen[size_t(i)]);
    else smooth.push_back({orig_max / wavelen[size_t(i)], (1 / fi - 1 / max_factor) / (1 - 1 / max_factor)});
  }
  if (smooth.size() >= 2) {
    // Least squares line through (x, s): s = a x - b.
    double sx = 0, ss = 0, sxx = 0, sxs = 0;
    for (auto [x, y] : smooth) sx += x, ss += y, sxx += x * x, sxs += x * y;
    const double n = double(smooth.size());
    const double a = (n * sxs - sx * ss) / (n * sxx - sx * sx), b = (sx * a - ss) / n;
    if (!(a > 0) || !std::isfinite(a) || !std::isfinite(b))
      fail("{}: tensor 'rope_freqs.weight': the blended factors do not fall from the full factor {} towards 1 "
           "as the frequency rises, as LLaMA 3's frequency scaling does; tpp cannot honour these factors",
           f.path(), max_factor);
    s.low_freq_factor = b / a;
    s.high_freq_factor = s.low_freq_factor + 1 / a;
  } else {
    // No blend to fit: put both boundaries between the last unscaled and the
    // first fully scaled wavelength (around the single blended pair, if any).
    double lo = last_one, hi = first_full;
    if (smooth.size() == 1) lo = hi = orig_max / smooth[0].first;
    const double mid = lo > 0 && hi < 1e300 ? std::sqrt(lo * hi) : (lo > 0 ? 2 * lo : hi / 2);
    s.high_freq_factor = orig_max / (mid * (smooth.empty() ? 0.999 : 0.5));
    s.low_freq_factor = orig_max / (mid * (smooth.empty() ? 1.001 : 2.0));
  }
  // Check: the fitted parameters reproduce every stored factor.
  const RopeParams fitted = make_rope(c.head_dim_resolved(), r, c.rope_layout, c.rope_theta, s, orig_max, 0);
  for (int i = 0; i < half; ++i) {
    const double got = plain.inv_freq[size_t(i)] / fitted.inv_freq[size_t(i)];
    if (std::abs(got - factor[size_t(i)]) > 1e-4 * factor[size_t(i)])
      fail("{}: tensor 'rope_freqs.weight'[{}] = {} does not follow LLaMA 3's frequency scaling (the best fit "
           "gives {}); tpp cannot honour these factors", f.path(), i, factor[size_t(i)], got);
  }
  return s;
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
  const Family* fam = family_for_gguf_arch(arch);
  if (!fam)
    fail("{}: metadata key 'general.architecture': \"{}\", which tpp does not support; expected one of {}",
         f.path(), arch, gguf_arch_list());
  const Meta m(f, arch);

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
  if (!embd) fail("{}: missing tensor 'token_embd.weight' ([d_model, vocab_size] in GGUF order)", f.path());
  if (embd->ne.size() != 2 || embd->ne[1] <= 0 || embd->ne[1] > INT32_MAX)
    fail("{}: tensor 'token_embd.weight': ne [{}], expected [d_model, vocab_size] with 0 < vocab_size < 2^31",
         f.path(), fmt::join(embd->ne, ", "));
  c.vocab_size = int(embd->ne[1]);
  if (const auto v = m.opt_int("vocab_size"); v && *v != c.vocab_size)
    fail("{}: metadata key '{}': {}, but token_embd.weight has {} rows", f.path(), m.key("vocab_size"), *v,
         c.vocab_size);
  c.tie_embeddings = f.find_tensor("output.weight") == nullptr;
  apply_family(*fam, c);
  c.rope_layout = fam->gguf_qk_permuted ? RopeLayout::interleaved : RopeLayout::half;
  // llama.cpp's converter stores RMSNorm weights as 1 + w.
  c.norm_one_plus = false;

  if (fam->gguf_optional_window)  // Mistral (written as llama) and Phi-3
    if (const auto w = m.opt_int("attention.sliding_window"); w && *w > 0) c.sliding_window = int(*w);
  if (const io::GgufTensor* freqs = f.find_tensor("rope_freqs.weight")) {
    if (c.rope_scaling.type != RopeScalingType::none)
      fail("{}: tensor 'rope_freqs.weight' and metadata key '{}' both scale RoPE, expected one of them", f.path(),
           m.key("rope.scaling.type"));
    const int stated = c.rope_scaling.original_max_position_embeddings;
    const int orig = stated > 0 ? stated : 8192;  // LLaMA 3's pre-training context
    c.rope_scaling = llama3_from_factors(f, *freqs, c, orig);
  }
  if (fam->fused_qkv_gate_up) {
    // Phi-3: q/k/v and gate/up are fused (model.cpp slices them); longrope is not honoured.
    for (const char* t : {"rope_factors_long.weight", "rope_factors_short.weight"})
      if (f.find_tensor(t))
        fail("{}: tensor '{}': Phi-3's longrope scaling, which tpp cannot honour", f.path(), t);
  }
  // Biases as the tensors show them (the family may fix q/k/v biases on).
  if (f.find_tensor("blk.0.attn_q.bias")) c.qkv_bias = true;
  c.o_bias = f.find_tensor("blk.0.attn_output.bias") != nullptr;
  c.mlp_bias = f.find_tensor("blk.0.ffn_up.bias") != nullptr;

  if (fam->global_every > 0) {
    const auto w = m.opt_int("attention.sliding_window");
    if (!w || *w <= 0)
      fail("{}: metadata key '{}': missing or not positive, expected the sliding window", f.path(),
           m.key("attention.sliding_window"));
    c.sliding_window = int(*w);
    // llama.cpp's attention scale for Gemma: 1/sqrt(d_model / n_heads) for the
    // 27B models, else 1/sqrt(head_dim); an explicit attention.scale wins.
    const bool wide = fam->gguf_wide_scale_layers > 0 && c.n_layers == fam->gguf_wide_scale_layers;
    c.attn_scale = wide ? 1.0 / std::sqrt(double(c.d_model / c.n_heads)) : 0.0;
    c.attn_scale = m.number("attention.scale", c.attn_scale);
    if (fam->attn_softcap) c.attn_softcap = m.number("attn_logit_softcapping", 0.0);
    if (fam->final_softcap) c.final_softcap = m.number("final_logit_softcapping", 0.0);
    // The layer pattern: Gemma 2 alternates from layer 0; Gemma 3 files may
    // give their period (llama.cpp's default 6). Local layers' RoPE base is
    // the family's (fixed by llama.cpp for this architecture).
    int every = fam->global_every;
    if (fam->period_in_file) {
      const auto pattern = m.opt_int("attention.sliding_window_pattern").value_or(fam->global_every);
      if (pattern <= 0 || pattern > 1024)
        fail("{}: metadata key '{}': {}, expected a positive layer count", f.path(),
             m.key("attention.sliding_window_pattern"), pattern);
      every = int(pattern);
    }
    c.layer_types = every_nth_global(every);
  }
  m.refuse_unread();
  c.validate(f.path());
  return c;
}

}  // namespace tpp
