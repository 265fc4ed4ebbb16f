#include "tpp/model/json_read.h"

#include <cmath>
#include <cstdint>

namespace tpp {

using json = nlohmann::json;

std::string json_show(const json& v) {
  std::string s = v.dump(-1, ' ', false, json::error_handler_t::replace);
  return s.size() > 60 ? s.substr(0, 57) + "..." : s;
}

int json_int(const json& v, const JsonAt& at) {
  if (v.is_number_integer()) {
    const auto i = v.get<int64_t>();
    if (i >= INT32_MIN && i <= INT32_MAX) return int(i);
  }
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (d == std::floor(d) && std::fabs(d) < 2e9) return int(d);
  }
  fail("{}: got {}, expected an integer", at.str(), json_show(v));
}

double json_number(const json& v, const JsonAt& at) {
  if (!v.is_number()) fail("{}: got {}, expected a number", at.str(), json_show(v));
  return v.get<double>();
}

bool json_bool(const json& v, const JsonAt& at) {
  if (!v.is_boolean()) fail("{}: got {}, expected true or false", at.str(), json_show(v));
  return v.get<bool>();
}

std::string json_string(const json& v, const JsonAt& at) {
  if (!v.is_string()) fail("{}: got {}, expected a string", at.str(), json_show(v));
  return v.get<std::string>();
}

// ---------------------------------------------------------------------------

JsonObject::JsonObject(const json& j, JsonAt at) : j_(j), at_(std::move(at)) {
  if (!j_.is_object()) fail("{}: got {}, expected a JSON object", at_.str(), json_show(j_));
}

bool JsonObject::has(std::string_view key) const {
  auto it = j_.find(key);
  return it != j_.end() && !it->is_null();
}

const json* JsonObject::raw(std::string_view key) {
  read_.insert(std::string(key));
  auto it = j_.find(key);
  return it == j_.end() || it->is_null() ? nullptr : &*it;
}

std::optional<int> JsonObject::opt_int(std::string_view key) {
  const json* v = raw(key);
  return v ? std::optional<int>(json_int(*v, at(key))) : std::nullopt;
}

std::optional<double> JsonObject::opt_number(std::string_view key) {
  const json* v = raw(key);
  return v ? std::optional<double>(json_number(*v, at(key))) : std::nullopt;
}

std::optional<bool> JsonObject::opt_bool(std::string_view key) {
  const json* v = raw(key);
  return v ? std::optional<bool>(json_bool(*v, at(key))) : std::nullopt;
}

std::optional<std::string> JsonObject::opt_string(std::string_view key) {
  const json* v = raw(key);
  return v ? std::optional<std::string>(json_string(*v, at(key))) : std::nullopt;
}

int JsonObject::get_int(std::string_view key) {
  const auto v = opt_int(key);
  if (!v) fail("{}: missing key '{}' (an integer)", at_.source, at(key).key);
  return *v;
}

void JsonObject::ignore(std::initializer_list<std::string_view> keys) {
  for (auto k : keys) read_.insert(std::string(k));
}

void JsonObject::ignore(const std::set<std::string>& keys) { read_.insert(keys.begin(), keys.end()); }

void JsonObject::refuse_unread(std::string_view what) const {
  for (const auto& [key, value] : j_.items())
    if (!read_.count(key))
      fail("{}: key '{}' (value {}) is not understood by {}; refusing rather than ignoring it", at_.source,
           at(key).key, json_show(value), what);
}

// ---------------------------------------------------------------------------

namespace {

// The scaling type as each dialect spells it; none = no scaling.
RopeScalingType rope_type(const std::string& name, const JsonAt& at, RopeDialect dialect) {
  if (dialect == RopeDialect::tpp) {
    if (auto t = parse_enum<RopeScalingType>(name)) return *t;
    fail("{}: got \"{}\", expected one of {}", at.str(), name, enum_choices<RopeScalingType>());
  }
  if (dialect == RopeDialect::hf) {
    if (name == "default") return RopeScalingType::none;
    if (name == "linear") return RopeScalingType::linear;
    if (name == "dynamic") return RopeScalingType::dynamic_ntk;
    if (name == "llama3") return RopeScalingType::llama3;
    if (name == "yarn") return RopeScalingType::yarn;
    fail("{}: got \"{}\", which tpp cannot honour; expected one of default, linear, dynamic, llama3, yarn",
         at.str(), name);
  }
  if (name == "none") return RopeScalingType::none;
  if (name == "linear") return RopeScalingType::linear;
  if (name == "yarn") return RopeScalingType::yarn;
  fail("{}: \"{}\", which tpp cannot honour; expected none, linear or yarn", at.str(), name);
}

}  // namespace

RopeScaling read_rope_scaling(const json& v, const JsonAt& at, RopeDialect dialect) {
  RopeScaling r;
  if (v.is_null()) return r;
  if (!v.is_object()) fail("{}: got {}, expected null or an object {{\"type\": ...}}", at.str(), json_show(v));
  // The type: HF writes "rope_type" (and older files "type"; some both, equal).
  std::optional<RopeScalingType> type;
  std::string type_name;
  for (const char* key : {"rope_type", "type"}) {
    auto it = v.find(key);
    if (it == v.end()) continue;
    const std::string name = json_string(*it, at.sub(key));
    const RopeScalingType t = rope_type(name, at.sub(key), dialect);
    if (type && *type != t)
      fail("{}: 'rope_type' \"{}\" and 'type' \"{}\" disagree", at.str(), type_name, name);
    type = t;
    type_name = name;
  }
  const bool has_factor = v.contains("factor");
  if (!type) {
    // Older GGUF files give the factor alone, meaning linear scaling.
    if (dialect == RopeDialect::gguf && has_factor && json_number(v["factor"], at.sub("factor")) != 1.0)
      type = RopeScalingType::linear;
    else if (dialect == RopeDialect::hf && !v.empty())
      fail("{}: missing 'rope_type', expected one of default, linear, dynamic, llama3, yarn", at.str());
  }
  r.type = type.value_or(RopeScalingType::none);
  for (const auto& [key, value] : v.items()) {
    const JsonAt here = at.sub(key);
    if (key == "type" || key == "rope_type") continue;
    if (key == "factor") r.factor = json_number(value, here);
    else if (key == "original_max_position_embeddings") r.original_max_position_embeddings = json_int(value, here);
    else if (key == "low_freq_factor") r.low_freq_factor = json_number(value, here);
    else if (key == "high_freq_factor") r.high_freq_factor = json_number(value, here);
    else if (key == "beta_fast") r.beta_fast = json_number(value, here);
    else if (key == "beta_slow") r.beta_slow = json_number(value, here);
    else if (key == "attention_factor") r.attention_factor = json_number(value, here);
    else if (dialect == RopeDialect::tpp)
      fail("{}: unknown key (expected type, factor, original_max_position_embeddings, "
           "low_freq_factor, high_freq_factor, beta_fast, beta_slow, attention_factor)", here.str());
    else
      fail("{}: not supported by tpp's {} scaling", here.str(), type_name.empty() ? "RoPE" : type_name);
  }
  // HF and GGUF spell "no scaling" with fields that then mean nothing.
  if (r.type == RopeScalingType::none && dialect != RopeDialect::tpp) return RopeScaling{};
  return r;
}

}  // namespace tpp
