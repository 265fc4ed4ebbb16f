// Trainable parameters as one flat vector, laid out tensor by tensor in the
// order of the model's tensor table (tpp naming). Parameters, gradients and
// both AdamW moments share one ParamLayout, so the optimizer, clipping and
// checkpoints work on flat arrays and the graph finds each tensor by offset.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "tpp/model/model.h"

namespace tpp::train {

struct ParamEntry {
  std::string name;  // tpp tensor name, e.g. "blk.0.attn_q.weight"
  TensorId id;
  int layer = -1;
  std::vector<int64_t> shape;
  int64_t offset = 0, size = 0;
  bool matrix = false;     // a 2-D weight (projection or embedding)
  bool embedding = false;  // tok_embd / pos_embd
};

// Offsets indexed by the tensor table's ids; -1 where absent. The output
// matrix is tok_embd's when tied.
struct ParamLayout {
  std::vector<ParamEntry> entries;
  int64_t total = 0;
  std::array<int64_t, kTensorIds> global;
  std::vector<std::array<int64_t, kTensorIds>> layers;

  int64_t offset(TensorId id, int layer) const {
    return is_per_layer(id) ? layers[size_t(layer)][size_t(id)] : global[size_t(id)];
  }
  const ParamEntry* find(const std::string& name) const;
};

ParamLayout make_layout(const ModelConfig& config);

// Which entries AdamW decays: matrices, and embeddings only when asked
// (norm weights and biases never).
std::vector<bool> decay_mask(const ParamLayout& layout, bool decay_embeddings);

// A model's weights (any storage dtype) widened into the flat layout.
std::vector<float> params_from_model(const Model& model, const ParamLayout& layout);

// Weights that view the flat vector `params` (f32 or f64 tensors, borrowed):
// what the shared forward reads during training.
template <class R>
ModelWeights weights_view(const ParamLayout& layout, const R* params);

// A model whose weights are a copy of `params` (f32), for saving, generation
// and evaluation with the inference engine.
Model model_from_params(const ModelConfig& config, const ParamLayout& layout,
                        std::span<const float> params);

}  // namespace tpp::train
