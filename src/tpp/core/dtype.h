// Element types: the storage formats tpp reads and writes, with their names in
// safetensors ("F32", "BF16", ...) and in tpp's own CLI ("f32", "bf16", ...).
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>
#include <utility>

namespace tpp {

// q8_0 and q4_0 are GGML's block formats (blocks of 32 along a row; see
// tpp/quant/quant.h), q4_k, q5_k and q6_k its K-quants (super-blocks of 256;
// tpp/kernels/kquants.h): they exist only as matrix storage, never in safetensors.
enum class DType : uint8_t { f32, f16, bf16, f64, i32, i64, u8, q8_0, q4_0, q4_k, q5_k, q6_k };

struct DTypeInfo {
  DType dtype;
  std::string_view name;         // tpp spelling: "f32"
  std::string_view safetensors;  // safetensors spelling: "F32" ("" for block formats)
  int size;                      // bytes per element, or per block for block formats
  int block = 1;                 // elements per block (1 for plain element types)
};

inline constexpr std::array kDTypes{
    DTypeInfo{DType::f32, "f32", "F32", 4},  DTypeInfo{DType::f16, "f16", "F16", 2},
    DTypeInfo{DType::bf16, "bf16", "BF16", 2}, DTypeInfo{DType::f64, "f64", "F64", 8},
    DTypeInfo{DType::i32, "i32", "I32", 4},  DTypeInfo{DType::i64, "i64", "I64", 8},
    DTypeInfo{DType::u8, "u8", "U8", 1},     DTypeInfo{DType::q8_0, "q8_0", "", 34, 32},
    DTypeInfo{DType::q4_0, "q4_0", "", 18, 32},    DTypeInfo{DType::q4_k, "q4_k", "", 144, 256},
    DTypeInfo{DType::q5_k, "q5_k", "", 176, 256},  DTypeInfo{DType::q6_k, "q6_k", "", 210, 256},
};

constexpr const DTypeInfo& dtype_info(DType t) {
  for (const auto& info : kDTypes)
    if (info.dtype == t) return info;
  return kDTypes[0];  // unreachable: every enumerator has a row
}
// Bytes per element of a plain element type (per block for block formats).
constexpr int dtype_size(DType t) { return dtype_info(t).size; }
constexpr std::string_view dtype_name(DType t) { return dtype_info(t).name; }
constexpr int dtype_block(DType t) { return dtype_info(t).block; }
constexpr bool is_block_dtype(DType t) { return dtype_info(t).block > 1; }
// Bytes of n consecutive elements (n a multiple of the block for block formats).
constexpr int64_t dtype_bytes(DType t, int64_t n) { return n / dtype_block(t) * dtype_size(t); }

inline std::optional<DType> parse_dtype(std::string_view name) {
  for (const auto& info : kDTypes)
    if (info.name == name) return info.dtype;
  return std::nullopt;
}
inline std::optional<DType> parse_safetensors_dtype(std::string_view name) {
  for (const auto& info : kDTypes)
    if (!info.safetensors.empty() && info.safetensors == name) return info.dtype;
  return std::nullopt;
}

// bf16 <-> f32. Rounding is round-to-nearest-even; NaN stays NaN (quiet).
inline float bf16_to_f32(uint16_t h) {
  uint32_t bits = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}
inline uint16_t f32_to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return uint16_t((bits >> 16) | 0x40);  // NaN
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return uint16_t(bits >> 16);
}

// IEEE half <-> f32, exact for every half value (subnormals included).
inline float f16_to_f32(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      int e = -1;
      do {
        mant <<= 1;
        ++e;
      } while ((mant & 0x400u) == 0);
      bits = sign | uint32_t(127 - 15 - e) << 23 | (mant & 0x3ffu) << 13;
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | mant << 13;
  } else {
    bits = sign | (exp + 127 - 15) << 23 | mant << 13;
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}
inline uint16_t f32_to_f16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  const uint32_t sign = (bits >> 16) & 0x8000u;
  const uint32_t abs = bits & 0x7fffffffu;
  if (abs > 0x7f800000u) return uint16_t(sign | 0x7e00u);  // NaN
  if (abs >= 0x477ff000u) return uint16_t(sign | 0x7c00u);  // overflow (incl. inf)
  if (abs < 0x38800000u) {                                  // subnormal or zero in half
    if (abs < 0x33000000u) return uint16_t(sign);
    const uint32_t e = abs >> 23;
    const uint32_t m = (abs & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126 - e;  // 14..24
    uint32_t half = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1);
    const uint32_t halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (half & 1u))) ++half;
    return uint16_t(sign | half);
  }
  uint32_t r = abs - 0x38000000u;  // rebias exponent 127 -> 15
  r += 0xfffu + ((r >> 13) & 1u);
  return uint16_t(sign | (r >> 13));
}

}  // namespace tpp
