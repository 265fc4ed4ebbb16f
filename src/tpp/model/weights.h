// Model weights, addressed by the ids of the tensor table (tensor_table.h),
// the one description of every tensor a config needs.
//
// Every tensor is a MatrixRef: matrices stay in their storage dtype (usually
// memory-mapped); vectors (norm weights, biases) are f32 copies for inference,
// or views into the flat parameter vector (f32 or f64) during training.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <type_traits>
#include <vector>

#include "tpp/core/error.h"
#include "tpp/ops/linear.h"

namespace tpp::io {
class MappedFile;
}

namespace tpp {

// One id per row of the tensor table, in table order; the per-layer ones
// start at attn_norm.
enum class TensorId : uint8_t {
  tok_embd, pos_embd, output_norm, output_norm_b, output,
  attn_norm, attn_norm_b, attn_q, attn_q_b, attn_k, attn_k_b, attn_v, attn_v_b,
  attn_q_norm, attn_k_norm, attn_output, attn_output_b, attn_post_norm, attn_post_norm_b,
  ffn_norm, ffn_norm_b, ffn_post_norm, ffn_post_norm_b,
  ffn_gate, ffn_gate_b, ffn_up, ffn_up_b, ffn_down, ffn_down_b,
  count
};
inline constexpr size_t kTensorIds = size_t(TensorId::count);
constexpr bool is_per_layer(TensorId id) { return id >= TensorId::attn_norm; }

// The tensors of one layer (or the global ones), indexed by id; absent
// tensors have data == nullptr.
struct TensorSlots {
  std::array<MatrixRef, kTensorIds> t{};
  const MatrixRef& operator[](TensorId id) const { return t[size_t(id)]; }
  MatrixRef& operator[](TensorId id) { return t[size_t(id)]; }
  // A vector tensor's values, nullptr when absent. Its dtype must be R's.
  template <class R>
  const R* vec(TensorId id) const {
    const MatrixRef& m = t[size_t(id)];
    if (!m.data) return nullptr;
    TPP_CHECK(m.dtype == (std::is_same_v<R, double> ? DType::f64 : DType::f32),
              "weights: vector tensor {} stored as {}", int(id), dtype_name(m.dtype));
    return static_cast<const R*>(m.data);
  }
};

struct ModelWeights {
  TensorSlots global;               // tok_embd [V, d], pos_embd, output_norm, output [V, d]
  std::vector<TensorSlots> layers;  // per-layer tensors
  // What keeps the tensors alive: mappings or owned buffers.
  std::vector<std::shared_ptr<const void>> storage;
  // The read-only file mappings among them: pack_weights gives back the
  // pages of a matrix it has copied into the packed layout.
  std::vector<std::shared_ptr<const io::MappedFile>> mappings;

  const MatrixRef& get(TensorId id, int layer) const {
    return is_per_layer(id) ? layers[size_t(layer)][id] : global[id];
  }
  MatrixRef& get(TensorId id, int layer) { return is_per_layer(id) ? layers[size_t(layer)][id] : global[id]; }
  // An f32 vector tensor's values, writable (tests perturb weights).
  std::span<float> mutable_vec(TensorId id, int layer);

  // Bytes of the matrices read per decoded token (the roofline numerator).
  int64_t matrix_bytes_per_token() const;
  // Their elements: one multiply-add each per token (2 ops, the matmul share of a forward).
  int64_t matrix_elements_per_token() const;
};

}  // namespace tpp
