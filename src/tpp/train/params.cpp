#include "tpp/train/params.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <type_traits>

#include "tpp/core/error.h"
#include "tpp/kernels/api.h"
#include "tpp/kernels/packed.h"
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

std::vector<ParamRange> decay_ranges(const ParamLayout& layout, bool decay_embeddings) {
  std::vector<ParamRange> out;
  for (const auto& e : layout.entries) {
    if (!e.matrix || (e.embedding && !decay_embeddings)) continue;
    if (!out.empty() && out.back().end == e.offset) out.back().end = e.offset + e.size;
    else out.push_back({e.offset, e.offset + e.size});
  }
  return out;
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

namespace {

bool tied_output(const ParamLayout& layout) {
  return layout.global[size_t(TensorId::output)] == layout.global[size_t(TensorId::tok_embd)];
}
// Whether a linear layer multiplies by matrix e (the others are read by row lookups).
bool read_by_linear(const ParamEntry& e, bool tied) {
  return e.matrix && e.id != TensorId::pos_embd && (e.id != TensorId::tok_embd || tied);
}
size_t aligned64(int64_t bytes) { return size_t(bytes + 63) / 64 * 64; }

std::unique_ptr<std::byte, void (*)(void*)> aligned_bytes(size_t n, const char* what) {
  std::unique_ptr<std::byte, void (*)(void*)> p(nullptr, std::free);
  if (n == 0) return p;
  p.reset(static_cast<std::byte*>(std::aligned_alloc(64, n)));
  TPP_CHECK(p, "out of memory: {} bytes for the packed {} weights", n, what);
  return p;
}

}  // namespace

PackedF32Weights::PackedF32Weights(const ParamLayout& layout) : layout_(layout), packed_(nullptr, std::free) {
  TPP_CHECK(supported(), "packed f32 weights: this CPU has no packed f32 kernel");
  const bool tied = tied_output(layout);
  size_t n = 0;
  for (const auto& e : layout.entries) {
    if (!read_by_linear(e, tied)) continue;
    matrices_.emplace_back(&e, n);
    n += aligned64(kernels::packed_bytes(DType::f32, e.shape[0], e.shape[1]));
  }
  packed_ = aligned_bytes(n, "f32");
}

bool PackedF32Weights::supported() { return kernels::kernels().matmul_f32_packed != nullptr; }

const ModelWeights& PackedF32Weights::refresh(const float* params, ThreadPool& pool) {
  weights_ = weights_view(layout_, params);
  for (const auto& [entry, offset] : matrices_) {
    const ParamEntry& e = *entry;
    const int64_t rows = e.shape[0], cols = e.shape[1];
    std::byte* dst = packed_.get() + offset;
    const float* src = params + e.offset;
    const int64_t groups = (rows + kernels::kPackRows - 1) / kernels::kPackRows;
    pool.parallel_for(size_t(groups), 1, [&](size_t g0, size_t g1, size_t) {
      const int64_t r0 = int64_t(g0) * kernels::kPackRows, r1 = std::min(int64_t(g1) * kernels::kPackRows, rows);
      kernels::pack_rows(DType::f32, dst + kernels::packed_bytes(DType::f32, r0, cols), src + r0 * cols, r1 - r0, cols);
    });
    weights_.get(e.id, e.layer).packed = dst;
  }
  if (tied_output(layout_)) weights_.global[TensorId::output] = weights_.global[TensorId::tok_embd];
  return weights_;
}

Bf16Weights::Bf16Weights(const ParamLayout& layout) : layout_(layout), packed_(nullptr, std::free) {
  TPP_CHECK(supported(), "bf16 weights: this CPU has no bf16 dot kernels");
  const bool tied = tied_output(layout);
  size_t n_bf16 = 0, n_rounded = 0, n_packed = 0;
  for (const auto& e : layout.entries) {
    if (!e.matrix) continue;
    const int64_t rows = e.shape[0], cols = e.shape[1];
    const bool linear = read_by_linear(e, tied);
    const bool packed = linear && rows % 2 == 0 && cols % 2 == 0;
    Matrix mx{&e, packed, linear && !packed};
    size_t& n = mx.rounded ? n_rounded : n_bf16;
    mx.values = n;
    n += size_t(e.size);
    if (mx.packed) {
      mx.fwd = n_packed;
      n_packed += aligned64(kernels::packed_bytes(DType::bf16, rows, cols));
      mx.bwd = n_packed;
      n_packed += aligned64(kernels::packed_bytes(DType::bf16, cols, rows));
    }
    matrices_.push_back(mx);
  }
  bf16_.resize(n_bf16);
  rounded_.resize(n_rounded);
  packed_ = aligned_bytes(n_packed, "bf16");
}

bool Bf16Weights::supported() {
  const auto& k = kernels::kernels();
  return k.to_bf16 && k.matmul_bf16_packed;
}

const ModelWeights& Bf16Weights::refresh(const float* params, ThreadPool& pool) {
  const auto& k = kernels::kernels();
  weights_ = weights_view(layout_, params);
  for (const Matrix& mx : matrices_) {
    const ParamEntry& e = *mx.entry;
    const int64_t rows = e.shape[0], cols = e.shape[1];
    const float* src = params + e.offset;
    MatrixRef& ref = weights_.get(e.id, e.layer);
    if (mx.rounded) {
      float* dst = rounded_.data() + mx.values;
      pool.parallel_for(size_t(e.size), 4096, [&](size_t i0, size_t i1, size_t) {
        for (size_t i = i0; i < i1; ++i) dst[i] = bf16_to_f32(f32_to_bf16(src[i]));
      });
      ref = MatrixRef{DType::f32, dst, rows, cols};
      continue;
    }
    uint16_t* dst = bf16_.data() + mx.values;
    pool.parallel_for(size_t(e.size), 4096, [&](size_t i0, size_t i1, size_t) {
      k.to_bf16(dst + i0, src + i0, int64_t(i1 - i0));
    });
    ref = MatrixRef{DType::bf16, dst, rows, cols};
    if (!mx.packed) continue;
    std::byte* fwd = packed_.get() + mx.fwd;
    std::byte* bwd = packed_.get() + mx.bwd;
    const int64_t gf = (rows + kernels::kPackRows - 1) / kernels::kPackRows;
    const int64_t gb = (cols + kernels::kPackRows - 1) / kernels::kPackRows;
    pool.parallel_for(size_t(gf + gb), 1, [&](size_t g0, size_t g1, size_t) {
      for (auto g = int64_t(g0); g < int64_t(g1); ++g) {
        if (g < gf) {
          const int64_t r0 = g * kernels::kPackRows, r1 = std::min(rows, r0 + kernels::kPackRows);
          kernels::pack_rows(DType::bf16, fwd + kernels::packed_bytes(DType::bf16, r0, cols), dst + r0 * cols, r1 - r0,
                             cols);
        } else {
          kernels::pack_bf16_transposed(bwd, dst, cols, rows, cols, g - gf, g - gf + 1);
        }
      }
    });
    ref.packed = fwd;
    ref.packed_t = bwd;
  }
  if (tied_output(layout_)) weights_.global[TensorId::output] = weights_.global[TensorId::tok_embd];
  return weights_;
}

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
