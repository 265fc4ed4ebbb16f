// Trainable parameters as one flat vector, laid out tensor by tensor in the
// order of the model's tensor table (tpp naming). Parameters, gradients and
// both AdamW moments share one ParamLayout, so the optimizer, clipping and
// checkpoints work on flat arrays and the graph finds each tensor by offset.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "tpp/core/thread_pool.h"
#include "tpp/model/model.h"
#include "tpp/train/optim.h"

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

// The parameters AdamW decays: matrices, and embeddings only when asked
// (norm weights and biases never), as ranges of the flat vector, adjacent
// tensors merged.
std::vector<ParamRange> decay_ranges(const ParamLayout& layout, bool decay_embeddings);

// A model's weights (any storage dtype) widened into the flat layout.
std::vector<float> params_from_model(const Model& model, const ParamLayout& layout);

// Weights that view the flat vector `params` (f32 or f64 tensors, borrowed):
// what the shared forward reads during training.
template <class R>
ModelWeights weights_view(const ParamLayout& layout, const R* params);

// bf16 compute weights for training on a CPU with bf16 dot kernels: the
// matrices of the f32 master weights rounded to bf16, and those a linear
// layer reads packed both ways (W for the forward, W^T for the input
// gradient), so that every projection and its backward run on bf16 dot
// instructions. Vectors (norms, biases) stay f32 views of the master
// weights; a matrix with no packed layout (an odd dimension) stays an f32
// copy rounded to bf16 values.
class Bf16Weights {
 public:
  explicit Bf16Weights(const ParamLayout& layout);
  // Whether this CPU has the kernels (otherwise callers round in f32).
  static bool supported();
  // The weights for `params` (f32), valid until the next refresh.
  const ModelWeights& refresh(const float* params, ThreadPool& pool);

 private:
  struct Matrix {
    const ParamEntry* entry;
    bool packed;   // read by a linear layer: bf16 with both packed forms
    bool rounded;  // read by a linear layer but not packable: f32 rounded to bf16 values
    // (otherwise read by row lookups only: bf16)
    size_t values = 0, fwd = 0, bwd = 0;  // offsets: into bf16_ or rounded_ (elements), packed_ (bytes)
  };
  const ParamLayout& layout_;
  std::vector<Matrix> matrices_;
  std::vector<uint16_t> bf16_;
  std::vector<float> rounded_;  // matrices without a packed layout
  std::unique_ptr<std::byte, void (*)(void*)> packed_;  // 64-byte aligned
  ModelWeights weights_;
};

// f32 weights whose matrices a linear layer reads are also packed for the
// packed f32 kernel (tpp/kernels/packed.h), as a loaded model's are on a CPU
// that has it: the training forward then multiplies exactly as inference
// does, bit for bit. Vectors and row lookups view the weights themselves.
class PackedF32Weights {
 public:
  explicit PackedF32Weights(const ParamLayout& layout);
  // Whether this CPU has the kernel (otherwise the f32 weights serve as they are).
  static bool supported();
  // The weights for `params`, valid while params is unchanged and until the next refresh.
  const ModelWeights& refresh(const float* params, ThreadPool& pool);

 private:
  const ParamLayout& layout_;
  std::vector<std::pair<const ParamEntry*, size_t>> matrices_;  // with the byte offset of the packed copy
  std::unique_ptr<std::byte, void (*)(void*)> packed_;         // 64-byte aligned
  ModelWeights weights_;
};

// A model whose weights are a copy of `params` (f32), for saving, generation
// and evaluation with the inference engine.
Model model_from_params(const ModelConfig& config, const ParamLayout& layout,
                        std::span<const float> params);

}  // namespace tpp::train
