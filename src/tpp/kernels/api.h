// Pointer-level compute kernels, one table of function pointers per ISA.
//
// The table is resolved once from CPUID; TPP_ISA=scalar|avx2|avx512 forces a
// path. A level is chosen only when the CPU has every feature its unit was
// compiled with (isa_levels() below). Every kernel has a scalar version (kernels/scalar/), which is the
// reference in tests; each ISA variant lives in its own translation units
// compiled with that ISA's flags (kernels/x86/<isa>/), in its own namespace,
// and includes no STL or shared inline headers (an inline function compiled
// with AVX-512 flags could otherwise be the copy the linker keeps for all).
//
// Matmul convention (stated once, followed everywhere):
//   y[n, m] = sum_k x[n, k] * W[m, k]     x: [N, K] f32, W: [M, K] stored as HF stores it.
// Kernels compute the output columns m in [m_begin, m_end) for all N rows, so
// callers split M across threads; y has row stride ldy (>= M).
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "tpp/kernels/kquants.h"
#include "tpp/kernels/optim.h"

namespace tpp::kernels {

// Levels in order; each runs on every CPU that has its features (dispatch.cpp)
// and includes every kernel of the level below it.
enum class Isa : uint8_t { scalar, avx2, avx512, avx512vnni, avx512bf16 };

std::string_view isa_name(Isa isa);

// y[n*ldy + m] = sum_k x[n*K + k] * w[m*K + k], for n < N, m_begin <= m < m_end.
using MatmulF32Fn = void (*)(float* y, const float* x, const float* w, int64_t N, int64_t K,
                             int64_t m_begin, int64_t m_end, int64_t ldy);
// Same with 16-bit weights (bf16 or IEEE f16 bit patterns), accumulated in f32.
// Activations stay f32: weights are widened in registers, never converted in memory.
using MatmulU16Fn = void (*)(float* y, const float* x, const uint16_t* w, int64_t N, int64_t K,
                             int64_t m_begin, int64_t m_end, int64_t ldy);
// Same with block-quantised weights (GGML's formats; K a multiple of 32). A row
// of W is K/32 blocks, each an f16 scale d followed by
//   q8_0 (34 bytes): 32 int8 q,                       w = d * q
//   q4_0 (18 bytes): 16 bytes b, element j < 16 = b[j] & 15, element j + 16 =
//                    b[j] >> 4,                        w = d * (nibble - 8)
// Weights are widened in registers; x stays f32 (no activation quantisation).
using MatmulQFn = void (*)(float* y, const float* x, const void* w, int64_t N, int64_t K, int64_t m_begin,
                           int64_t m_end, int64_t ldy);
// dst[0..n) = the n elements (n a multiple of 32) that the blocks at src hold.
using DequantFn = void (*)(float* dst, const void* src, int64_t n);
// "NN" form, for training's backward passes and attention:
//   y[n*ldy + m] (+)= sum_k x[n*ldx + k] * w[k*ldw + m]   for n < N, m_begin <= m < m_end
// w is read row by row along m (broadcast-FMA); accumulate adds into y.
using GemmNnF32Fn = void (*)(float* y, const float* x, const float* w, int64_t N, int64_t K,
                             int64_t m_begin, int64_t m_end, int64_t ldx, int64_t ldw, int64_t ldy,
                             bool accumulate);
// The same with x given transposed ("TN"): element (n, k) of x is x[k*ldx + n].
// Weight gradients dW += dY^T X need no transposed copy of dY.
using GemmTnF32Fn = GemmNnF32Fn;
// sum_i a[i] * b[i]
using DotF32Fn = float (*)(const float* a, const float* b, int64_t n);
// y[i] += alpha * x[i]
using AxpyF32Fn = void (*)(float* y, float alpha, const float* x, int64_t n);
// y[i] *= alpha
using ScaleF32Fn = void (*)(float* y, float alpha, int64_t n);
// dst[i] = widen(src[i])
using WidenU16Fn = void (*)(float* dst, const uint16_t* src, int64_t n);
// One step of the online softmax for G query vectors that share a KV head
// (GQA group) over n keys/values, row p at byte K + p*stride / V + p*stride:
//   s[g,p] = cap(q_g . K_p * scale);  m_g' = max(m_g, max_p s);  c = exp(m_g - m_g')
//   l_g = l_g*c + sum_p exp(s - m_g');  acc_g = acc_g*c + sum_p exp(s - m_g') V_p
// q, acc: [G, k]; m, l: [G]; G <= kAttnMaxGroup; softcap 0 = off.
// attn_step_f32 reads rows of k floats; the KV-cache types are read in
// place, each element widened in registers as it is used:
//   attn_step_f16 / attn_step_bf16: k 16-bit elements
//   attn_step_q8_0: k/32 q8_0 blocks (layout above; k a multiple of 32),
//                   element = f32(d) * q, the value dequant_q8_0 gives
// and give the results attn_step_f32 gives on the widened rows.
inline constexpr int kAttnMaxGroup = 16;
using AttnStepFn = void (*)(float* acc, float* m, float* l, const float* q, int G, int k, const void* K,
                            const void* V, int64_t stride, int64_t n, float scale, float softcap);

// Int8 kernels (the levels with 8-bit dot-product instructions; nullptr in
// the others, whose callers keep the f32-activation kernels above).
//
// Activations are quantised once per matmul, row by row, into 8-bit blocks of
// 32 with Q8_0's semantics and the scale kept in f32:
//   d = max|x_block| / 127,  q = nearbyint(x * (1/d))  (q = 0 when d = 0),
//   s = d * sum(q)           (K a multiple of 32; q: [N, K], d, s: [N, K/32])
using QuantizeQ8Fn = void (*)(int8_t* q, float* d, float* s, const float* x, int64_t N, int64_t K);
// y[n*ldy + m] = sum_b dw[m,b] * (dx[n,b] * sum_i (wq[m,b,i] + off) * q[n,b,i] - off * s[n,b])
//             = sum_b dw[m,b] * dx[n,b] * sum_i wq[m,b,i] * q[n,b,i]
// for n < N, m_begin <= m < m_end, over weights packed by pack_q8_0 / pack_q4_0
// (tpp/kernels/packed.h), whose stored integers wq + off are unsigned (off =
// 128 for q8_0, 8 for q4_0) so that one u8 x s8 dot instruction takes them.
// The integer sums are exact; the f32 sum over blocks runs in block order.
using MatmulPackedFn = void (*)(float* y, const int8_t* q, const float* d, const float* s, const void* w,
                                int64_t N, int64_t K, int64_t m_begin, int64_t m_end, int64_t ldy);
// K-quant matmuls on 8-bit activations (the levels with 8-bit multiplies:
// AVX2's vpmaddubsw / vpmaddwd, VNNI's vpdpbusd; nullptr in scalar). Activations are quantised once per matmul, row by row,
// in super-blocks of 256 (GGML's Q8_K; K a multiple of 256):
//   d = max|x_sb| / 127,  q = nearbyint(x * (1/d))  (q = 0 when d = 0),
//   bsum[j] = the sum of the j-th 16 q   (q: [N, K], d: [N, K/256], bsum: [N, K/16])
using QuantizeQ8KFn = void (*)(int8_t* q, float* d, int16_t* bsum, const float* x, int64_t N, int64_t K);
// y[n*ldy + m] = sum_i w[m, i] * d[n, i/256] * q[n, i]  for n < N, m_begin <= m < m_end,
// w row m of the K-quant blocks at w (layouts in tpp/kernels/kquants.h),
// computed per super-block as GGML's integer form: with the integer weights
// qw, sub-block scales sc and minimums mn,
//   q4_k, q5_k: d_x * (d * sum_j sc_j (qw . q)_j - dmin * sum_j mn_j bsum32_j)
//   q6_k:       d_x * d * sum_j sc_j ((qw . q)_j - 32 bsum16_j)
// the integer sums exact, the f32 sums in the kernel's own order.
using MatmulKQ8Fn = void (*)(float* y, const int8_t* q, const float* d, const int16_t* bsum, const void* w,
                             int64_t N, int64_t K, int64_t m_begin, int64_t m_end, int64_t ldy);
// bf16 dot kernels (the levels with bf16 dot-product instructions; nullptr
// elsewhere). Activations are rounded to bf16 once per matmul (to_bf16: the
// nearest-even rounding of tpp::f32_to_bf16, bit for bit); products of two
// bf16 values are exact in f32, sums are f32:
//   y[n*ldy + m] (+)= sum_k xb[n*K + k] * w[m, k]   for n < N, m_begin <= m < m_end
// over bf16 weights packed by pack_rows (tpp/kernels/packed.h; K even);
// accumulate adds the sum to y (the kernel's partial sums in its own order).
using ToBf16Fn = void (*)(uint16_t* dst, const float* src, int64_t n);
// The bf16 backward's operands, rounded as to_bf16 rounds them, in one pass
// over f32 (nullptr where to_bf16 is):
//   pack_bf16_transposed_f32: pack_bf16_transposed (tpp/kernels/packed.h)
//     of src rounded, groups [g_begin, g_end) of its M columns, K rows ld apart;
//   transpose_bf16_pairs: rows [m_begin, m_end) of src's transpose with
//     consecutive rows of src paired in 32-bit units, for j < ceil(N / 2):
//       dst[(m - m_begin) * ldd + j] = bf16(src[2j, m]) | bf16(src[2j + 1, m]) << 16
//     (the high half 0 when 2j + 1 = N).
using PackBf16TransposedF32Fn = void (*)(void* dst, const float* src, int64_t M, int64_t K, int64_t ld,
                                         int64_t g_begin, int64_t g_end);
using TransposeBf16PairsFn = void (*)(uint32_t* dst, int64_t ldd, const float* src, int64_t ld, int64_t N,
                                      int64_t m_begin, int64_t m_end);
using MatmulBf16PackedFn = void (*)(float* y, const uint16_t* xb, const void* w, int64_t N, int64_t K,
                                    int64_t m_begin, int64_t m_end, int64_t ldy, bool accumulate);

// f32 weights packed by pack_rows (tpp/kernels/packed.h; nullptr at the
// levels without it, which keep matmul_f32):
//   y[n*ldy + m] (+)= sum_k x[n*K + k] * w[m, k]   for n < N, m_begin <= m < m_end,
// each output one FMA chain in k order (starting from y's value when
// accumulating, else from 0), so that it does not depend on N.
using MatmulF32PackedFn = void (*)(float* y, const float* x, const void* w, int64_t N, int64_t K,
                                   int64_t m_begin, int64_t m_end, int64_t ldy, bool accumulate);
// The same with x given transposed: element (n, k) of x is x[k*ldx + n]
// (the weight gradient dW += dY^T X reads dY in place).
using MatmulF32PackedXtFn = void (*)(float* y, const float* x, int64_t ldx, const void* w, int64_t N, int64_t K,
                                     int64_t m_begin, int64_t m_end, int64_t ldy, bool accumulate);

// One 16-row group of f32 weights in the packed layout (tpp/kernels/packed.h):
// dst[16 * k + r] = src[r * K + k] for r < rows (<= 16), 0 for rows <= r < 16.
using PackF32GroupFn = void (*)(float* dst, const float* src, int64_t rows, int64_t K);

// Softmax pieces (the levels with a vector exp; nullptr elsewhere, whose
// callers keep their loops): the largest element, and
//   sum_i exp(x[i] - shift), also written to dst[i] unless dst is null
// (dst may be x), with exp's relative error below 1e-6 and f32 sums.
using MaxF32Fn = float (*)(const float* x, int64_t n);
using ExpSumF32Fn = float (*)(float* dst, const float* x, float shift, int64_t n);

// SwiGLU (the levels with a vector exp; nullptr elsewhere): with
// s = sigmoid(g) = 1 / (1 + exp(-g)),
//   forward:  h[i] = g s u                      (g = gate[i], u = up[i])
//   backward: dgate[i] = dh[i] u s (1 + g (1 - s)),  dup[i] = dh[i] g s
// within 1e-6 relative of float64 (exp's error); dup may be dh.
using SwigluF32Fn = void (*)(float* h, const float* gate, const float* up, int64_t n);
using SwigluBackwardF32Fn = void (*)(float* dgate, float* dup, const float* dh, const float* gate, const float* up,
                                     int64_t n);

// One AdamW update of n parameters, torch.optim.AdamW's operations in its
// order, per element (g = grad[i]):
//   w = p * decay;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g g;
//   p = w - step m / (sqrt(v) inv_sqrt_bc2 + eps)
// (decay = 1 - lr wd for decayed tensors, 1 for the rest; step = lr / (1 -
// b1^t), inv_sqrt_bc2 = 1 / sqrt(1 - b2^t)). nullptr at the levels without
// a vector form, whose caller keeps the scalar loop.
using AdamWF32Fn = void (*)(float* p, const float* grad, float* m, float* v, int64_t n, const AdamWCoeffs& c);

struct Kernels {
  Isa isa;
  MatmulF32Fn matmul_f32;
  MatmulU16Fn matmul_bf16;
  MatmulU16Fn matmul_f16;
  MatmulQFn matmul_q8_0;
  MatmulQFn matmul_q4_0;
  DequantFn dequant_q8_0;
  DequantFn dequant_q4_0;
  GemmNnF32Fn gemm_nn_f32;
  GemmTnF32Fn gemm_tn_f32;
  DotF32Fn dot_f32;
  AxpyF32Fn axpy_f32;
  ScaleF32Fn scale_f32;
  WidenU16Fn bf16_to_f32;
  WidenU16Fn f16_to_f32;
  AttnStepFn attn_step_f32;
  MatmulF32PackedFn matmul_f32_packed = nullptr;
  MatmulF32PackedXtFn matmul_f32_packed_xt = nullptr;
  PackF32GroupFn pack_f32_group = nullptr;
  MaxF32Fn max_f32 = nullptr;
  ExpSumF32Fn exp_sum_f32 = nullptr;
  SwigluF32Fn swiglu_f32 = nullptr;
  SwigluBackwardF32Fn swiglu_backward_f32 = nullptr;
  AdamWF32Fn adamw_f32 = nullptr;
  QuantizeQ8Fn quantize_q8 = nullptr;
  MatmulPackedFn matmul_q8_0_packed = nullptr;
  MatmulPackedFn matmul_q4_0_packed = nullptr;
  ToBf16Fn to_bf16 = nullptr;
  PackBf16TransposedF32Fn pack_bf16_transposed_f32 = nullptr;
  TransposeBf16PairsFn transpose_bf16_pairs = nullptr;
  MatmulBf16PackedFn matmul_bf16_packed = nullptr;
  // K-quant decoders (tpp/kernels/kquants.h): the scalar reference unless the
  // level has its own.
  DequantFn dequant_q4_k = kernels::dequant_q4_k;
  DequantFn dequant_q5_k = kernels::dequant_q5_k;
  DequantFn dequant_q6_k = kernels::dequant_q6_k;
  // K-quant matmuls for decode (N < 4), each weight widened in registers
  // once for all rows of x; nullptr where the level has none (the caller
  // widens a row into a buffer and takes dot products).
  MatmulQFn matmul_q4_k = nullptr;
  MatmulQFn matmul_q5_k = nullptr;
  MatmulQFn matmul_q6_k = nullptr;
  // K-quant matmuls on Q8_K activations (above).
  QuantizeQ8KFn quantize_q8_k = nullptr;
  MatmulKQ8Fn matmul_q4_k_q8k = nullptr;
  MatmulKQ8Fn matmul_q5_k_q8k = nullptr;
  MatmulKQ8Fn matmul_q6_k_q8k = nullptr;
  // The same over weights packed by pack_rows (tpp/kernels/packed.h), each
  // output the scalar definition's bits (prefill and decode).
  MatmulKQ8Fn matmul_q4_k_packed = nullptr;
  MatmulKQ8Fn matmul_q5_k_packed = nullptr;
  MatmulKQ8Fn matmul_q6_k_packed = nullptr;
  // Attention over a 16- or 8-bit KV cache; nullptr where the level has none
  // (the caller widens a tile of rows and runs attn_step_f32).
  AttnStepFn attn_step_f16 = nullptr;
  AttnStepFn attn_step_bf16 = nullptr;
  AttnStepFn attn_step_q8_0 = nullptr;
};

// The table in use: resolved once (thread-safe) from CPUID and TPP_ISA.
const Kernels& kernels();
// The table for one ISA (it must be supported by this CPU).
const Kernels& kernels_for(Isa isa);
// The ISAs this CPU can run, scalar first; for tests instantiated per ISA.
std::span<const Isa> supported_isas();
// Force the table kernels() returns (tests and benchmarks); must be supported.
void set_isa(Isa isa);

// What each ISA level needs and what its unit was built with, stated once
// (dispatch.cpp; the flags come from CMakeLists.txt). A level runs only on a
// CPU that has every one of its cpu_features, so its unit must be compiled
// with no feature outside them: kernels_test checks both the flags and the
// features the unit's compiler actually enabled against the list.
struct IsaLevel {
  Isa isa;
  std::span<const std::string_view> cpu_features;  // __builtin_cpu_supports names, all required
  std::string_view compile_flags;                  // the unit's -m flags, space-separated
  std::string_view compiled_features;              // features its compiler enabled (compiled_features.inc)
};
// Every level built, scalar first.
std::span<const IsaLevel> isa_levels();
// __builtin_cpu_supports(feature) for a feature name the dispatcher knows;
// tpp::Error for any other name.
bool cpu_supports(std::string_view feature);

}  // namespace tpp::kernels
