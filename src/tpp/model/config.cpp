#include "tpp/model/config.h"

#include <fstream>
#include <set>
#include <type_traits>

#include <nlohmann/json.hpp>

#include "tpp/core/error.h"
#include "tpp/io/json_file.h"
#include "tpp/model/json_read.h"
#include "tpp/model/tensor_table.h"

namespace tpp {
namespace {

using json = nlohmann::json;

json write_rope_scaling(const RopeScaling& r) {
  json j = {{"type", enum_name(r.type)}};
  if (r.type == RopeScalingType::none) return j;
  j["factor"] = r.factor;
  if (r.original_max_position_embeddings)
    j["original_max_position_embeddings"] = r.original_max_position_embeddings;
  if (r.type == RopeScalingType::llama3) {
    j["low_freq_factor"] = r.low_freq_factor;
    j["high_freq_factor"] = r.high_freq_factor;
  }
  if (r.type == RopeScalingType::yarn) {
    j["beta_fast"] = r.beta_fast;
    j["beta_slow"] = r.beta_slow;
    if (r.attention_factor != 0) j["attention_factor"] = r.attention_factor;
  }
  return j;
}

// Reads one field from a JSON object; marks the key as consumed.
struct JsonReader {
  const json& j;
  const std::string& source;
  std::set<std::string> seen;

  template <class T>
  void operator()(T& field, const char* name, const char* /*doc*/) {
    auto it = j.find(name);
    if (it == j.end()) return;
    seen.insert(name);
    read(field, *it, JsonAt{source, name});
  }
  static void read(int& f, const json& v, const JsonAt& at) { f = json_int(v, at); }
  static void read(double& f, const json& v, const JsonAt& at) { f = json_number(v, at); }
  static void read(bool& f, const json& v, const JsonAt& at) { f = json_bool(v, at); }
  template <class E>
    requires std::is_enum_v<E>
  static void read(E& f, const json& v, const JsonAt& at) {
    f = json_enum<E>(v, at);
  }
  static void read(std::vector<int>& f, const json& v, const JsonAt& at) {
    f.clear();
    if (v.is_array()) {
      if (v.empty()) fail("{}: got [], expected an integer or a non-empty list", at.str());
      for (size_t i = 0; i < v.size(); ++i) f.push_back(json_int(v[i], at.index(i)));
    } else {
      f.push_back(json_int(v, at));
    }
  }
  static void read(std::optional<int>& f, const json& v, const JsonAt& at) {
    if (v.is_null()) f.reset();
    else f = json_int(v, at);
  }
  static void read(std::vector<LayerType>& f, const json& v, const JsonAt& at) {
    if (!v.is_array()) fail("{}: got {}, expected a list of \"local\"/\"global\"", at.str(), json_show(v));
    f.clear();
    for (size_t i = 0; i < v.size(); ++i) f.push_back(json_enum<LayerType>(v[i], at.index(i)));
  }
  static void read(RopeScaling& f, const json& v, const JsonAt& at) {
    f = read_rope_scaling(v, at, RopeDialect::tpp);
  }
};

struct JsonWriter {
  json& j;
  template <class T>
  void operator()(const T& field, const char* name, const char* /*doc*/) {
    j[name] = write(field);
  }
  static json write(int f) { return f; }
  static json write(double f) { return f; }
  static json write(bool f) { return f; }
  template <class E>
    requires std::is_enum_v<E>
  static json write(E f) {
    return std::string(enum_name(f));
  }
  static json write(const std::vector<int>& f) { return f.size() == 1 ? json(f[0]) : json(f); }
  static json write(const std::optional<int>& f) { return f ? json(*f) : json(nullptr); }
  static json write(const std::vector<LayerType>& f) {
    json a = json::array();
    for (auto t : f) a.push_back(std::string(enum_name(t)));
    return a;
  }
  static json write(const RopeScaling& f) { return write_rope_scaling(f); }
};

struct DocCollector {
  std::vector<ConfigKeyDoc>& out;
  template <class T>
  void operator()(const T& field, const char* name, const char* doc) {
    out.push_back({name, JsonWriter::write(field).dump(), doc});
  }
};

struct KeyCollector {
  std::string keys;
  template <class T>
  void operator()(const T&, const char* name, const char*) {
    if (!keys.empty()) keys += ", ";
    keys += name;
  }
};

}  // namespace

ModelConfig config_from_json(const json& j, const std::string& source) {
  if (!j.is_object()) fail("{}: expected a JSON object of config keys, got {}", source, json_show(j));
  ModelConfig c;
  JsonReader reader{j, source, {}};
  c.visit(reader);
  for (const auto& [key, value] : j.items()) {
    if (reader.seen.count(key)) continue;
    KeyCollector keys;
    c.visit(keys);
    fail("{}: unknown key '{}' (value {}); expected one of: {}", source, key, json_show(value), keys.keys);
  }
  c.validate(source);
  return c;
}

json config_to_json(const ModelConfig& c) {
  json j = json::object();
  JsonWriter writer{j};
  const_cast<ModelConfig&>(c).visit(writer);
  return j;
}

std::string config_to_string(const ModelConfig& c) { return config_to_json(c).dump(2) + "\n"; }

ModelConfig load_config_file(const std::string& path) {
  return config_from_json(io::read_json_file(path), path);
}

std::vector<ConfigKeyDoc> config_key_docs() {
  std::vector<ConfigKeyDoc> out;
  ModelConfig c;
  DocCollector collector{out};
  c.visit(collector);
  return out;
}

// ---------------------------------------------------------------------------
// Validation: every key checked with its value and what was expected.

void ModelConfig::validate(const std::string& source) const {
  auto key = [&](const char* name) { return fmt::format("{}: key '{}'", source, name); };
  auto positive = [&](int v, const char* name) {
    TPP_CHECK(v > 0, "{}: got {}, expected a positive integer", key(name), v);
  };
  positive(d_model, "d_model");
  positive(n_layers, "n_layers");
  positive(n_heads, "n_heads");
  positive(d_ff, "d_ff");
  positive(vocab_size, "vocab_size");
  positive(max_seq_len, "max_seq_len");
  positive(cla_share, "cla_share");
  positive(multiple_of, "multiple_of");
  TPP_CHECK(head_dim >= 0, "{}: got {}, expected a positive integer (or 0 = d_model / n_heads)",
            key("head_dim"), head_dim);
  TPP_CHECK(head_dim > 0 || d_model % n_heads == 0,
            "{}: head_dim 0 needs d_model divisible by n_heads, got d_model {} and n_heads {}",
            key("head_dim"), d_model, n_heads);
  const int k = head_dim_resolved();
  TPP_CHECK(norm_eps > 0 && std::isfinite(norm_eps), "{}: got {}, expected a positive number",
            key("norm_eps"), norm_eps);
  TPP_CHECK(std::isfinite(embed_scale) && embed_scale != 0, "{}: got {}, expected a non-zero number",
            key("embed_scale"), embed_scale);
  TPP_CHECK(final_softcap >= 0 && std::isfinite(final_softcap),
            "{}: got {}, expected >= 0 (0 = off)", key("final_softcap"), final_softcap);
  TPP_CHECK(attn_softcap >= 0 && std::isfinite(attn_softcap), "{}: got {}, expected >= 0 (0 = off)",
            key("attn_softcap"), attn_softcap);
  TPP_CHECK(attn_scale >= 0 && std::isfinite(attn_scale),
            "{}: got {}, expected > 0 (or 0 = 1/sqrt(head_dim))", key("attn_scale"), attn_scale);

  TPP_CHECK(n_kv_heads.size() == 1 || int(n_kv_heads.size()) == n_layers,
            "{}: got a list of {} values, expected one value or n_layers = {}", key("n_kv_heads"),
            n_kv_heads.size(), n_layers);
  for (size_t i = 0; i < n_kv_heads.size(); ++i) {
    const int g = n_kv_heads[i] == 0 ? n_heads : n_kv_heads[i];
    const std::string at = n_kv_heads.size() == 1 ? key("n_kv_heads") : fmt::format("{}[{}]", key("n_kv_heads"), i);
    TPP_CHECK(n_kv_heads[i] >= 0, "{}: got {}, expected a positive integer", at, n_kv_heads[i]);
    TPP_CHECK(g <= n_heads && n_heads % g == 0,
              "{}: got {}, expected a divisor of n_heads = {} (query head i reads KV head i*g/h)",
              at, g, n_heads);
  }

  // Positions.
  TPP_CHECK(std::isfinite(rope_theta) && rope_theta > 1, "{}: got {}, expected a base > 1",
            key("rope_theta"), rope_theta);
  TPP_CHECK(rope_local_theta == 0 || (std::isfinite(rope_local_theta) && rope_local_theta > 1),
            "{}: got {}, expected a base > 1 (or 0 = rope_theta)", key("rope_local_theta"),
            rope_local_theta);
  TPP_CHECK(rotary_dim == -1 || (rotary_dim >= 0 && rotary_dim <= k && rotary_dim % 2 == 0),
            "{}: got {}, expected an even number in [0, head_dim = {}] (or -1 = head_dim)",
            key("rotary_dim"), rotary_dim, k);
  TPP_CHECK(rotary_dim_resolved() % 2 == 0, "{}: head_dim {} is odd; RoPE rotates pairs", key("rotary_dim"), k);
  const auto& rs = rope_scaling;
  if (rs.type != RopeScalingType::none) {
    TPP_CHECK(pos_encoding == PosEncoding::rope,
              "{}: type {} needs pos_encoding rope, got {}", key("rope_scaling"), enum_name(rs.type),
              enum_name(pos_encoding));
    TPP_CHECK(std::isfinite(rs.factor) && rs.factor >= 1,
              "{}.factor: got {}, expected a number >= 1", key("rope_scaling"), rs.factor);
    TPP_CHECK(rs.original_max_position_embeddings >= 0,
              "{}.original_max_position_embeddings: got {}, expected a positive integer",
              key("rope_scaling"), rs.original_max_position_embeddings);
    if (rs.type == RopeScalingType::llama3)
      TPP_CHECK(rs.high_freq_factor > rs.low_freq_factor && rs.low_freq_factor > 0,
                "{}: llama3 needs 0 < low_freq_factor < high_freq_factor, got {} and {}",
                key("rope_scaling"), rs.low_freq_factor, rs.high_freq_factor);
    if (rs.type == RopeScalingType::yarn)
      TPP_CHECK(rs.beta_fast > 0 && rs.beta_slow > 0 && rs.attention_factor >= 0,
                "{}: yarn needs beta_fast > 0, beta_slow > 0, attention_factor >= 0; got {}, {}, {}",
                key("rope_scaling"), rs.beta_fast, rs.beta_slow, rs.attention_factor);
    if (rs.type == RopeScalingType::ntk || rs.type == RopeScalingType::dynamic_ntk ||
        rs.type == RopeScalingType::yarn)
      TPP_CHECK(rotary_dim_resolved() > 2, "{}: {} needs rotary_dim > 2, got {}", key("rope_scaling"),
                enum_name(rs.type), rotary_dim_resolved());
  }

  // Sliding window and layer pattern.
  if (sliding_window)
    TPP_CHECK(*sliding_window > 0, "{}: got {}, expected a positive window (or null = none)",
              key("sliding_window"), *sliding_window);
  for (size_t i = 0; i < layer_types.size(); ++i)
    TPP_CHECK(layer_types[i] == LayerType::global || sliding_window,
              "{}[{}]: got \"local\" but sliding_window is not set; expected a window for local layers",
              key("layer_types"), i);
  TPP_CHECK(rope_local_theta == 0 || pos_encoding == PosEncoding::rope,
            "{}: set but pos_encoding is {}, expected rope", key("rope_local_theta"),
            enum_name(pos_encoding));

  // Cross-layer attention: a group shares one cache, so its layers must agree.
  for (int l = 0; l < n_layers; ++l) {
    const int src = kv_source(l);
    TPP_CHECK(kv_heads(l) == kv_heads(src),
              "{}: layer {} reuses layer {}'s K,V (cla_share {}) but has n_kv_heads {} vs {}; "
              "expected equal within a group", key("cla_share"), l, src, cla_share, kv_heads(l), kv_heads(src));
    TPP_CHECK(layer_type(l) == layer_type(src),
              "{}: layer {} is {} but reuses K,V of layer {} which is {}; expected one layer type per group",
              key("cla_share"), l, enum_name(layer_type(l)), src, enum_name(layer_type(src)));
  }
  TPP_CHECK(ffn_width() > 0, "{}: width {} after param_match, expected > 0", key("d_ff"), ffn_width());
  TPP_CHECK(gelu_approx == GeluApprox::none || ffn == Ffn::gelu || ffn == Ffn::geglu,
            "{}: got {} but ffn is {}; expected ffn gelu or geglu", key("gelu_approx"),
            enum_name(gelu_approx), enum_name(ffn));
}

int ModelConfig::kv_heads(int layer) const {
  const int g = n_kv_heads.size() == 1 ? n_kv_heads[0] : n_kv_heads[size_t(layer)];
  return g == 0 ? n_heads : g;
}

int ModelConfig::rotary_dim_resolved() const {
  if (pos_encoding != PosEncoding::rope) return 0;
  return rotary_dim < 0 ? head_dim_resolved() : rotary_dim;
}

int ModelConfig::ffn_width() const {
  if (!param_match || !ffn_is_gated(ffn)) return d_ff;
  const int w = 2 * d_ff / 3;
  return (w + multiple_of - 1) / multiple_of * multiple_of;
}

LayerType ModelConfig::layer_type(int layer) const {
  if (layer_types.empty()) return sliding_window ? LayerType::local : LayerType::global;
  return layer_types[size_t(layer) % layer_types.size()];
}

double ModelConfig::attn_scale_resolved() const {
  return attn_scale > 0 ? attn_scale : 1.0 / std::sqrt(double(head_dim_resolved()));
}

int64_t ModelConfig::n_params() const {
  // The tensor table is the one description of the weights: count what it lists.
  int64_t n = 0;
  for (const auto& spec : expected_tensors(*this, NameStyle::tpp)) {
    int64_t size = 1;
    for (auto s : spec.shape) size *= s;
    n += size;
  }
  return n;
}

}  // namespace tpp
