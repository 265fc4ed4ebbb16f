// Resolves the kernel table once from CPUID (or TPP_ISA).
#include <array>
#include <atomic>
#include <cstdlib>
#include <string>
#include <vector>

#include "tpp/core/error.h"
#include "tpp/kernels/api.h"
#include "tpp/kernels/scalar/kernels_scalar.h"
#include "tpp/kernels/x86/avx2/kernels_avx2.h"
#include "tpp/kernels/x86/avx512/kernels_avx512.h"

namespace tpp::kernels {
namespace {

#define TPP_KERNEL_TABLE(ns, isa_value)                                                      \
  Kernels {                                                                                  \
    isa_value, ns::matmul_f32, ns::matmul_bf16, ns::matmul_f16, ns::matmul_q8_0, ns::matmul_q4_0,     \
        ns::dequant_q8_0, ns::dequant_q4_0, ns::gemm_nn_f32, ns::gemm_tn_f32, ns::dot_f32, ns::axpy_f32,  \
        ns::scale_f32, ns::bf16_to_f32, ns::f16_to_f32, ns::attn_step_f32                      \
  }

const Kernels kScalar = TPP_KERNEL_TABLE(scalar, Isa::scalar);
const Kernels kAvx2 = TPP_KERNEL_TABLE(avx2, Isa::avx2);
const Kernels kAvx512 = TPP_KERNEL_TABLE(avx512, Isa::avx512);
#undef TPP_KERNEL_TABLE

bool cpu_has(Isa isa) {
  switch (isa) {
    case Isa::scalar:
      return true;
    case Isa::avx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
             __builtin_cpu_supports("f16c");
    case Isa::avx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
             __builtin_cpu_supports("f16c") && __builtin_cpu_supports("fma");
  }
  return false;
}

const std::vector<Isa>& supported() {
  static const std::vector<Isa> isas = [] {
    std::vector<Isa> out;
    for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avx512})
      if (cpu_has(isa)) out.push_back(isa);
    return out;
  }();
  return isas;
}

Isa parse_isa(const std::string& s) {
  for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avx512})
    if (s == isa_name(isa)) {
      if (!cpu_has(isa)) fail("TPP_ISA={}: this CPU does not support {}", s, s);
      return isa;
    }
  fail("TPP_ISA={}: unknown SIMD path, expected scalar, avx2 or avx512", s);
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
  }
  return "?";
}

const Kernels& kernels_for(Isa isa) {
  if (!cpu_has(isa)) fail("kernels: this CPU does not support {}", isa_name(isa));
  switch (isa) {
    case Isa::scalar: return kScalar;
    case Isa::avx2: return kAvx2;
    case Isa::avx512: return kAvx512;
  }
  return kScalar;
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

void set_isa(Isa isa) { current().store(&kernels_for(isa), std::memory_order_release); }

}  // namespace tpp::kernels
