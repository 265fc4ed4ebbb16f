#include "tpp/model/model.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <set>

#include <sys/mman.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tpp/core/error.h"
#include "tpp/core/rng.h"
#include "tpp/core/thread_pool.h"
#include "tpp/io/json_file.h"
#include "tpp/io/mapped_file.h"
#include "tpp/io/gguf.h"
#include "tpp/io/atomic_file.h"
#include "tpp/io/safetensors.h"
#include "tpp/kernels/api.h"
#include "tpp/kernels/packed.h"
#include "tpp/model/families.h"
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

}  // namespace

void place_tensor(ModelWeights& w, const TensorSpec& spec, DType dtype, const std::byte* data) {
  int64_t numel = 1;
  for (auto s : spec.shape) numel *= s;
  MatrixRef& slot = w.get(spec.row->id, spec.layer);
  if (spec.row->matrix) {
    slot = MatrixRef{dtype, data, spec.shape[0], spec.shape.size() > 1 ? spec.shape[1] : 1};
    return;
  }
  TPP_CHECK(!is_block_dtype(dtype), "tensor '{}': a vector cannot be stored as {}", spec.name, dtype_name(dtype));
  auto v = std::make_shared<std::vector<float>>(static_cast<size_t>(numel));
  for (int64_t i = 0; i < numel; ++i) {
    if (dtype == DType::f32) {
      std::memcpy(&(*v)[size_t(i)], data + 4 * i, 4);
    } else {
      uint16_t h;
      std::memcpy(&h, data + 2 * i, 2);
      (*v)[size_t(i)] = dtype == DType::bf16 ? bf16_to_f32(h) : f16_to_f32(h);
    }
  }
  slot = MatrixRef{DType::f32, v->data(), numel, 1};
  w.storage.push_back(std::move(v));
}

std::span<float> ModelWeights::mutable_vec(TensorId id, int layer) {
  const MatrixRef& m = get(id, layer);
  TPP_CHECK(m.data && m.dtype == DType::f32, "weights: tensor {} is not an f32 vector", int(id));
  return {static_cast<float*>(const_cast<void*>(m.data)), size_t(m.rows * m.cols)};
}

int64_t ModelWeights::matrix_bytes_per_token() const {
  using enum TensorId;
  int64_t bytes = global[output].bytes();
  for (const auto& l : layers)
    for (TensorId id : {attn_q, attn_k, attn_v, attn_output, ffn_gate, ffn_up, ffn_down}) bytes += l[id].bytes();
  return bytes;
}

int64_t ModelWeights::matrix_elements_per_token() const {
  using enum TensorId;
  int64_t n = global[output].rows * global[output].cols;
  for (const auto& l : layers)
    for (TensorId id : {attn_q, attn_k, attn_v, attn_output, ffn_gate, ffn_up, ffn_down}) n += l[id].rows * l[id].cols;
  return n;
}

namespace {

// One allocation for all of a model's packed copies (a model's size again,
// written once at load): 2 MiB pages where the kernel offers them, since
// first-touch page faults, not the packing, dominated filling 4 KiB pages.
std::shared_ptr<std::byte> packed_arena(size_t bytes) {
  constexpr size_t kHuge = size_t(2) << 20;
  const size_t n = (bytes + kHuge - 1) / kHuge * kHuge;
  void* p = std::aligned_alloc(kHuge, n);
  TPP_CHECK(p, "out of memory: {} bytes for the packed weights", n);
  madvise(p, n, MADV_HUGEPAGE);  // advice only: 4 KiB pages still work
  return {static_cast<std::byte*>(p), [](std::byte* q) { std::free(q); }};
}

}  // namespace

void pack_weights(Model& model) {
  const auto& k = kernels::kernels();
  auto wanted = [&](DType t) {
    switch (t) {
      case DType::f32: return k.matmul_f32_packed != nullptr;
      case DType::bf16: return k.matmul_bf16_packed != nullptr;
      case DType::q4_k: return k.matmul_q4_k_packed != nullptr;
      case DType::q5_k: return k.matmul_q5_k_packed != nullptr;
      case DType::q6_k: return k.matmul_q6_k_packed != nullptr;
      default: return k.quantize_q8 != nullptr;
    }
  };
  ModelWeights& w = model.weights;
  // The embedding table is read by row lookups, from its stored form; it is
  // packed only as the output matrix it is when tied.
  const bool tied = model.config.tie_embeddings;
  std::vector<MatrixRef*> todo{&w.global[tied ? TensorId::tok_embd : TensorId::output]};
  for (auto& layer : w.layers)
    for (auto& m : layer.t) todo.push_back(&m);
  std::erase_if(todo, [&](const MatrixRef* m) {
    return !m->data || m->packed || !kernels::has_packed_layout(m->dtype, m->cols) || !wanted(m->dtype);
  });
  std::vector<size_t> offset;
  size_t total = 0;
  for (const MatrixRef* m : todo) {
    offset.push_back(total);
    total += (size_t(kernels::packed_bytes(m->dtype, m->rows, m->cols)) + 63) / 64 * 64;
  }
  if (todo.empty()) return;
  auto arena = packed_arena(total);
  ThreadPool pool(0);
  for (size_t i = 0; i < todo.size(); ++i) {
    MatrixRef& m = *todo[i];
    const int64_t K = m.cols, groups = (m.rows + kernels::kPackRows - 1) / kernels::kPackRows;
    const size_t row_bytes = size_t(dtype_bytes(m.dtype, K));
    std::byte* dst = arena.get() + offset[i];
    pool.parallel_for(size_t(groups), 8, [&](size_t g0, size_t g1, size_t) {
      const int64_t r0 = int64_t(g0) * kernels::kPackRows, r1 = std::min(int64_t(g1) * kernels::kPackRows, m.rows);
      kernels::pack_rows(m.dtype, dst + kernels::packed_bytes(m.dtype, r0, K),
                         static_cast<const std::byte*>(m.data) + size_t(r0) * row_bytes, r1 - r0, K);
    });
    m.packed = dst;
    // The stored copy is now read only by fallbacks (another ISA forced) and
    // row lookups of a tied embedding; pages come back from the file on demand.
    for (const auto& f : w.mappings)
      if (f->contains(m.data, size_t(m.bytes()))) f->release(m.data, size_t(m.bytes()));
  }
  if (tied) w.global[TensorId::output] = w.global[TensorId::tok_embd];
  w.storage.push_back(std::move(arena));
}

namespace {

void finish(Model& m) {
  m.weights.layers.resize(size_t(m.config.n_layers));
  if (m.config.tie_embeddings) m.weights.global[TensorId::output] = m.weights.global[TensorId::tok_embd];
  pack_weights(m);
}

// One stored tensor of a source (safetensors shards or a GGUF file).
struct Stored {
  std::optional<DType> dtype;  // nullopt: a type tpp cannot compute with
  std::string type_name;       // as the format names it ("dtype bf16", "GGML type Q4_1")
  std::vector<int64_t> shape;
  std::string shape_note;      // how the format stores the shape, for errors ("ne [..] reversed")
  const std::byte* data = nullptr;
  size_t nbytes = 0;
  std::string file;
};

// What the binder needs to know of a source.
struct TensorSource {
  std::map<std::string, Stored> tensors;
  NameStyle style;
  bool fused = false;                  // Phi-3: fused q/k/v and gate/up storage
  bool block_matrices = false;         // matrices may be Q8_0 / Q4_0 / Q4_K / Q5_K / Q6_K
  std::string context;                 // who asks for the tensors ("config.json path")
  std::string missing_in;              // where a missing tensor was looked for
  std::string vector_types, matrix_types;  // the storage types accepted, in words
  std::function<bool(const std::string&)> ignorable;  // stored tensors the model does not bind
  std::function<std::string(const std::string&)> stored_name;  // where a wrapper keeps a tensor (or identity)
  std::string unexpected_reason;       // "the config in X does not use it"
};

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

// The one binder: every tensor the config needs is found (directly or as rows
// of a fused tensor), checked for dtype and shape and placed; then one sweep
// refuses every stored tensor nothing used.
void bind(Model& m, const TensorSource& src) {
  m.weights.layers.resize(size_t(m.config.n_layers));
  std::set<std::string> used;
  std::map<std::string, const std::byte*> copies;
  const char* style_name = src.style == NameStyle::hf ? "Hugging Face" : src.style == NameStyle::gguf ? "GGUF" : "tpp";
  for (const auto& spec : expected_tensors(m.config, src.style)) {
    if (spec.name.empty())
      fail("{}: the config needs tensor '{}', which has no {} name", src.context,
           tensor_name(*spec.row, NameStyle::tpp, spec.layer), style_name);
    const auto part = src.fused ? fused_part(spec, m.config, src.style) : std::nullopt;
    const std::string& plain = part ? part->tensor : spec.name;
    const std::string stored = src.stored_name ? src.stored_name(plain) : plain;
    const std::vector<int64_t>& want = part ? part->shape : spec.shape;
    const auto it = src.tensors.find(stored);
    if (it == src.tensors.end())
      fail("{}: missing tensor '{}' (shape {} = {}), required by {}", src.missing_in, stored, shape_str(want),
           part ? "the fused rows of " + spec.name : std::string(spec.row->why), src.context);
    const Stored& t = it->second;
    const bool matrix = spec.row->matrix;
    const bool ok = t.dtype && (*t.dtype == DType::f32 || *t.dtype == DType::f16 || *t.dtype == DType::bf16 ||
                                (matrix && src.block_matrices && is_block_dtype(*t.dtype)));
    if (!ok)
      fail("{}: tensor '{}': {}, expected {}", t.file, stored, t.type_name,
           matrix ? src.matrix_types : src.vector_types);
    if (t.shape != want)
      fail("{}: tensor '{}': shape {}{}, expected {} ({} from {})", t.file, stored, shape_str(t.shape), t.shape_note,
           shape_str(want), spec.row->why, src.context);
    const std::byte* data = element_aligned(m.weights, copies, stored, *t.dtype, t.data, t.nbytes);
    if (part) data += dtype_bytes(*t.dtype, part->row0 * t.shape[1]);
    place_tensor(m.weights, spec, *t.dtype, data);
    if (used.insert(stored).second) m.weight_bytes += int64_t(t.nbytes);
  }
  for (const auto& [name, t] : src.tensors) {
    if (used.count(name) || (src.ignorable && src.ignorable(name))) continue;
    fail("{}: unexpected tensor '{}' (shape {}): {}", t.file, name, shape_str(t.shape), src.unexpected_reason);
  }
  finish(m);
}

}  // namespace

Model load_gguf_model(const std::string& path) {
  auto f = std::make_shared<io::GgufFile>(io::GgufFile::open(path));
  Model m;
  m.source = path;
  m.naming = NameStyle::gguf;
  m.config = config_from_gguf(*f);
  m.weights.storage.push_back(f);
  m.weights.mappings.push_back(f->mapping());
  TensorSource src;
  src.style = NameStyle::gguf;
  const Family* fam = family_for_gguf_arch(f->get_string("general.architecture").value_or(""));
  src.fused = fam && fam->fused_qkv_gate_up;
  src.block_matrices = true;
  src.context = path;
  src.missing_in = path;
  src.vector_types = "F32, F16 or BF16";
  src.matrix_types = "F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K or Q6_K";
  src.ignorable = [](const std::string& name) { return name == "rope_freqs.weight"; };  // read into rope_scaling
  src.unexpected_reason = fmt::format("the {} model it describes does not use it",
                                      f->get_string("general.architecture").value_or("?"));
  for (const auto& t : f->tensors()) {
    const auto& info = t.info();
    src.tensors[t.name] = {info.dtype, "GGML type " + std::string(info.name), t.shape(), fmt::format(" (ne {} reversed)", shape_str(t.ne)),
                           t.data, size_t(t.nbytes), path};
  }
  bind(m, src);
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
  HfMapping hf;
  if (m.naming == NameStyle::hf) hf = map_hf_config(j, config_path);
  m.config = m.naming == NameStyle::hf ? hf.config : config_from_json(j, config_path);

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
    if (f->mapping()) m.weights.mappings.push_back(f->mapping());
    for (const auto& t : f->tensors())
      if (!where.count(t.name)) where[t.name] = f.get();
  }
  TensorSource src;
  src.style = m.naming;
  src.fused = hf.family && hf.family->fused_qkv_gate_up;
  src.context = config_path;
  src.missing_in = files.size() == 1 ? files[0]->path() : index_path;
  src.vector_types = src.matrix_types = "F32, BF16 or F16";
  // HF checkpoints of older transformers versions carry these buffers; they
  // are recomputed from the config, never read.
  if (m.naming == NameStyle::hf)
    src.ignorable = [towers = hf.other_towers](const std::string& name) {
      for (const auto& t : towers)
        if (name.starts_with(t)) return true;
      return name.size() > 20 && name.ends_with("rotary_emb.inv_freq");
    };
  if (hf.wrapped_language_model) {
    // The original files: language_model.model.layers.*; later exports: model.language_model.layers.*.
    if (where.count("model.language_model.embed_tokens.weight"))
      src.stored_name = [](const std::string& name) {
        return name.starts_with("model.") ? "model.language_model." + name.substr(6) : name;
      };
    else
      src.stored_name = [](const std::string& name) { return "language_model." + name; };
  }
  src.unexpected_reason = fmt::format("the config in {} does not use it", config_path);
  for (const auto& [name, file] : where) {
    const io::TensorEntry* t = file->find(name);
    src.tensors[name] = {t->dtype, "dtype " + std::string(dtype_name(t->dtype)), t->shape, "", t->data,
                         size_t(t->nbytes()), file->path()};
  }
  bind(m, src);
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
    const DType t = spec.row->matrix ? dtype : DType::f32;
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
    const MatrixRef* mr = &w.get(spec.row->id, spec.layer);
    // Matrices in the requested dtype, vectors in f32.
    t = spec.row->matrix ? dtype : DType::f32;
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
        if (t == DType::f32) {
          std::memcpy(dst + 4 * c, &row[size_t(c)], 4);
        } else {
          const uint16_t h = t == DType::bf16 ? f32_to_bf16(row[size_t(c)]) : f32_to_f16(row[size_t(c)]);
          std::memcpy(dst + 2 * c, &h, 2);
        }
      }
    }
    buffers.push_back(std::move(bytes));
    out.push_back({spec.name, t, spec.shape, buffers.back()});
  }
  io::write_safetensors((fs::path(dir) / "model.safetensors").string(), out,
                        {{"format", "tpp"}, {"n_params", std::to_string(model.config.n_params())}});
  io::write_file_atomic((fs::path(dir) / "config.json").string(), config_to_string(model.config));
}

}  // namespace tpp
