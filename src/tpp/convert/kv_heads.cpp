#include "tpp/convert/kv_heads.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>

#include <fmt/format.h>

#include "tpp/core/error.h"
#include "tpp/core/rng.h"
#include "tpp/io/atomic_file.h"
#include "tpp/io/gguf.h"
#include "tpp/model/gguf_model.h"
#include "tpp/model/tensor_table.h"

namespace tpp::convert {
namespace {

namespace fs = std::filesystem;

// The storage type of a new K/V matrix: the source's when it is plain, f32
// when the source is block-quantised (its rounding grid belongs to the rows
// it was made for).
DType new_matrix_dtype(DType source) { return is_block_dtype(source) ? DType::f32 : source; }

void store_element(std::byte* dst, DType t, double v) {
  if (t == DType::f32) {
    const float f = float(v);
    std::memcpy(dst, &f, 4);
  } else {
    const uint16_t h = t == DType::bf16 ? f32_to_bf16(float(v)) : f32_to_f16(float(v));
    std::memcpy(dst, &h, 2);
  }
}

// New rows of one head-major tensor: `rows_per_head` rows per head (head_dim
// for matrices, head_dim single elements for a bias seen as [g*k, 1]).
struct HeadRows {
  const MatrixRef* old;
  int g_old, g_new;
  int64_t rows_per_head;
};

std::shared_ptr<std::vector<std::byte>> regroup(const HeadRows& h, DType out, KvInit method, const CounterRng& rng,
                                                double stddev) {
  TPP_CHECK(out == DType::f32 || out == DType::bf16 || out == DType::f16,
            "convert: new K/V heads cannot be stored as {}, expected f32, bf16 or f16", dtype_name(out));
  const MatrixRef& W = *h.old;
  const int64_t cols = W.cols, rows = int64_t(h.g_new) * h.rows_per_head;
  const int m = h.g_old / h.g_new;  // old heads per new head
  auto buf = std::make_shared<std::vector<std::byte>>(size_t(rows * cols * dtype_size(out)));
  std::vector<float> row(static_cast<size_t>(cols));
  std::vector<double> acc(static_cast<size_t>(cols));
  for (int j = 0; j < h.g_new; ++j)
    for (int64_t r = 0; r < h.rows_per_head; ++r) {
      const int64_t dst_row = j * h.rows_per_head + r;
      std::fill(acc.begin(), acc.end(), 0.0);
      if (method == KvInit::random) {
        for (int64_t c = 0; c < cols; ++c) acc[size_t(c)] = stddev * rng.normal(uint64_t(dst_row * cols + c));
      } else {
        const int take = method == KvInit::mean ? m : 1;
        for (int s = 0; s < take; ++s) {
          W.row_f32((int64_t(j) * m + s) * h.rows_per_head + r, row.data());
          for (int64_t c = 0; c < cols; ++c) acc[size_t(c)] += row[size_t(c)];
        }
        for (auto& a : acc) a /= take;
      }
      for (int64_t c = 0; c < cols; ++c)
        store_element(buf->data() + (dst_row * cols + c) * dtype_size(out), out, acc[size_t(c)]);
    }
  return buf;
}

std::vector<int> targets(const ModelConfig& c, const std::vector<int>& kv_heads) {
  TPP_CHECK(kv_heads.size() == 1 || int(kv_heads.size()) == c.n_layers,
            "convert: --kv-heads: got {} values, expected one for every layer or one per layer ({} layers)",
            kv_heads.size(), c.n_layers);
  std::vector<int> g(size_t(c.n_layers));
  for (int l = 0; l < c.n_layers; ++l) {
    const int G = kv_heads.size() == 1 ? kv_heads[0] : kv_heads[size_t(l)];
    const int old = c.kv_heads(l);
    const std::string at = kv_heads.size() == 1 ? "--kv-heads" : fmt::format("--kv-heads[{}]", l);
    TPP_CHECK(G >= 1, "convert: {}: got {}, expected a positive number of KV heads", at, G);
    TPP_CHECK(G <= old,
              "convert: {}: got {}, but layer {} has {} KV heads; conversion merges heads into groups, it cannot "
              "make more (expected a divisor of {})",
              at, G, l, old, old);
    TPP_CHECK(old % G == 0,
              "convert: {}: got {}, which does not divide layer {}'s {} KV heads into equal groups (expected a "
              "divisor of {})",
              at, G, l, old, old);
    g[size_t(l)] = G;
  }
  for (int l = 0; l < c.n_layers; ++l)
    TPP_CHECK(g[size_t(l)] == g[size_t(c.kv_source(l))],
              "convert: --kv-heads[{}]: got {}, but layer {} reuses layer {}'s K/V (cla_share {}), which gets {}; "
              "expected equal values within a group",
              l, g[size_t(l)], l, c.kv_source(l), c.cla_share, g[size_t(c.kv_source(l))]);
  return g;
}

}  // namespace

std::optional<KvInit> parse_kv_init(std::string_view s) {
  if (s == "mean") return KvInit::mean;
  if (s == "first") return KvInit::first;
  if (s == "random") return KvInit::random;
  return std::nullopt;
}

const char* kv_init_name(KvInit m) {
  switch (m) {
    case KvInit::mean: return "mean";
    case KvInit::first: return "first";
    case KvInit::random: return "random";
  }
  return "?";
}

Model convert_kv_heads(const Model& model, const KvHeadsOptions& o) {
  const ModelConfig& c = model.config;
  const std::vector<int> g = targets(c, o.kv_heads);
  Model out = model;  // shares every tensor and the storage behind them
  out.config.n_kv_heads = std::equal(g.begin() + 1, g.end(), g.begin()) ? std::vector<int>{g[0]} : g;
  out.config.validate("converted config");
  const int64_t k = c.head_dim_resolved();
  for (int l = 0; l < c.n_layers; ++l) {
    if (!c.owns_kv(l)) continue;
    TensorSlots& slots = out.weights.layers[size_t(l)];
    for (TensorId id : {TensorId::attn_k, TensorId::attn_v, TensorId::attn_k_b, TensorId::attn_v_b}) {
      const MatrixRef& old = model.weights.layers[size_t(l)][id];
      if (!old.data) continue;
      // Vectors (biases) are stored as [g*k, 1], so both regroup by rows.
      const bool matrix = tensor_row(id).matrix;
      const DType t = matrix ? new_matrix_dtype(old.dtype) : old.dtype;
      const CounterRng rng(o.seed, hash_name(tensor_name(tensor_row(id), NameStyle::tpp, l)));
      auto buf = regroup({&old, c.kv_heads(l), g[size_t(l)], k}, t, o.method, rng, matrix ? 0.02 : 0.0);
      const MatrixRef fresh{t, buf->data(), int64_t(g[size_t(l)]) * k, old.cols};
      out.weight_bytes += fresh.bytes() - old.bytes();
      slots[id] = fresh;
      out.weights.storage.push_back(std::move(buf));
    }
  }
  pack_weights(out);  // the fresh K/V, as loading would
  return out;
}

namespace {

uint32_t ggml_type_id(DType t, const std::string& tensor) {
  const io::GgmlTypeInfo* info = io::ggml_type_of(t);
  if (!info) fail("convert: tensor '{}': no GGUF type for {}", tensor, dtype_name(t));
  return info->id;
}

void copy_tokenizer_files(const std::string& source, const std::string& out) {
  for (const char* name : {"tokenizer.json", "tokenizer_config.json", "generation_config.json"}) {
    const fs::path src = fs::path(source) / name;
    std::error_code ec;
    if (source.empty() || !fs::is_regular_file(src, ec)) continue;
    std::ifstream in(src, std::ios::binary);
    if (!in) fail("{}: cannot read", src.string());
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    io::write_file_atomic((fs::path(out) / name).string(), bytes);
  }
}

void save_gguf(const Model& m, const std::string& source, const std::string& out) {
  const io::GgufFile src = io::GgufFile::open(source);
  const std::string arch = src.get_string("general.architecture").value_or("");
  const std::string kv_key = arch + ".attention.head_count_kv";
  const ModelConfig& c = m.config;
  io::GgufValue kv_value;
  if (c.n_kv_heads.size() == 1) {
    kv_value = io::gguf_u32(uint32_t(c.kv_heads(0)));
  } else {
    std::vector<int32_t> g;
    for (int l = 0; l < c.n_layers; ++l) g.push_back(c.kv_heads(l));
    kv_value = io::gguf_i32s(g);
  }
  std::vector<std::pair<std::string, io::GgufValue>> meta;
  bool had_kv_key = false;
  for (const auto& key : src.keys()) {
    if (key == "general.alignment") continue;  // the writer aligns to its own default
    had_kv_key |= key == kv_key;
    meta.emplace_back(key, key == kv_key ? kv_value : *src.find(key));
  }
  if (!had_kv_key) meta.emplace_back(kv_key, kv_value);  // an MHA file may leave it out (= head_count)
  // The replaced tensors, by GGUF name.
  std::map<std::string, const MatrixRef*> fresh;
  for (int l = 0; l < c.n_layers; ++l)
    for (TensorId id : {TensorId::attn_k, TensorId::attn_v, TensorId::attn_k_b, TensorId::attn_v_b})
      if (const MatrixRef& t = m.weights.layers[size_t(l)][id]; t.data && c.owns_kv(l))
        fresh[tensor_name(tensor_row(id), NameStyle::gguf, l)] = &t;
  std::vector<io::GgufWriteTensor> tensors;
  for (const auto& t : src.tensors()) {
    const auto it = fresh.find(t.name);
    if (it == fresh.end()) {
      tensors.push_back({t.name, t.type, t.shape(), {t.data, size_t(t.nbytes)}});
      continue;
    }
    const MatrixRef& r = *it->second;
    const std::vector<int64_t> shape = t.shape().size() == 1 ? std::vector<int64_t>{r.rows * r.cols}
                                                              : std::vector<int64_t>{r.rows, r.cols};
    tensors.push_back({t.name, ggml_type_id(r.dtype, t.name), shape,
                       {static_cast<const std::byte*>(r.data), size_t(r.bytes())}});
    fresh.erase(it);
  }
  TPP_CHECK(fresh.empty(),
            "convert: {}: tensor '{}' of the converted model is not in the source file (a file that stores K and V "
            "fused, as Phi-3's attn_qkv, cannot be rewritten in place)",
            source, fresh.empty() ? "" : fresh.begin()->first);
  write_gguf(out, meta, tensors);
}

}  // namespace

void save_converted(const Model& converted, const std::string& source, const std::string& out, DType dtype) {
  const bool gguf_source = !source.empty() && is_gguf_file(source);
  const bool gguf_out = fs::path(out).extension() == ".gguf";
  if (gguf_out) {
    TPP_CHECK(gguf_source,
              "convert: --out {}: a GGUF file is written only from a GGUF source (its metadata carries the "
              "tokenizer); give a directory",
              out);
    save_gguf(converted, source, out);
    return;
  }
  if (gguf_source)
    TPP_CHECK(!io::gguf_has_tokenizer(io::GgufFile::open(source)),
              "convert: --out {}: the tokenizer of {} lives in its GGUF metadata, which a tpp directory cannot "
              "hold; give --out FILE.gguf to keep it",
              out, source);
  save_model(converted, out, dtype);
  if (!gguf_source) copy_tokenizer_files(source, out);
}

}  // namespace tpp::convert
