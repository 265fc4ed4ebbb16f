#include "tpp/train/params.h"

#include <cstring>
#include <memory>
#include <type_traits>
#include <variant>

#include "tpp/core/error.h"
#include "tpp/model/tensor_table.h"

namespace tpp::train {
namespace {

bool is_matrix_slot(const Slot& slot) {
  return std::holds_alternative<MatrixRef ModelWeights::*>(slot) ||
         std::holds_alternative<MatrixRef LayerWeights::*>(slot);
}

// Which LayerOffsets field a per-layer tensor name fills.
int64_t* layer_field(LayerOffsets& o, std::string_view suffix) {
  static const std::pair<std::string_view, int64_t LayerOffsets::*> fields[] = {
      {"attn_norm.weight", &LayerOffsets::attn_norm_w},
      {"attn_norm.bias", &LayerOffsets::attn_norm_b},
      {"attn_post_norm.weight", &LayerOffsets::attn_post_norm_w},
      {"attn_post_norm.bias", &LayerOffsets::attn_post_norm_b},
      {"ffn_norm.weight", &LayerOffsets::ffn_norm_w},
      {"ffn_norm.bias", &LayerOffsets::ffn_norm_b},
      {"ffn_post_norm.weight", &LayerOffsets::ffn_post_norm_w},
      {"ffn_post_norm.bias", &LayerOffsets::ffn_post_norm_b},
      {"attn_q.weight", &LayerOffsets::q},
      {"attn_k.weight", &LayerOffsets::k},
      {"attn_v.weight", &LayerOffsets::v},
      {"attn_q.bias", &LayerOffsets::q_b},
      {"attn_k.bias", &LayerOffsets::k_b},
      {"attn_v.bias", &LayerOffsets::v_b},
      {"attn_q_norm.weight", &LayerOffsets::q_norm},
      {"attn_k_norm.weight", &LayerOffsets::k_norm},
      {"attn_output.weight", &LayerOffsets::o},
      {"attn_output.bias", &LayerOffsets::o_b},
      {"ffn_gate.weight", &LayerOffsets::gate},
      {"ffn_up.weight", &LayerOffsets::up},
      {"ffn_down.weight", &LayerOffsets::down},
      {"ffn_gate.bias", &LayerOffsets::gate_b},
      {"ffn_up.bias", &LayerOffsets::up_b},
      {"ffn_down.bias", &LayerOffsets::down_b},
  };
  for (const auto& [name, field] : fields)
    if (name == suffix) return &(o.*field);
  return nullptr;
}

}  // namespace

const ParamEntry* ParamLayout::find(const std::string& name) const {
  for (const auto& e : entries)
    if (e.name == name) return &e;
  return nullptr;
}

ParamLayout make_layout(const ModelConfig& config) {
  ParamLayout L;
  L.layers.resize(size_t(config.n_layers));
  for (const auto& spec : expected_tensors(config, NameStyle::tpp)) {
    ParamEntry e;
    e.name = spec.name;
    e.shape = spec.shape;
    e.size = 1;
    for (auto s : spec.shape) e.size *= s;
    e.offset = L.total;
    e.matrix = is_matrix_slot(spec.row->slot);
    e.embedding = e.name == "tok_embd.weight" || e.name == "pos_embd.weight";
    L.total += e.size;
    if (spec.layer >= 0) {
      const std::string_view name = e.name;
      const auto dot = name.find('.', 4);  // "blk.N.<suffix>"
      int64_t* field = layer_field(L.layers[size_t(spec.layer)], name.substr(dot + 1));
      TPP_CHECK(field != nullptr, "train: no parameter slot for tensor '{}'", e.name);
      *field = e.offset;
    } else if (e.name == "tok_embd.weight") {
      L.tok_embd = e.offset;
    } else if (e.name == "pos_embd.weight") {
      L.pos_embd = e.offset;
    } else if (e.name == "output_norm.weight") {
      L.output_norm_w = e.offset;
    } else if (e.name == "output_norm.bias") {
      L.output_norm_b = e.offset;
    } else if (e.name == "output.weight") {
      L.output = e.offset;
    } else {
      fail("train: no parameter slot for tensor '{}'", e.name);
    }
    L.entries.push_back(std::move(e));
  }
  if (config.tie_embeddings) L.output = L.tok_embd;
  return L;
}

std::vector<bool> decay_mask(const ParamLayout& layout, bool decay_embeddings) {
  std::vector<bool> mask;
  for (const auto& e : layout.entries) mask.push_back(e.matrix && (decay_embeddings || !e.embedding));
  return mask;
}

std::vector<float> params_from_model(const Model& model, const ParamLayout& layout) {
  std::vector<float> out(size_t(layout.total));
  const auto& w = model.weights;
  for (const auto& spec : expected_tensors(model.config, NameStyle::tpp)) {
    const ParamEntry* e = layout.find(spec.name);
    TPP_CHECK(e != nullptr, "train: tensor '{}' is not in the parameter layout", spec.name);
    float* dst = out.data() + e->offset;
    std::visit(
        [&](auto member) {
          using T = decltype(member);
          if constexpr (std::is_same_v<T, MatrixRef ModelWeights::*> ||
                        std::is_same_v<T, MatrixRef LayerWeights::*>) {
            const MatrixRef* m;
            if constexpr (std::is_same_v<T, MatrixRef ModelWeights::*>) m = &(w.*member);
            else m = &(w.layers[size_t(spec.layer)].*member);
            for (int64_t r = 0; r < m->rows; ++r) m->row_f32(r, dst + r * m->cols);
          } else {
            const std::vector<float>* v;
            if constexpr (std::is_same_v<T, std::vector<float> ModelWeights::*>) v = &(w.*member);
            else v = &(w.layers[size_t(spec.layer)].*member);
            TPP_CHECK(int64_t(v->size()) == e->size, "train: tensor '{}' has {} values, expected {}",
                      spec.name, v->size(), e->size);
            std::memcpy(dst, v->data(), v->size() * sizeof(float));
          }
        },
        spec.row->slot);
  }
  return out;
}

Model model_from_params(const ModelConfig& config, const ParamLayout& layout,
                        std::span<const float> params) {
  TPP_CHECK(int64_t(params.size()) == layout.total, "train: {} parameters, the layout has {}",
            params.size(), layout.total);
  Model m;
  m.config = config;
  auto storage = std::make_shared<std::vector<float>>(params.begin(), params.end());
  m.weights.layers.resize(size_t(config.n_layers));
  for (const auto& spec : expected_tensors(config, NameStyle::tpp)) {
    const ParamEntry* e = layout.find(spec.name);
    TPP_CHECK(e != nullptr, "train: tensor '{}' is not in the parameter layout", spec.name);
    place_tensor(m.weights, spec, DType::f32, reinterpret_cast<const std::byte*>(storage->data() + e->offset));
  }
  if (config.tie_embeddings) m.weights.output = m.weights.tok_embd;
  m.weight_bytes = layout.total * 4;
  m.weights.storage.push_back(std::move(storage));
  return m;
}

}  // namespace tpp::train
