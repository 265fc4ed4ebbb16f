// Trainable parameters as one flat vector, laid out tensor by tensor in the
// order of the model's tensor table (tpp naming). Parameters, gradients and
// both AdamW moments share one ParamLayout, so the optimizer, clipping and
// checkpoints work on flat arrays and the graph finds each tensor by offset.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "tpp/model/model.h"

namespace tpp::train {

struct ParamEntry {
  std::string name;  // tpp tensor name, e.g. "blk.0.attn_q.weight"
  std::vector<int64_t> shape;
  int64_t offset = 0, size = 0;
  bool matrix = false;     // a 2-D weight (projection or embedding)
  bool embedding = false;  // tok_embd / pos_embd
};

// Offsets of one layer's tensors in the flat vector; -1 where absent.
struct LayerOffsets {
  int64_t attn_norm_w = -1, attn_norm_b = -1, attn_post_norm_w = -1, attn_post_norm_b = -1;
  int64_t ffn_norm_w = -1, ffn_norm_b = -1, ffn_post_norm_w = -1, ffn_post_norm_b = -1;
  int64_t q = -1, k = -1, v = -1, q_b = -1, k_b = -1, v_b = -1, q_norm = -1, k_norm = -1;
  int64_t o = -1, o_b = -1;
  int64_t gate = -1, up = -1, down = -1, gate_b = -1, up_b = -1, down_b = -1;
};

struct ParamLayout {
  std::vector<ParamEntry> entries;
  int64_t total = 0;
  int64_t tok_embd = -1, pos_embd = -1, output_norm_w = -1, output_norm_b = -1;
  int64_t output = -1;  // == tok_embd when tied
  std::vector<LayerOffsets> layers;

  const ParamEntry* find(const std::string& name) const;
};

ParamLayout make_layout(const ModelConfig& config);

// Which entries AdamW decays: matrices, and embeddings only when asked
// (norm weights and biases never).
std::vector<bool> decay_mask(const ParamLayout& layout, bool decay_embeddings);

// A model's weights (any storage dtype) widened into the flat layout.
std::vector<float> params_from_model(const Model& model, const ParamLayout& layout);

// A model whose weights are a copy of `params` (f32), for saving, generation
// and evaluation with the inference engine.
Model model_from_params(const ModelConfig& config, const ParamLayout& layout,
                        std::span<const float> params);

}  // namespace tpp::train
