#include "tpp/model/model.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "tpp/core/error.h"
#include "tpp/core/rng.h"
#include "tpp/io/json_file.h"
#include "tpp/io/mapped_file.h"
#include "tpp/io/gguf.h"
#include "tpp/io/atomic_file.h"
#include "tpp/io/safetensors.h"
#include "tpp/model/gguf_model.h"
#include "tpp/model/hf_config.h"

namespace tpp {
namespace {

using json = nlohmann::json;

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

bool is_matrix(const Slot& slot) {
  return std::holds_alternative<MatrixRef ModelWeights::*>(slot) ||
         std::holds_alternative<MatrixRef LayerWeights::*>(slot);
}

}  // namespace

void place_tensor(ModelWeights& w, const TensorSpec& spec, DType dtype, const std::byte* data) {
  const int64_t numel = spec.shape.empty() ? 1 : [&] {
    int64_t n = 1;
    for (auto s : spec.shape) n *= s;
    return n;
  }();
  std::visit(
      [&](auto member) {
        using T = decltype(member);
        if constexpr (std::is_same_v<T, MatrixRef ModelWeights::*> ||
                      std::is_same_v<T, MatrixRef LayerWeights::*>) {
          MatrixRef m{dtype, data, spec.shape[0], spec.shape.size() > 1 ? spec.shape[1] : 1};
          if constexpr (std::is_same_v<T, MatrixRef ModelWeights::*>) w.*member = m;
          else w.layers[size_t(spec.layer)].*member = m;
        } else {
          TPP_CHECK(!is_block_dtype(dtype), "tensor '{}': a vector cannot be stored as {}", spec.name,
                    dtype_name(dtype));
          std::vector<float> v(static_cast<size_t>(numel));
          for (int64_t i = 0; i < numel; ++i) {
            if (dtype == DType::f32) std::memcpy(&v[size_t(i)], data + 4 * i, 4);
            else {
              uint16_t h;
              std::memcpy(&h, data + 2 * i, 2);
              v[size_t(i)] = dtype == DType::bf16 ? bf16_to_f32(h) : f16_to_f32(h);
            }
          }
          if constexpr (std::is_same_v<T, std::vector<float> ModelWeights::*>) w.*member = std::move(v);
          else w.layers[size_t(spec.layer)].*member = std::move(v);
        }
      },
      spec.row->slot);
}

namespace {

void finish(Model& m) {
  if (m.config.tie_embeddings) m.weights.output = m.weights.tok_embd;
}

// Phi-3 stores q/k/v as one matrix (HF qkv_proj, GGUF attn_qkv) and gate/up as
// one (HF gate_up_proj, GGUF ffn_up): each separate matrix is a range of the
// fused one's rows, borrowed in place (rows are contiguous, whatever the
// dtype). Keyed by the separate tensor's name.
struct FusedRows {
  std::string tensor;  // the fused tensor
  int64_t row0 = 0;    // first row of this part
  std::vector<int64_t> shape;  // the fused tensor's shape
};
std::map<std::string, FusedRows> fused_rows(const ModelConfig& c, NameStyle style) {
  std::map<std::string, FusedRows> out;
  const int64_t d = c.d_model, k = c.head_dim_resolved(), h = c.n_heads, F = c.ffn_width();
  for (int l = 0; l < c.n_layers; ++l) {
    const int64_t g = c.kv_heads(l);
    const std::string hf = "model.layers." + std::to_string(l) + ".", gg = "blk." + std::to_string(l) + ".";
    const bool is_hf = style == NameStyle::hf;
    const std::string qkv = is_hf ? hf + "self_attn.qkv_proj.weight" : gg + "attn_qkv.weight";
    const std::string gate_up = is_hf ? hf + "mlp.gate_up_proj.weight" : gg + "ffn_up.weight";
    const std::vector<int64_t> qkv_shape{(h + 2 * g) * k, d}, gate_up_shape{2 * F, d};
    const char* parts[3][2] = {{"self_attn.q_proj.weight", "attn_q.weight"},
                               {"self_attn.k_proj.weight", "attn_k.weight"},
                               {"self_attn.v_proj.weight", "attn_v.weight"}};
    const int64_t row0[3] = {0, h * k, (h + g) * k};
    for (int i = 0; i < 3; ++i)
      out[is_hf ? hf + parts[i][0] : gg + parts[i][1]] = {qkv, row0[i], qkv_shape};
    out[is_hf ? hf + "mlp.gate_proj.weight" : gg + "ffn_gate.weight"] = {gate_up, 0, gate_up_shape};
    out[is_hf ? hf + "mlp.up_proj.weight" : gg + "ffn_up.weight"] = {gate_up, F, gate_up_shape};
  }
  return out;
}

// HF checkpoints of older transformers versions carry these buffers; they are
// recomputed from the config, never read.
bool ignorable_hf_tensor(const std::string& name) {
  return name.size() > 20 && name.ends_with("rotary_emb.inv_freq");
}

// Kernels read f32 / f16 / bf16 elements in place, so a tensor must start at a
// multiple of its element size; neither safetensors nor a GGUF file with a
// small general.alignment promises that. A misaligned tensor is copied once
// (fused ones are shared by their slices); block formats need no alignment.
const std::byte* element_aligned(ModelWeights& w, std::map<std::string, const std::byte*>& copies,
                                 const std::string& name, DType dtype, const std::byte* data, size_t nbytes) {
  if (is_block_dtype(dtype) || reinterpret_cast<uintptr_t>(data) % uintptr_t(dtype_size(dtype)) == 0) return data;
  auto& copy = copies[name];
  if (!copy) {
    auto bytes = std::make_shared<std::vector<std::byte>>(data, data + nbytes);
    copy = bytes->data();
    w.storage.push_back(std::move(bytes));
  }
  return copy;
}

}  // namespace

int64_t ModelWeights::matrix_bytes_per_token() const {
  int64_t bytes = output.bytes();
  for (const auto& l : layers)
    for (const MatrixRef* m : {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down}) bytes += m->bytes();
  return bytes;
}

Model load_gguf_model(const std::string& path) {
  auto f = std::make_shared<io::GgufFile>(io::GgufFile::open(path));
  Model m;
  m.source = path;
  m.naming = NameStyle::gguf;
  m.config = config_from_gguf(*f);
  m.weights.layers.resize(size_t(m.config.n_layers));
  m.weights.storage.push_back(f);
  const bool fused = f->get_string("general.architecture") == "phi3";
  const auto slices = fused ? fused_rows(m.config, NameStyle::gguf) : std::map<std::string, FusedRows>{};
  std::set<std::string> used;
  std::map<std::string, const std::byte*> copies;
  for (const auto& spec : expected_tensors(m.config, NameStyle::gguf)) {
    if (spec.name.empty())
      fail("{}: the config needs tensor '{}', which llama.cpp's files do not have", path,
           tensor_name(*spec.row, NameStyle::tpp, spec.layer));
    const auto slice = slices.find(spec.name);
    const std::string& stored = slice != slices.end() ? slice->second.tensor : spec.name;
    const std::vector<int64_t>& want = slice != slices.end() ? slice->second.shape : spec.shape;
    const io::GgufTensor* t = f->find_tensor(stored);
    if (!t) fail("{}: missing tensor '{}' (shape {} = {})", path, stored, shape_str(want), spec.row->why);
    const auto& info = t->info();
    const bool matrix = is_matrix(spec.row->slot);
    const bool ok = info.dtype && (*info.dtype == DType::f32 || *info.dtype == DType::f16 ||
                                   *info.dtype == DType::bf16 || (matrix && is_block_dtype(*info.dtype)));
    if (!ok)
      fail("{}: tensor '{}': GGML type {}, expected {}", path, stored, info.name,
           matrix ? "F32, F16, BF16, Q8_0 or Q4_0" : "F32, F16 or BF16");
    if (t->shape() != want)
      fail("{}: tensor '{}': shape {} (ne {} reversed), expected {} ({})", path, stored, shape_str(t->shape()),
           shape_str(t->ne), shape_str(want), spec.row->why);
    const std::byte* data = element_aligned(m.weights, copies, stored, *info.dtype, t->data, size_t(t->nbytes));
    if (slice != slices.end()) data += dtype_bytes(*info.dtype, slice->second.row0 * t->ne[0]);
    place_tensor(m.weights, spec, *info.dtype, data);
    if (used.insert(stored).second) m.weight_bytes += int64_t(t->nbytes);
  }
  for (const auto& t : f->tensors()) {
    if (used.count(t.name)) continue;
    if (t.name == "rope_freqs.weight") continue;  // read into the config's rope_scaling
    fail("{}: unexpected tensor '{}' (shape {}): the {} model it describes does not use it", path, t.name,
         shape_str(t.shape()), f->get_string("general.architecture").value_or("?"));
  }
  finish(m);
  return m;
}

Model load_model(const std::string& dir) {
  namespace fs = std::filesystem;
  if (is_gguf_file(dir)) return load_gguf_model(dir);
  const std::string config_path = (fs::path(dir) / "config.json").string();
  if (!fs::is_directory(dir)) fail("{}: not a model directory (expected config.json and model.safetensors)", dir);
  const json j = io::read_json_file(config_path);
  Model m;
  m.source = dir;
  m.naming = is_hf_config(j) ? NameStyle::hf : NameStyle::tpp;
  m.config = m.naming == NameStyle::hf ? config_from_hf(j, config_path) : config_from_json(j, config_path);

  // One model.safetensors, or shards listed by model.safetensors.index.json.
  const std::string single = (fs::path(dir) / "model.safetensors").string();
  const std::string index_path = (fs::path(dir) / "model.safetensors.index.json").string();
  std::vector<std::shared_ptr<io::SafeTensors>> files;
  std::map<std::string, const io::SafeTensors*> where;  // tensor name -> file
  if (fs::exists(single) || !fs::exists(index_path)) {
    files.push_back(std::make_shared<io::SafeTensors>(io::SafeTensors::open(single)));
  } else {
    const json index = io::read_json_file(index_path);
    if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object())
      fail("{}: key 'weight_map': missing or not an object of tensor name -> shard file", index_path);
    std::map<std::string, std::shared_ptr<io::SafeTensors>> shards;
    for (const auto& [name, file] : index["weight_map"].items()) {
      if (!file.is_string()) fail("{}: weight_map['{}']: expected a file name, got {}", index_path, name, file.dump());
      const std::string shard = file.get<std::string>();
      if (shard.find('/') != std::string::npos || shard == "..")
        fail("{}: weight_map['{}']: shard '{}' must be a file in the model directory", index_path, name, shard);
      auto& st = shards[shard];
      if (!st) {
        st = std::make_shared<io::SafeTensors>(io::SafeTensors::open((fs::path(dir) / shard).string()));
        files.push_back(st);
      }
      if (!st->find(name)) fail("{}: tensor '{}' is listed in {} but absent from it", index_path, name, shard);
      where[name] = st.get();
    }
  }
  for (const auto& f : files) {
    m.weights.storage.push_back(f);
    for (const auto& t : f->tensors())
      if (!where.count(t.name)) where[t.name] = f.get();
  }
  auto file_of = [&](const std::string& name) -> std::string {
    auto it = where.find(name);
    return it != where.end() ? it->second->path() : (files.size() == 1 ? files[0]->path() : index_path);
  };
  m.weights.layers.resize(size_t(m.config.n_layers));

  const bool fused = m.naming == NameStyle::hf && j.value("model_type", "") == "phi3";
  const auto slices = fused ? fused_rows(m.config, NameStyle::hf) : std::map<std::string, FusedRows>{};
  std::set<std::string> used;
  std::map<std::string, const std::byte*> copies;
  for (const auto& spec : expected_tensors(m.config, m.naming)) {
    if (spec.name.empty())
      fail("{}: config needs tensor '{}' which has no {} name", config_path,
           tensor_name(*spec.row, NameStyle::tpp, spec.layer),
           m.naming == NameStyle::hf ? "Hugging Face" : "tpp");
    const auto slice = slices.find(spec.name);
    const std::string& stored = slice != slices.end() ? slice->second.tensor : spec.name;
    const std::vector<int64_t>& want = slice != slices.end() ? slice->second.shape : spec.shape;
    auto it = where.find(stored);
    const io::TensorEntry* t = it == where.end() ? nullptr : it->second->find(stored);
    const std::string st_path = file_of(stored);
    if (!t)
      fail("{}: missing tensor '{}' (shape {} = {}), required by {}", st_path, stored, shape_str(want),
           slice != slices.end() ? "the fused rows of " + spec.name : std::string(spec.row->why), config_path);
    if (t->dtype != DType::f32 && t->dtype != DType::bf16 && t->dtype != DType::f16)
      fail("{}: tensor '{}': dtype {}, expected F32, BF16 or F16", st_path, stored,
           dtype_name(t->dtype));
    if (t->shape != want)
      fail("{}: tensor '{}': shape {}, expected {} ({} from {})", st_path, stored,
           shape_str(t->shape), shape_str(want), spec.row->why, config_path);
    const std::byte* data = element_aligned(m.weights, copies, stored, t->dtype, t->data, size_t(t->nbytes()));
    if (slice != slices.end()) data += dtype_bytes(t->dtype, slice->second.row0 * t->shape[1]);
    place_tensor(m.weights, spec, t->dtype, data);
    if (used.insert(stored).second) m.weight_bytes += int64_t(t->nbytes());
  }
  for (const auto& [name, file] : where) {
    if (used.count(name)) continue;
    if (m.naming == NameStyle::hf && ignorable_hf_tensor(name)) continue;
    fail("{}: unexpected tensor '{}' (shape {}): the config in {} does not use it", file->path(), name,
         shape_str(file->find(name)->shape), config_path);
  }
  finish(m);
  return m;
}

Model init_model(const ModelConfig& config, uint64_t seed, DType dtype, double scale) {
  config.validate();
  TPP_CHECK(dtype == DType::f32 || dtype == DType::bf16 || dtype == DType::f16,
            "init: dtype {} not supported, expected f32, bf16 or f16", dtype_name(dtype));
  Model m;
  m.config = config;
  m.weights.layers.resize(size_t(config.n_layers));
  const double out_std = 0.02 / std::sqrt(2.0 * config.n_layers);
  const double one = config.norm_one_plus && config.norm == NormKind::rmsnorm ? 0.0 : 1.0;
  const bool random_all = scale != 1.0;
  for (const auto& spec : expected_tensors(config, NameStyle::tpp)) {
    int64_t numel = 1;
    for (auto s : spec.shape) numel *= s;
    const DType t = is_matrix(spec.row->slot) ? dtype : DType::f32;
    auto buf = std::make_shared<std::vector<std::byte>>(size_t(numel * dtype_size(t)));
    const CounterRng rng(seed, hash_name(spec.name));
    for (int64_t i = 0; i < numel; ++i) {
      double v = 0;
      switch (spec.row->init) {
        case Init::normal: v = scale * 0.02 * rng.normal(uint64_t(i)); break;
        case Init::normal_out: v = scale * out_std * rng.normal(uint64_t(i)); break;
        case Init::ones: v = one + (random_all ? 0.2 * rng.normal(uint64_t(i)) : 0.0); break;
        case Init::zeros: v = random_all ? 0.2 * rng.normal(uint64_t(i)) : 0.0; break;
      }
      std::byte* p = buf->data() + i * dtype_size(t);
      if (t == DType::f32) {
        const float f = float(v);
        std::memcpy(p, &f, 4);
      } else {
        const uint16_t h = t == DType::bf16 ? f32_to_bf16(float(v)) : f32_to_f16(float(v));
        std::memcpy(p, &h, 2);
      }
    }
    place_tensor(m.weights, spec, t, buf->data());
    m.weight_bytes += int64_t(buf->size());
    m.weights.storage.push_back(std::move(buf));
  }
  finish(m);
  return m;
}

void save_model(const Model& model, const std::string& dir, DType dtype) {
  namespace fs = std::filesystem;
  TPP_CHECK(dtype == DType::f32 || dtype == DType::bf16 || dtype == DType::f16,
            "save: dtype {} not supported, expected f32, bf16 or f16", dtype_name(dtype));
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) fail("{}: cannot create directory: {}", dir, ec.message());
  const auto& w = model.weights;
  std::vector<std::vector<std::byte>> buffers;
  std::vector<io::TensorToWrite> out;
  const auto specs = expected_tensors(model.config, NameStyle::tpp);
  buffers.reserve(specs.size());
  for (const auto& spec : specs) {
    std::vector<std::byte> bytes;
    DType t = DType::f32;
    std::visit(
        [&](auto member) {
          using T = decltype(member);
          if constexpr (std::is_same_v<T, MatrixRef ModelWeights::*> ||
                        std::is_same_v<T, MatrixRef LayerWeights::*>) {
            const MatrixRef* mr;
            if constexpr (std::is_same_v<T, MatrixRef ModelWeights::*>) mr = &(w.*member);
            else mr = &(w.layers[size_t(spec.layer)].*member);
            t = dtype;
            bytes.resize(size_t(mr->rows * mr->cols * dtype_size(t)));
            std::vector<float> row(static_cast<size_t>(mr->cols));
            for (int64_t r = 0; r < mr->rows; ++r) {
              std::byte* dst = bytes.data() + r * mr->cols * dtype_size(t);
              if (mr->dtype == t) {
                std::memcpy(dst, static_cast<const std::byte*>(mr->data) + r * mr->cols * dtype_size(t),
                            size_t(mr->cols * dtype_size(t)));
                continue;
              }
              mr->row_f32(r, row.data());
              for (int64_t c = 0; c < mr->cols; ++c) {
                if (t == DType::f32) std::memcpy(dst + 4 * c, &row[size_t(c)], 4);
                else {
                  const uint16_t h = t == DType::bf16 ? f32_to_bf16(row[size_t(c)]) : f32_to_f16(row[size_t(c)]);
                  std::memcpy(dst + 2 * c, &h, 2);
                }
              }
            }
          } else {
            const std::vector<float>* v;
            if constexpr (std::is_same_v<T, std::vector<float> ModelWeights::*>) v = &(w.*member);
            else v = &(w.layers[size_t(spec.layer)].*member);
            bytes.resize(v->size() * 4);
            std::memcpy(bytes.data(), v->data(), bytes.size());
          }
        },
        spec.row->slot);
    buffers.push_back(std::move(bytes));
    out.push_back({spec.name, t, spec.shape, buffers.back()});
  }
  io::write_safetensors((fs::path(dir) / "model.safetensors").string(), out,
                        {{"format", "tpp"}, {"n_params", std::to_string(model.config.n_params())}});
  io::write_file_atomic((fs::path(dir) / "config.json").string(), config_to_string(model.config));
}

}  // namespace tpp
