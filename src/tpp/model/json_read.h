// Typed reads from JSON config files, each error naming the file and the key:
// "config.json: key 'rope_scaling.factor': got "x", expected a number". One
// helper set for tpp's own config (config.cpp), Hugging Face config.json
// (hf_config.cpp) and the RoPE scaling block both of them carry, which GGUF
// metadata is also read through (gguf_model.cpp).
#pragma once

#include <optional>
#include <set>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "tpp/core/error.h"
#include "tpp/model/config.h"

namespace tpp {

// Where a value sits: "file: key 'a.b'". sub("c") names "a.b.c".
struct JsonAt {
  std::string source;  // a file path, or "config"
  std::string key;     // dotted path inside it; empty = the whole file
  JsonAt sub(std::string_view k) const { return {source, key.empty() ? std::string(k) : key + "." + std::string(k)}; }
  JsonAt index(size_t i) const { return {source, key + "[" + std::to_string(i) + "]"}; }
  std::string str() const { return key.empty() ? source : source + ": key '" + key + "'"; }
};

// A short rendering of a value for messages (long values are cut).
std::string json_show(const nlohmann::json& v);

// Each throws tpp::Error "<at>: got <value>, expected ...".
int json_int(const nlohmann::json& v, const JsonAt& at);  // 4096.0 is accepted, 4096.5 is not
double json_number(const nlohmann::json& v, const JsonAt& at);
bool json_bool(const nlohmann::json& v, const JsonAt& at);
std::string json_string(const nlohmann::json& v, const JsonAt& at);
template <class E>
E json_enum(const nlohmann::json& v, const JsonAt& at) {
  if (v.is_string())
    if (auto e = parse_enum<E>(v.get<std::string>())) return *e;
  fail("{}: got {}, expected one of {}", at.str(), json_show(v), enum_choices<E>());
}

// A JSON object whose keys are read one by one; every key read (or named as
// known not to change the computation) is recorded, so that refuse_unread()
// can refuse the rest by name. Absent and null keys read as "not given".
class JsonObject {
 public:
  JsonObject(const nlohmann::json& j, JsonAt at);
  const JsonAt& at() const { return at_; }
  JsonAt at(std::string_view key) const { return at_.sub(key); }
  bool has(std::string_view key) const;  // present and not null (does not mark it read)
  const nlohmann::json* raw(std::string_view key);  // marks it read; nullptr when absent or null
  std::optional<int> opt_int(std::string_view key);
  std::optional<double> opt_number(std::string_view key);
  std::optional<bool> opt_bool(std::string_view key);
  std::optional<std::string> opt_string(std::string_view key);
  int get_int(std::string_view key);  // required
  int get_int(std::string_view key, int dflt) { return opt_int(key).value_or(dflt); }
  double get_number(std::string_view key, double dflt) { return opt_number(key).value_or(dflt); }
  bool get_bool(std::string_view key, bool dflt) { return opt_bool(key).value_or(dflt); }
  // Keys known not to change the computation: accepted and never read.
  void ignore(std::initializer_list<std::string_view> keys);
  void ignore(const std::set<std::string>& keys);
  // Refuses the first key neither read nor ignored, naming `what` (e.g. "tpp's llama mapping").
  void refuse_unread(std::string_view what) const;

 private:
  const nlohmann::json& j_;
  JsonAt at_;
  std::set<std::string, std::less<>> read_;
};

// RoPE scaling blocks come in three spellings of the same fields:
//   tpp   {"type": none|linear|ntk|dynamic_ntk|llama3|yarn, ...}  (tpp's own config.json)
//   hf    {"rope_type" or "type": default|linear|dynamic|llama3|yarn, ...}  (Hugging Face)
//   gguf  {"type": none|linear|yarn, "factor", "original_max_position_embeddings"} built from
//         a GGUF file's <arch>.rope.scaling.* keys; a factor without a type is linear (older files)
// The numeric fields (factor, original_max_position_embeddings, low/high_freq_factor,
// beta_fast/slow, attention_factor) are the same in all three. Unknown fields and types tpp
// cannot honour are refused by name.
enum class RopeDialect { tpp, hf, gguf };
RopeScaling read_rope_scaling(const nlohmann::json& v, const JsonAt& at, RopeDialect dialect);

}  // namespace tpp
