// Rotary position embedding (RoFormer), with HF's context-extension scalings.
//
// Pair i (i < r/2, r = rotary_dim) is rotated by angle pos * inv_freq[i],
// inv_freq[i] = base^(-2i/r):  (a, b) -> (a cos - b sin, b cos + a sin).
// Layout half (HF rotate_half): pair (x[i], x[i + r/2]);
// layout interleaved (Meta, GPT-J): pair (x[2i], x[2i+1]). Dims >= r pass through.
// Scalings follow transformers' modeling_rope_utils (_compute_*_parameters):
//   linear: inv_freq / factor;  ntk: base * factor^(r/(r-2));
//   dynamic_ntk: base * (factor*L/orig - (factor-1))^(r/(r-2)) once L > orig;
//   llama3: per-wavelength blend; yarn: ramp blend + attention_factor on cos/sin.
#pragma once

#include <cstdint>
#include <vector>

#include "tpp/core/switches.h"
#include "tpp/core/thread_pool.h"

namespace tpp {

struct RopeParams {
  int head_dim = 0;
  int rotary_dim = 0;  // 0 = identity
  RopeLayout layout = RopeLayout::half;
  std::vector<double> inv_freq;  // [rotary_dim / 2]
  double mscale = 1.0;           // multiplies cos and sin (yarn attention_factor)
};

// orig_max: original_max_position_embeddings (already defaulted by the caller);
// seq_len: the sequence length being processed (used by dynamic_ntk only).
RopeParams make_rope(int head_dim, int rotary_dim, RopeLayout layout, double base,
                     const RopeScaling& scaling, int orig_max, int seq_len);

// cos/sin of every pair for each row of a batch, computed once per forward
// and shared by all heads and layers (angles in double, so large positions
// keep full f32 accuracy). Row t of x uses row t of the table, so a batch of
// sequences at different positions (or with different dynamic-NTK bases)
// shares one table.
struct RopeTable {
  int64_t n = 0;
  int half = 0;
  std::vector<float> cos, sin;  // [n, rotary_dim/2]
};
// Sizes the table for n rows of `half` pairs.
void rope_table_resize(RopeTable& table, int64_t n, int half);
// Rows [row0, row0 + n) at positions pos0 .. pos0 + n - 1.
void rope_table_fill(RopeTable& table, int64_t row0, const RopeParams& rope, int64_t pos0, int64_t n);
// Both: a table for positions pos0 .. pos0 + n - 1.
void rope_table(RopeTable& table, const RopeParams& rope, int64_t pos0, int64_t n);

// x: [n, n_heads, head_dim] rotated in place; row t uses table row t.
template <class R>
void rope_forward(R* x, int64_t n, int n_heads, const RopeParams& rope, const RopeTable& table, ThreadPool& pool);
// dx: [n, n_heads, head_dim] in place: the transposed (inverse) rotation.
template <class R>
void rope_backward(R* dx, int64_t n, int n_heads, const RopeParams& rope, const RopeTable& table, ThreadPool& pool);

}  // namespace tpp
