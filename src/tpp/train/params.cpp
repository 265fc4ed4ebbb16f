#include "tpp/train/params.h"

#include <cstring>
#include <memory>
#include <type_traits>

#include "tpp/core/error.h"
#include "tpp/model/tensor_table.h"

namespace tpp::train {

const ParamEntry* ParamLayout::find(const std::string& name) const {
  for (const auto& e : entries)
    if (e.name == name) return &e;
  return nullptr;
}

ParamLayout make_layout(const ModelConfig& config) {
  ParamLayout L;
  L.global.fill(-1);
  L.layers.resize(size_t(config.n_layers));
  for (auto& l : L.layers) l.fill(-1);
  for (const auto& spec : expected_tensors(config, NameStyle::tpp)) {
    ParamEntry e;
    e.name = spec.name;
    e.id = spec.row->id;
    e.layer = spec.layer;
    e.shape = spec.shape;
    e.size = 1;
    for (auto s : spec.shape) e.size *= s;
    e.offset = L.total;
    e.matrix = spec.row->matrix;
    e.embedding = e.id == TensorId::tok_embd || e.id == TensorId::pos_embd;
    L.total += e.size;
    (spec.layer >= 0 ? L.layers[size_t(spec.layer)] : L.global)[size_t(e.id)] = e.offset;
    L.entries.push_back(std::move(e));
  }
  if (config.tie_embeddings) L.global[size_t(TensorId::output)] = L.global[size_t(TensorId::tok_embd)];
  return L;
}

std::vector<bool> decay_mask(const ParamLayout& layout, bool decay_embeddings) {
  std::vector<bool> mask;
  for (const auto& e : layout.entries) mask.push_back(e.matrix && (decay_embeddings || !e.embedding));
  return mask;
}

template <class R>
ModelWeights weights_view(const ParamLayout& layout, const R* params) {
  constexpr DType dt = std::is_same_v<R, double> ? DType::f64 : DType::f32;
  ModelWeights w;
  w.layers.resize(layout.layers.size());
  auto place = [&](const ParamEntry& e) {
    const int64_t rows = e.shape[0], cols = e.shape.size() > 1 ? e.shape[1] : 1;
    w.get(e.id, e.layer) = MatrixRef{dt, params + e.offset, rows, cols};
  };
  for (const auto& e : layout.entries) place(e);
  const int64_t out = layout.global[size_t(TensorId::output)];
  if (out == layout.global[size_t(TensorId::tok_embd)]) w.global[TensorId::output] = w.global[TensorId::tok_embd];
  return w;
}
template ModelWeights weights_view(const ParamLayout&, const float*);
template ModelWeights weights_view(const ParamLayout&, const double*);

std::vector<float> params_from_model(const Model& model, const ParamLayout& layout) {
  std::vector<float> out(size_t(layout.total));
  for (const auto& e : layout.entries) {
    const MatrixRef& m = model.weights.get(e.id, e.layer);
    TPP_CHECK(m.data && m.rows * m.cols == e.size, "train: tensor '{}' has {} values, expected {}", e.name,
              m.rows * m.cols, e.size);
    for (int64_t r = 0; r < m.rows; ++r) m.row_f32(r, out.data() + e.offset + r * m.cols);
  }
  return out;
}

Model model_from_params(const ModelConfig& config, const ParamLayout& layout, std::span<const float> params) {
  TPP_CHECK(int64_t(params.size()) == layout.total, "train: {} parameters, the layout has {}", params.size(),
            layout.total);
  Model m;
  m.config = config;
  auto storage = std::make_shared<std::vector<float>>(params.begin(), params.end());
  m.weights = weights_view(layout, static_cast<const float*>(storage->data()));
  m.weight_bytes = layout.total * 4;
  m.weights.storage.push_back(std::move(storage));
  return m;
}

}  // namespace tpp::train
