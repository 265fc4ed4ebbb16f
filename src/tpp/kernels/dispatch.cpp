// Resolves the kernel table once from CPUID (or TPP_ISA).
#include <array>
#include <atomic>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tpp/core/error.h"
#include "tpp/kernels/api.h"
#include "tpp/kernels/scalar/kernels_scalar.h"
#include "tpp/kernels/x86/avx2/kernels_avx2.h"
#include "tpp/kernels/x86/avx512/kernels_avx512.h"
#include "tpp/kernels/x86/avx512bf16/kernels_avx512bf16.h"
#include "tpp/kernels/x86/avx512vnni/kernels_avx512vnni.h"

namespace tpp::kernels {
namespace {

#define TPP_KERNEL_TABLE(ns, isa_value)                                                      \
  Kernels {                                                                                  \
    isa_value, ns::matmul_f32, ns::matmul_bf16, ns::matmul_f16, ns::matmul_q8_0, ns::matmul_q4_0,     \
        ns::dequant_q8_0, ns::dequant_q4_0, ns::gemm_nn_f32, ns::gemm_tn_f32, ns::dot_f32, ns::axpy_f32,  \
        ns::scale_f32, ns::bf16_to_f32, ns::f16_to_f32, ns::attn_step_f32                      \
  }

constexpr Kernels kScalar = TPP_KERNEL_TABLE(scalar, Isa::scalar);
// avx2's K-quant decode on 8-bit activations, for avx2 and for avx512 (whose
// level includes AVX2; VNNI replaces them).
constexpr Kernels with_avx2_k_int8(Kernels k) {
  k.quantize_q8_k = avx2::quantize_q8_k;
  k.matmul_q4_k_q8k = avx2::matmul_q4_k_q8k;
  k.matmul_q5_k_q8k = avx2::matmul_q5_k_q8k;
  k.matmul_q6_k_q8k = avx2::matmul_q6_k_q8k;
  return k;
}
constexpr Kernels kAvx2 = with_avx2_k_int8(TPP_KERNEL_TABLE(avx2, Isa::avx2));
constexpr Kernels kAvx512 = [] {
  Kernels k = with_avx2_k_int8(TPP_KERNEL_TABLE(avx512, Isa::avx512));
  k.matmul_f32_packed = avx512::matmul_f32_packed;
  k.matmul_f32_packed_xt = avx512::matmul_f32_packed_xt;
  k.pack_f32_group = avx512::pack_f32_group;
  k.max_f32 = avx512::max_f32;
  k.exp_sum_f32 = avx512::exp_sum_f32;
  k.swiglu_f32 = avx512::swiglu_f32;
  k.swiglu_backward_f32 = avx512::swiglu_backward_f32;
  k.adamw_f32 = avx512::adamw_f32;
  k.dequant_q4_k = avx512::dequant_q4_k;
  k.dequant_q5_k = avx512::dequant_q5_k;
  k.dequant_q6_k = avx512::dequant_q6_k;
  k.matmul_q4_k = avx512::matmul_q4_k;
  k.matmul_q5_k = avx512::matmul_q5_k;
  k.matmul_q6_k = avx512::matmul_q6_k;
  k.attn_step_f16 = avx512::attn_step_f16;
  k.attn_step_bf16 = avx512::attn_step_bf16;
  k.attn_step_q8_0 = avx512::attn_step_q8_0;
  return k;
}();
#undef TPP_KERNEL_TABLE
// avx512's kernels plus the int8 ones.
constexpr Kernels kAvx512Vnni = [] {
  Kernels k = kAvx512;
  k.isa = Isa::avx512vnni;
  k.quantize_q8 = avx512vnni::quantize_q8;
  k.matmul_q8_0_packed = avx512vnni::matmul_q8_0_packed;
  k.matmul_q4_0_packed = avx512vnni::matmul_q4_0_packed;
  k.quantize_q8_k = avx512vnni::quantize_q8_k;
  k.matmul_q4_k_q8k = avx512vnni::matmul_q4_k_q8k;
  k.matmul_q5_k_q8k = avx512vnni::matmul_q5_k_q8k;
  k.matmul_q6_k_q8k = avx512vnni::matmul_q6_k_q8k;
  k.matmul_q4_k_packed = avx512vnni::matmul_q4_k_packed;
  k.matmul_q5_k_packed = avx512vnni::matmul_q5_k_packed;
  k.matmul_q6_k_packed = avx512vnni::matmul_q6_k_packed;
  return k;
}();
// avx512vnni's kernels plus the bf16 dot ones.
constexpr Kernels kAvx512Bf16 = [] {
  Kernels k = kAvx512Vnni;
  k.isa = Isa::avx512bf16;
  k.to_bf16 = avx512bf16::to_bf16;
  k.pack_bf16_transposed_f32 = avx512bf16::pack_bf16_transposed_f32;
  k.transpose_bf16_pairs = avx512bf16::transpose_bf16_pairs;
  k.matmul_bf16_packed = avx512bf16::matmul_bf16_packed;
  return k;
}();

// The CPU features the levels may name. __builtin_cpu_supports takes a string
// literal only, hence one lambda per name.
struct CpuFeature {
  std::string_view name;
  bool (*present)();
};
#define TPP_CPU_FEATURE(f) CpuFeature{f, [] { return __builtin_cpu_supports(f) != 0; }}
const CpuFeature kCpuFeatures[] = {
    TPP_CPU_FEATURE("sse3"),         TPP_CPU_FEATURE("ssse3"),         TPP_CPU_FEATURE("sse4.1"),
    TPP_CPU_FEATURE("sse4.2"),       TPP_CPU_FEATURE("popcnt"),        TPP_CPU_FEATURE("avx"),
    TPP_CPU_FEATURE("avx2"),         TPP_CPU_FEATURE("fma"),           TPP_CPU_FEATURE("f16c"),
    TPP_CPU_FEATURE("bmi"),          TPP_CPU_FEATURE("bmi2"),          TPP_CPU_FEATURE("avxvnni"),
    TPP_CPU_FEATURE("avx512f"),      TPP_CPU_FEATURE("avx512bw"),      TPP_CPU_FEATURE("avx512vl"),
    TPP_CPU_FEATURE("avx512dq"),     TPP_CPU_FEATURE("avx512cd"),      TPP_CPU_FEATURE("avx512vnni"),
    TPP_CPU_FEATURE("avx512bf16"),   TPP_CPU_FEATURE("avx512fp16"),    TPP_CPU_FEATURE("avx512ifma"),
    TPP_CPU_FEATURE("avx512vbmi"),   TPP_CPU_FEATURE("avx512vbmi2"),   TPP_CPU_FEATURE("avx512bitalg"),
    TPP_CPU_FEATURE("avx512vpopcntdq"),
};
#undef TPP_CPU_FEATURE

// Each level's requirement: every feature its unit's flags enable, including
// the ones they imply (-mavx2 brings SSE3..SSE4.2, POPCNT and AVX).
constexpr std::string_view kAvx2Features[] = {"sse3", "ssse3", "sse4.1", "sse4.2", "popcnt",
                                              "avx",  "avx2",  "fma",    "f16c"};
constexpr std::string_view kAvx512Features[] = {"sse3", "ssse3", "sse4.1",  "sse4.2",   "popcnt",   "avx",
                                                "avx2", "fma",   "f16c",    "avx512f",  "avx512bw", "avx512vl",
                                                "avx512dq"};
constexpr std::string_view kAvx512VnniFeatures[] = {"sse3",     "ssse3",    "sse4.1",   "sse4.2",  "popcnt",
                                                    "avx",      "avx2",     "fma",      "f16c",    "avx512f",
                                                    "avx512bw", "avx512vl", "avx512dq", "avx512vnni"};
constexpr std::string_view kAvx512Bf16Features[] = {
    "sse3", "ssse3",    "sse4.1",   "sse4.2",   "popcnt",     "avx",       "avx2",
    "fma",  "f16c",     "avx512f",  "avx512bw", "avx512vl",   "avx512dq",  "avx512vnni", "avx512bf16"};

// The levels, scalar first. TPP_FLAGS_<ISA> are the flags CMakeLists.txt
// compiles each unit with. Plain pointers, so the table is initialised at
// compile time, before any static constructor could ask for kernels().
struct Level {
  Isa isa;
  const Kernels* table;
  std::span<const std::string_view> cpu_features;
  const char* compile_flags;
  const char* compiled_features;
};
constexpr Level kLevels[] = {
    {Isa::scalar, &kScalar, {}, "", scalar::compiled_features},
    {Isa::avx2, &kAvx2, kAvx2Features, TPP_FLAGS_AVX2, avx2::compiled_features},
    {Isa::avx512, &kAvx512, kAvx512Features, TPP_FLAGS_AVX512, avx512::compiled_features},
    {Isa::avx512vnni, &kAvx512Vnni, kAvx512VnniFeatures, TPP_FLAGS_AVX512VNNI, avx512vnni::compiled_features},
    {Isa::avx512bf16, &kAvx512Bf16, kAvx512Bf16Features, TPP_FLAGS_AVX512BF16, avx512bf16::compiled_features},
};

const Level& level(Isa isa) {
  for (const auto& l : kLevels)
    if (l.isa == isa) return l;
  fail("kernels: no level for ISA {}", int(isa));
}

bool cpu_has(Isa isa) {
  for (const auto feature : level(isa).cpu_features)
    if (!cpu_supports(feature)) return false;
  return true;
}

const std::vector<Isa>& supported() {
  static const std::vector<Isa> isas = [] {
    std::vector<Isa> out;
    for (const auto& l : kLevels)
      if (cpu_has(l.isa)) out.push_back(l.isa);
    return out;
  }();
  return isas;
}

Isa parse_isa(const std::string& s) {
  for (const auto& l : kLevels)
    if (s == isa_name(l.isa)) {
      if (!cpu_has(l.isa)) fail("TPP_ISA={}: this CPU does not support {}", s, s);
      return l.isa;
    }
  fail("TPP_ISA={}: unknown SIMD path, expected scalar, avx2, avx512, avx512vnni or avx512bf16", s);
}

std::atomic<const Kernels*>& current() {
  static std::atomic<const Kernels*> table{nullptr};
  return table;
}

}  // namespace

std::string_view isa_name(Isa isa) {
  switch (isa) {
    case Isa::scalar: return "scalar";
    case Isa::avx2: return "avx2";
    case Isa::avx512: return "avx512";
    case Isa::avx512vnni: return "avx512vnni";
    case Isa::avx512bf16: return "avx512bf16";
  }
  return "?";
}

const Kernels& kernels_for(Isa isa) {
  if (!cpu_has(isa)) fail("kernels: this CPU does not support {}", isa_name(isa));
  return *level(isa).table;
}

const Kernels& kernels() {
  const Kernels* k = current().load(std::memory_order_acquire);
  if (k) return *k;
  static const Kernels& resolved = [] () -> const Kernels& {
    if (const char* env = std::getenv("TPP_ISA"); env && *env) return kernels_for(parse_isa(env));
    return kernels_for(supported().back());
  }();
  current().store(&resolved, std::memory_order_release);
  return resolved;
}

std::span<const Isa> supported_isas() { return supported(); }

std::span<const IsaLevel> isa_levels() {
  static const std::vector<IsaLevel> levels = [] {
    std::vector<IsaLevel> out;
    for (const auto& l : kLevels) out.push_back({l.isa, l.cpu_features, l.compile_flags, l.compiled_features});
    return out;
  }();
  return levels;
}

bool cpu_supports(std::string_view feature) {
  for (const auto& f : kCpuFeatures)
    if (f.name == feature) return f.present();
  fail("kernels: unknown CPU feature '{}'", feature);
}

void set_isa(Isa isa) { current().store(&kernels_for(isa), std::memory_order_release); }

}  // namespace tpp::kernels
