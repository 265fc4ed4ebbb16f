// The one declarative table of model tensors: for each id, its names in tpp,
// Hugging Face and GGUF, Gemma's Hugging Face names for the sandwich norms,
// Phi-3's fused storage, the shape and presence rules and the initialisation.
// Loaders, savers, the initialiser and the training parameter layout all walk
// it, so a missing, unexpected, mis-shaped or wrongly typed tensor is reported
// by name with the layer index substituted.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tpp/model/config.h"
#include "tpp/model/weights.h"

namespace tpp {

enum class NameStyle : uint8_t { tpp, hf, gguf };

enum class Init : uint8_t {
  normal,      // N(0, 0.02)
  normal_out,  // N(0, 0.02 / sqrt(2 n_layers)): projections that write the residual (GPT-2)
  ones,        // norm weights (zeros when norm_one_plus: the scale is 1 + w)
  zeros,       // biases
};

// Phi-3 stores q/k/v as one matrix and gate/up as one: the separate tensor is
// a range of the fused one's rows.
enum class Fused : uint8_t { none, qkv, gate_up };

struct TensorRow {
  TensorId id;
  std::string_view tpp;          // "blk.{L}.attn_q.weight"
  std::string_view hf;           // "model.layers.{L}.self_attn.q_proj.weight"; "" = none
  std::string_view gguf;         // "blk.{L}.attn_q.weight"; "" = llama.cpp has none
  std::string_view hf_sandwich;  // Gemma 2/3's HF name when norms are sandwiched ("" = hf)
  Fused fused;
  bool matrix;  // a 2-D weight (may be block-quantised); else a vector kept in f32
  std::vector<int64_t> (*shape)(const ModelConfig&, int layer);
  bool (*present)(const ModelConfig&, int layer);
  Init init;
  const char* why;  // the shape rule in words, for error messages
};

// Indexed by TensorId.
const std::vector<TensorRow>& tensor_table();
inline const TensorRow& tensor_row(TensorId id) { return tensor_table()[size_t(id)]; }

// The name of a row's tensor for one layer ({L} substituted); "" when the
// style has none.
std::string tensor_name(const TensorRow& row, NameStyle style, int layer, bool sandwich_hf = false);

// Every tensor the config needs, in table order. In HF naming, a sandwich
// config uses Gemma's names for the block norms.
struct TensorSpec {
  const TensorRow* row;
  int layer;  // -1 for global tensors
  std::string name;
  std::vector<int64_t> shape;
};
std::vector<TensorSpec> expected_tensors(const ModelConfig& c, NameStyle style);

// Where a fused-storage tensor lives (Phi-3): the fused tensor's name and
// shape, and the first row of this part.
struct FusedPart {
  std::string tensor;
  std::vector<int64_t> shape;
  int64_t row0 = 0;
};
std::optional<FusedPart> fused_part(const TensorSpec& spec, const ModelConfig& c, NameStyle style);

}  // namespace tpp
