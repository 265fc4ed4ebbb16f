// Model weights: matrices stay in their storage dtype (usually memory-mapped
// from safetensors); small vectors (norm weights, biases) are f32 copies.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "tpp/ops/linear.h"

namespace tpp {

struct LayerWeights {
  std::vector<float> attn_norm_w, attn_norm_b;            // [d]
  std::vector<float> attn_post_norm_w, attn_post_norm_b;  // [d] sandwich
  std::vector<float> ffn_norm_w, ffn_norm_b;              // [d]
  std::vector<float> ffn_post_norm_w, ffn_post_norm_b;    // [d] sandwich
  MatrixRef q, k, v;                                      // [h*k, d], [g*k, d], [g*k, d]
  std::vector<float> q_b, k_b, v_b;                       // [h*k], [g*k], [g*k]
  std::vector<float> q_norm, k_norm;                      // [k]
  MatrixRef o;                                            // [d, h*k]
  std::vector<float> o_b;                                 // [d]
  MatrixRef gate, up, down;                               // [F, d], [F, d], [d, F]
  std::vector<float> gate_b, up_b, down_b;                // [F], [F], [d]
};

struct ModelWeights {
  MatrixRef tok_embd;                           // [V, d]
  MatrixRef pos_embd;                           // [max_seq_len, d] (learned positions)
  std::vector<float> output_norm_w, output_norm_b;  // [d]
  MatrixRef output;                             // [V, d]; tok_embd when tied
  std::vector<LayerWeights> layers;
  // What keeps the matrices alive: mappings or owned buffers.
  std::vector<std::shared_ptr<const void>> storage;

  // Bytes of the matrices read per decoded token (the roofline numerator).
  int64_t matrix_bytes_per_token() const;
};

}  // namespace tpp
