// The enumerated switches of SPEC §1, each with one name table used both to
// parse and to print (its JSON spelling). Ops take these enums; only
// model/config knows how they are grouped into a model.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace tpp {

enum class PosEncoding : uint8_t { rope, learned, sinusoidal, alibi, none };
enum class RopeLayout : uint8_t { half, interleaved };
enum class RopeScalingType : uint8_t { none, linear, ntk, dynamic_ntk, llama3, yarn };
enum class NormKind : uint8_t { rmsnorm, layernorm };
enum class NormPlacement : uint8_t { pre, post, sandwich };
enum class Softmax : uint8_t { standard, plus_one };
enum class LayerType : uint8_t { global, local };
enum class Ffn : uint8_t { relu, gelu, glu, bilinear, reglu, geglu, swiglu };
enum class GeluApprox : uint8_t { none, tanh };

// One name table per enum, used both to parse and to print.
template <class E>
struct EnumNames;
#define TPP_ENUM_NAMES(E, ...)                                            \
  template <>                                                             \
  struct EnumNames<E> {                                                   \
    static constexpr std::array table{__VA_ARGS__};                       \
  };
TPP_ENUM_NAMES(PosEncoding, std::pair{PosEncoding::rope, "rope"},
               std::pair{PosEncoding::learned, "learned"},
               std::pair{PosEncoding::sinusoidal, "sinusoidal"}, std::pair{PosEncoding::alibi, "alibi"},
               std::pair{PosEncoding::none, "none"})
TPP_ENUM_NAMES(RopeLayout, std::pair{RopeLayout::half, "half"},
               std::pair{RopeLayout::interleaved, "interleaved"})
TPP_ENUM_NAMES(RopeScalingType, std::pair{RopeScalingType::none, "none"},
               std::pair{RopeScalingType::linear, "linear"}, std::pair{RopeScalingType::ntk, "ntk"},
               std::pair{RopeScalingType::dynamic_ntk, "dynamic_ntk"},
               std::pair{RopeScalingType::llama3, "llama3"}, std::pair{RopeScalingType::yarn, "yarn"})
TPP_ENUM_NAMES(NormKind, std::pair{NormKind::rmsnorm, "rmsnorm"},
               std::pair{NormKind::layernorm, "layernorm"})
TPP_ENUM_NAMES(NormPlacement, std::pair{NormPlacement::pre, "pre"},
               std::pair{NormPlacement::post, "post"},
               std::pair{NormPlacement::sandwich, "sandwich"})
TPP_ENUM_NAMES(Softmax, std::pair{Softmax::standard, "standard"},
               std::pair{Softmax::plus_one, "plus_one"})
TPP_ENUM_NAMES(LayerType, std::pair{LayerType::global, "global"}, std::pair{LayerType::local, "local"})
TPP_ENUM_NAMES(Ffn, std::pair{Ffn::relu, "relu"}, std::pair{Ffn::gelu, "gelu"},
               std::pair{Ffn::glu, "glu"}, std::pair{Ffn::bilinear, "bilinear"},
               std::pair{Ffn::reglu, "reglu"}, std::pair{Ffn::geglu, "geglu"},
               std::pair{Ffn::swiglu, "swiglu"})
TPP_ENUM_NAMES(GeluApprox, std::pair{GeluApprox::none, "none"}, std::pair{GeluApprox::tanh, "tanh"})
#undef TPP_ENUM_NAMES

template <class E>
std::string_view enum_name(E e) {
  for (const auto& [value, name] : EnumNames<E>::table)
    if (value == e) return name;
  return "?";
}
template <class E>
std::optional<E> parse_enum(std::string_view s) {
  for (const auto& [value, name] : EnumNames<E>::table)
    if (name == s) return value;
  return std::nullopt;
}
// "a | b | c": the accepted spellings, for error messages and docs.
template <class E>
std::string enum_choices() {
  std::string out;
  for (const auto& [value, name] : EnumNames<E>::table) {
    if (!out.empty()) out += " | ";
    out += name;
  }
  return out;
}

constexpr bool ffn_is_gated(Ffn f) { return f != Ffn::relu && f != Ffn::gelu; }

// RoPE context-extension scaling, with the parameter names HF's config.json uses.
struct RopeScaling {
  RopeScalingType type = RopeScalingType::none;
  double factor = 1.0;
  int original_max_position_embeddings = 0;  // 0 = max_seq_len
  double low_freq_factor = 1.0;              // llama3
  double high_freq_factor = 4.0;             // llama3
  double beta_fast = 32.0;                   // yarn
  double beta_slow = 1.0;                    // yarn
  double attention_factor = 0.0;             // yarn; 0 = 0.1 ln(factor) + 1
  bool operator==(const RopeScaling&) const = default;
};

}  // namespace tpp
