// The one declarative table of model tensors: tpp name, Hugging Face (Llama)
// name, shape rule, presence rule, initialisation and where the loaded
// tensor goes. Loaders, savers and the initialiser all walk it, so a missing,
// unexpected, mis-shaped or wrongly typed tensor is reported by name with the
// layer index substituted.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "tpp/model/config.h"
#include "tpp/model/weights.h"

namespace tpp {

// tpp's own names are llama.cpp's GGUF names, except for the embedding
// (gguf: token_embd) and two of the sandwich norms (gguf: post_attention_norm,
// post_ffw_norm).
enum class NameStyle : uint8_t { tpp, hf, gguf };

enum class Init : uint8_t {
  normal,      // N(0, 0.02)
  normal_out,  // N(0, 0.02 / sqrt(2 n_layers)): projections that write the residual (GPT-2)
  ones,        // norm weights (zeros when norm_one_plus: the scale is 1 + w)
  zeros,       // biases
};

using Slot = std::variant<MatrixRef ModelWeights::*, std::vector<float> ModelWeights::*,
                          MatrixRef LayerWeights::*, std::vector<float> LayerWeights::*>;

struct TensorRow {
  std::string_view tpp;  // "blk.{L}.attn_q.weight"
  std::string_view hf;   // "model.layers.{L}.self_attn.q_proj.weight"
  bool per_layer;
  std::vector<int64_t> (*shape)(const ModelConfig&, int layer);
  bool (*present)(const ModelConfig&, int layer);
  Init init;
  Slot slot;
  const char* why;  // the shape rule in words, for error messages
};

const std::vector<TensorRow>& tensor_table();

// The name of a row's tensor for one layer ({L} substituted).
std::string tensor_name(const TensorRow& row, NameStyle style, int layer);

// Every tensor the config needs, in table order. In HF naming, a sandwich
// config uses Gemma's names for the block norms.
struct TensorSpec {
  const TensorRow* row;
  int layer;  // -1 for global tensors
  std::string name;
  std::vector<int64_t> shape;
};
std::vector<TensorSpec> expected_tensors(const ModelConfig& c, NameStyle style);

}  // namespace tpp
