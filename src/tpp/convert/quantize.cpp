#include "tpp/convert/quantize.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <exception>
#include <filesystem>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "tpp/core/error.h"
#include "tpp/core/thread_pool.h"
#include "tpp/io/gguf.h"
#include "tpp/model/gguf_model.h"
#include "tpp/model/model.h"
#include "tpp/quant/quant.h"

namespace tpp::convert {
namespace fs = std::filesystem;

namespace {

struct QuantType {
  std::string_view name;
  DType type;
  KMix mix;
  uint32_t file_type;  // llama.cpp's llama_ftype
};
constexpr std::array kQuantTypes{
    QuantType{"f32", DType::f32, KMix::medium, 0},      QuantType{"f16", DType::f16, KMix::medium, 1},
    QuantType{"bf16", DType::bf16, KMix::medium, 32},   QuantType{"q8_0", DType::q8_0, KMix::medium, 7},
    QuantType{"q4_0", DType::q4_0, KMix::medium, 2},    QuantType{"q4_k_s", DType::q4_k, KMix::small, 14},
    QuantType{"q4_k_m", DType::q4_k, KMix::medium, 15}, QuantType{"q4_k", DType::q4_k, KMix::medium, 15},
    QuantType{"q5_k_s", DType::q5_k, KMix::small, 16},  QuantType{"q5_k_m", DType::q5_k, KMix::medium, 17},
    QuantType{"q5_k", DType::q5_k, KMix::medium, 17},   QuantType{"q6_k", DType::q6_k, KMix::medium, 18},
};

bool is_kquant(DType t) { return t == DType::q4_k || t == DType::q5_k || t == DType::q6_k; }
bool has_mix(DType t) { return t == DType::q4_k || t == DType::q5_k; }

const QuantType* find_type(const QuantizeOptions& o) {
  for (const auto& q : kQuantTypes)
    if (q.type == o.type && (!has_mix(o.type) || q.mix == o.mix)) return &q;
  return nullptr;
}

}  // namespace

std::optional<QuantizeOptions> parse_quantize_type(std::string_view name) {
  for (const auto& q : kQuantTypes)
    if (q.name == name) return QuantizeOptions{q.type, false, q.mix};
  return std::nullopt;
}

std::vector<std::string> quantize_type_names() {
  std::vector<std::string> names;
  for (const auto& q : kQuantTypes) names.emplace_back(q.name);
  return names;
}

uint32_t gguf_file_type(const QuantizeOptions& o) {
  const QuantType* q = find_type(o);
  if (!q) fail("quantize: no GGUF file type for {}, expected one of {}", dtype_name(o.type),
               fmt::join(quantize_type_names(), ", "));
  return q->file_type;
}

uint32_t ggml_type_id(DType t) {
  const io::GgmlTypeInfo* info = io::ggml_type_of(t);
  if (!info) fail("quantize: no GGUF tensor type for {}", dtype_name(t));
  return info->id;
}

namespace {

// One matrix's rows (widened to f32 by `row`, which the pool's threads call
// at once) stored as `t`.
std::vector<std::byte> encode_matrix(int64_t rows, int64_t cols, DType t,
                                     const std::function<void(int64_t, float*)>& row, ThreadPool& pool) {
  const int64_t row_bytes = dtype_bytes(t, cols);
  std::vector<std::byte> out(size_t(rows * row_bytes));
  std::vector<std::exception_ptr> errors(pool.size());
  pool.parallel_for(size_t(rows), 1, [&](size_t begin, size_t end, size_t worker) {
    try {
      std::vector<float> x(static_cast<size_t>(cols));
      for (size_t r = begin; r < end; ++r) {
        row(int64_t(r), x.data());
        std::byte* dst = out.data() + int64_t(r) * row_bytes;
        switch (t) {
          case DType::f32: std::memcpy(dst, x.data(), size_t(cols) * 4); break;
          case DType::f16:
          case DType::bf16:
            for (int64_t c = 0; c < cols; ++c) {
              const uint16_t h = t == DType::bf16 ? f32_to_bf16(x[size_t(c)]) : f32_to_f16(x[size_t(c)]);
              std::memcpy(dst + 2 * c, &h, 2);
            }
            break;
          default: quant::quantize_row(t, x.data(), cols, dst);
        }
      }
    } catch (...) {
      errors[worker] = std::current_exception();
    }
  });
  for (const auto& e : errors)
    if (e) std::rethrow_exception(e);
  return out;
}

// llama.cpp's use_more_bits: the first and last eighth of n, and every third
// one between.
bool more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

bool attn_v_like(const std::string& name) {
  return name.find("attn_v.weight") != std::string::npos || name.find("attn_qkv.weight") != std::string::npos ||
         name.find("attn_kv_b.weight") != std::string::npos;
}
bool ffn_down(const std::string& name) { return name.find("ffn_down") != std::string::npos; }

// The type of each matrix, asked in file (layer) order: the mix rules of
// quantize.h with llama.cpp's running counters, then the row-length fallback.
class TypePlan {
 public:
  TypePlan(const QuantizeOptions& o, const std::vector<std::string>& matrices, int n_layers, std::string output)
      : o_(o), n_layers_(n_layers), output_(std::move(output)) {
    for (const auto& m : matrices) n_attn_v_ += attn_v_like(m);
  }

  DType next(const std::string& name, int64_t cols, QuantizeSummary& s) {
    DType t = o_.type;
    if (!o_.pure) {
      if (name == output_) {
        // q4_0's output matrix in q6_k where its rows allow, else q8_0.
        if (t == DType::q4_0) t = cols % dtype_block(DType::q6_k) == 0 ? DType::q6_k : DType::q8_0;
        else if (is_kquant(t)) t = DType::q6_k;
      } else if (has_mix(t) && attn_v_like(name)) {
        t = bump(t, i_attn_v_ < 4, more_bits(i_attn_v_, n_attn_v_));
        ++i_attn_v_;
      } else if (has_mix(t) && ffn_down(name)) {
        t = bump(t, i_ffn_down_ < n_layers_ / 8, more_bits(i_ffn_down_, n_layers_));
        ++i_ffn_down_;
      }
    }
    if (is_block_dtype(t) && cols % dtype_block(t) != 0) {
      ++s.fallback;
      return is_kquant(t) && cols % dtype_block(DType::q8_0) == 0 ? DType::q8_0 : DType::f16;
    }
    return t;
  }

 private:
  // q4_k_s takes q5_k where `small`; the _m mixes take q6_k where `medium`.
  DType bump(DType t, bool small, bool medium) const {
    if (o_.mix == KMix::medium) return medium ? DType::q6_k : t;
    return small && t == DType::q4_k ? DType::q5_k : t;
  }

  QuantizeOptions o_;
  int n_layers_;
  std::string output_;
  int n_attn_v_ = 0, i_attn_v_ = 0, i_ffn_down_ = 0;
};

struct Pending {
  std::string name;
  uint32_t type;
  std::vector<int64_t> shape;
  std::vector<std::byte> owned;
  std::span<const std::byte> borrowed;
};

void write(const std::string& path, const std::vector<std::pair<std::string, io::GgufValue>>& meta,
           const std::vector<Pending>& tensors) {
  std::vector<io::GgufWriteTensor> list;
  for (const auto& t : tensors)
    list.push_back({t.name, t.type, t.shape, t.owned.empty() ? t.borrowed : std::span<const std::byte>(t.owned)});
  io::write_gguf(path, meta, list);
}

bool is_matrix(const io::GgufTensor& t) { return t.ne.size() == 2 && t.name != "rope_freqs.weight"; }

QuantizeSummary from_gguf(const std::string& source, const std::string& out, const QuantizeOptions& o,
                          const std::function<void(const std::string&, DType)>& progress, ThreadPool& pool) {
  const io::GgufFile f = io::GgufFile::open(source);
  const ModelConfig c = config_from_gguf(f);
  QuantizeSummary s;
  std::vector<std::pair<std::string, io::GgufValue>> meta;
  bool had_type = false;
  for (const auto& key : f.keys()) {
    if (key == "general.alignment") continue;  // the writer aligns to its own default
    if (key == "general.file_type") {
      meta.emplace_back(key, io::gguf_u32(gguf_file_type(o)));
      had_type = true;
      continue;
    }
    meta.emplace_back(key, *f.find(key));
  }
  if (!had_type) meta.emplace_back("general.file_type", io::gguf_u32(gguf_file_type(o)));
  std::vector<std::string> matrices;
  for (const auto& t : f.tensors())
    if (is_matrix(t)) matrices.push_back(t.name);
  TypePlan plan(o, matrices, c.n_layers, c.tie_embeddings ? "token_embd.weight" : "output.weight");
  std::vector<Pending> tensors;
  for (const auto& t : f.tensors()) {
    ++s.tensors;
    s.bytes_in += int64_t(t.nbytes);
    if (!is_matrix(t)) {
      tensors.push_back({t.name, t.type, t.shape(), {}, {t.data, size_t(t.nbytes)}});
      s.bytes_out += int64_t(t.nbytes);
      continue;
    }
    const auto dt = t.info().dtype;
    if (!dt)
      fail("quantize: {}: tensor '{}' is stored as {}, which tpp cannot read yet (expected F32, F16, BF16, Q8_0, "
           "Q4_0, Q4_K, Q5_K or Q6_K)", source, t.name, t.info().name);
    MatrixRef m;
    m.dtype = *dt;
    m.data = t.data;
    m.rows = t.ne[1];
    m.cols = t.ne[0];
    const DType to = plan.next(t.name, m.cols, s);
    if (progress) progress(t.name, to);
    Pending p{t.name, ggml_type_id(to), t.shape(), {}, {}};
    if (to == *dt) {
      p.borrowed = {t.data, size_t(t.nbytes)};
    } else {
      p.owned = encode_matrix(m.rows, m.cols, to, [&](int64_t r, float* x) { m.row_f32(r, x); }, pool);
      ++s.quantized;
    }
    s.elements += m.rows * m.cols;
    const int64_t bytes = int64_t(p.owned.empty() ? p.borrowed.size() : p.owned.size());
    s.bytes_out += bytes;
    s.matrix_bytes_out += bytes;
    tensors.push_back(std::move(p));
  }
  write(out, meta, tensors);
  return s;
}

// GGUF metadata for a config, in llama.cpp's keys for `arch`.
std::vector<std::pair<std::string, io::GgufValue>> metadata_for(const ModelConfig& c, const std::string& arch,
                                                                 const std::string& name, const QuantizeOptions& o) {
  std::vector<std::pair<std::string, io::GgufValue>> m;
  auto key = [&](const char* k) { return arch + "." + k; };
  m.emplace_back("general.architecture", io::gguf_string(arch));
  m.emplace_back("general.name", io::gguf_string(name));
  m.emplace_back("general.file_type", io::gguf_u32(gguf_file_type(o)));
  m.emplace_back(key("context_length"), io::gguf_u32(uint32_t(c.max_seq_len)));
  m.emplace_back(key("embedding_length"), io::gguf_u32(uint32_t(c.d_model)));
  m.emplace_back(key("block_count"), io::gguf_u32(uint32_t(c.n_layers)));
  m.emplace_back(key("feed_forward_length"), io::gguf_u32(uint32_t(c.ffn_width())));
  m.emplace_back(key("attention.head_count"), io::gguf_u32(uint32_t(c.n_heads)));
  if (c.n_kv_heads.size() == 1) {
    m.emplace_back(key("attention.head_count_kv"), io::gguf_u32(uint32_t(c.kv_heads(0))));
  } else {
    std::vector<int32_t> g;
    for (int l = 0; l < c.n_layers; ++l) g.push_back(c.kv_heads(l));
    m.emplace_back(key("attention.head_count_kv"), io::gguf_i32s(g));
  }
  if (c.head_dim_resolved() != c.d_model / c.n_heads) {
    m.emplace_back(key("attention.key_length"), io::gguf_u32(uint32_t(c.head_dim_resolved())));
    m.emplace_back(key("attention.value_length"), io::gguf_u32(uint32_t(c.head_dim_resolved())));
  }
  if (c.rotary_dim_resolved() != c.head_dim_resolved())
    m.emplace_back(key("rope.dimension_count"), io::gguf_u32(uint32_t(c.rotary_dim_resolved())));
  m.emplace_back(key("rope.freq_base"), io::gguf_f32(float(c.rope_theta)));
  m.emplace_back(key("attention.layer_norm_rms_epsilon"), io::gguf_f32(float(c.norm_eps)));
  if (c.sliding_window && *c.sliding_window > 0)
    m.emplace_back(key("attention.sliding_window"), io::gguf_u32(uint32_t(*c.sliding_window)));
  m.emplace_back(key("vocab_size"), io::gguf_u32(uint32_t(c.vocab_size)));
  return m;
}

// The config with every derived size spelled out and switches that do not
// apply cleared, so that two configs that compute the same compare equal.
ModelConfig canonical(ModelConfig c) {
  std::vector<int> g;
  for (int l = 0; l < c.n_layers; ++l) g.push_back(c.kv_heads(l));
  if (std::equal(g.begin() + 1, g.end(), g.begin())) g.resize(1);
  c.n_kv_heads = g;
  c.rotary_dim = c.rotary_dim_resolved() == c.head_dim_resolved() ? -1 : c.rotary_dim_resolved();
  c.head_dim = c.head_dim_resolved();
  c.d_ff = c.ffn_width();
  c.param_match = false;
  c.multiple_of = 1;
  c.attn_scale = c.attn_scale_resolved();
  if (c.norm == NormKind::rmsnorm) c.norm_bias = false;
  // GGUF stores these as f32.
  c.norm_eps = float(c.norm_eps);
  c.rope_theta = float(c.rope_theta);
  c.rope_scaling.factor = float(c.rope_scaling.factor);
  if (!c.sliding_window) c.layer_types.clear();
  return c;
}

// Rows of a Q or K matrix [heads * k, cols] in llama.cpp's llama order: within
// each head, row 2i + a holds the source's row a * k/2 + i (rotate_half pairs
// (i, i + k/2) become adjacent).
int64_t permuted_row(int64_t r, int head_dim) {
  const int64_t head = r / head_dim, j = r % head_dim, half = head_dim / 2;
  return head * head_dim + (j % 2) * half + j / 2;
}

QuantizeSummary from_directory(const std::string& source, const std::string& out, const QuantizeOptions& o,
                               const std::function<void(const std::string&, DType)>& progress, ThreadPool& pool,
                               const GgufTokenizerWriter& tokenizer) {
  const bool has_tokenizer = fs::exists(fs::path(source) / "tokenizer.json");
  TPP_CHECK(!has_tokenizer || tokenizer,
            "quantize: {}: the model has a tokenizer.json, and no tokenizer writer was given to carry it into GGUF "
            "metadata (quantize_model's GgufTokenizerWriter, which the tpp CLI passes)",
            source);
  const Model model = load_model(source);
  const ModelConfig& c = model.config;
  const std::string arch = c.qk_norm ? "qwen3" : "llama";
  const bool permute = arch == "llama" && c.rope_layout == RopeLayout::half && c.rotary_dim_resolved() > 0;
  TPP_CHECK(!permute || c.rotary_dim_resolved() == c.head_dim_resolved(),
            "quantize: {}: 'rotary_dim' {} with rope_layout half has no GGUF llama form (which rotates whole heads "
            "in interleaved pairs), expected rotary_dim = head_dim {}",
            source, c.rotary_dim_resolved(), c.head_dim_resolved());
  TPP_CHECK(c.rope_scaling.type == RopeScalingType::none || c.rope_scaling.type == RopeScalingType::linear,
            "quantize: {}: this rope_scaling type is not written to GGUF yet, expected none or linear", source);
  auto meta = metadata_for(c, arch, fs::path(source).filename().string(), o);
  if (c.rope_scaling.type == RopeScalingType::linear) {
    meta.emplace_back(arch + ".rope.scaling.type", io::gguf_string("linear"));
    meta.emplace_back(arch + ".rope.scaling.factor", io::gguf_f32(float(c.rope_scaling.factor)));
  }
  CarriedTokenizer carried;
  if (has_tokenizer) {
    carried = tokenizer(source, c.vocab_size);
    for (auto& kv : carried.metadata) meta.push_back(std::move(kv));
    carried.metadata.clear();
  }
  QuantizeSummary s;
  std::vector<Pending> tensors;
  const int k = c.head_dim_resolved();
  const auto specs = expected_tensors(c, NameStyle::gguf);
  std::vector<std::string> matrices;
  for (const auto& spec : specs)
    if (spec.row->matrix) matrices.push_back(spec.name);
  TypePlan plan(o, matrices, c.n_layers, c.tie_embeddings ? "token_embd.weight" : "output.weight");
  for (const auto& spec : specs) {
    TPP_CHECK(!spec.name.empty(), "quantize: {}: tensor '{}' has no llama.cpp name", source,
              tensor_name(*spec.row, NameStyle::tpp, spec.layer));
    const MatrixRef& w = model.weights.get(spec.row->id, spec.layer);
    ++s.tensors;
    s.bytes_in += w.bytes();
    const TensorId id = spec.row->id;
    const bool qk = permute && (id == TensorId::attn_q || id == TensorId::attn_k || id == TensorId::attn_q_b ||
                                id == TensorId::attn_k_b);
    auto row = [&](int64_t r, float* x) { w.row_f32(qk ? permuted_row(r, k) : r, x); };
    Pending p{spec.name, 0, spec.shape, {}, {}};
    if (!spec.row->matrix) {
      // Vectors in f32 (a permuted bias is a one-column matrix of rows).
      p.type = 0;
      p.owned.resize(size_t(w.rows * w.cols * 4));
      const int64_t n = w.rows * w.cols;
      const float* v = static_cast<const float*>(w.data);
      for (int64_t i = 0; i < n; ++i) {
        const float x = v[qk ? permuted_row(i, k) : i];
        std::memcpy(p.owned.data() + 4 * i, &x, 4);
      }
    } else {
      const DType to = plan.next(spec.name, w.cols, s);
      if (progress) progress(spec.name, to);
      p.type = ggml_type_id(to);
      p.owned = encode_matrix(w.rows, w.cols, to, row, pool);
      s.elements += w.rows * w.cols;
      s.matrix_bytes_out += int64_t(p.owned.size());
      ++s.quantized;
    }
    s.bytes_out += int64_t(p.owned.size());
    tensors.push_back(std::move(p));
  }
  // Written beside `out`, read back and checked, then moved over `out`.
  const std::string staged = out + ".partial";
  write(staged, meta, tensors);
  try {
    const io::GgufFile back = io::GgufFile::open(staged);
    nlohmann::json want = config_to_json(canonical(c)), got = config_to_json(canonical(config_from_gguf(back)));
    if (permute) want["rope_layout"] = got.value("rope_layout", want["rope_layout"]);
    for (auto it = want.begin(); it != want.end(); ++it) {
      const auto g = got.find(it.key());
      const nlohmann::json gv = g == got.end() ? nlohmann::json() : *g;
      if (gv != it.value())
        fail("quantize: {}: the config's '{}' ({}) has no form in llama.cpp's {} metadata (it would read back as "
             "{}); tpp writes GGUF only for configs that architecture expresses",
             source, it.key(), it.value().dump(), arch, gv.dump());
    }
    if (carried.check) carried.check(back);
  } catch (...) {
    std::error_code ec;
    fs::remove(staged, ec);
    throw;
  }
  std::error_code ec;
  fs::rename(staged, out, ec);
  if (ec) fail("quantize: cannot move {} to {}: {}", staged, out, ec.message());
  return s;
}

}  // namespace

QuantizeSummary quantize_model(const std::string& source, const std::string& out, const QuantizeOptions& o,
                               const std::function<void(const std::string&, DType)>& progress,
                               const GgufTokenizerWriter& tokenizer) {
  TPP_CHECK(find_type(o), "quantize: type {}, expected one of {}", dtype_name(o.type),
            fmt::join(quantize_type_names(), ", "));
  TPP_CHECK(fs::path(out).extension() == ".gguf", "quantize: --out {}: expected a file name ending in .gguf", out);
  TPP_CHECK(fs::absolute(out) != fs::absolute(source), "quantize: --out {} is the source itself", out);
  ThreadPool pool;  // rows are encoded independently, so the bytes do not depend on the thread count
  if (is_gguf_file(source)) return from_gguf(source, out, o, progress, pool);
  return from_directory(source, out, o, progress, pool, tokenizer);
}

}  // namespace tpp::convert
