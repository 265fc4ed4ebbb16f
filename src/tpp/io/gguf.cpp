#include "tpp/io/gguf.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <set>

#include "tpp/core/error.h"
#include "tpp/io/atomic_file.h"

namespace tpp::io {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr int kMaxDims = 4;              // GGML_MAX_DIMS
constexpr uint64_t kDefaultAlignment = 32;
constexpr size_t kMaxQuoted = 120;
constexpr uint64_t kMaxArrayLength = uint64_t(1) << 24;

constexpr std::array kGgmlTypes{
    GgmlTypeInfo{0, "F32", 1, 4, DType::f32},      GgmlTypeInfo{1, "F16", 1, 2, DType::f16},
    GgmlTypeInfo{2, "Q4_0", 32, 18, DType::q4_0},  GgmlTypeInfo{3, "Q4_1", 32, 20, std::nullopt},
    GgmlTypeInfo{6, "Q5_0", 32, 22, std::nullopt}, GgmlTypeInfo{7, "Q5_1", 32, 24, std::nullopt},
    GgmlTypeInfo{8, "Q8_0", 32, 34, DType::q8_0},  GgmlTypeInfo{9, "Q8_1", 32, 36, std::nullopt},
    GgmlTypeInfo{10, "Q2_K", 256, 84, std::nullopt}, GgmlTypeInfo{11, "Q3_K", 256, 110, std::nullopt},
    GgmlTypeInfo{12, "Q4_K", 256, 144, DType::q4_k}, GgmlTypeInfo{13, "Q5_K", 256, 176, DType::q5_k},
    GgmlTypeInfo{14, "Q6_K", 256, 210, DType::q6_k}, GgmlTypeInfo{15, "Q8_K", 256, 292, std::nullopt},
    GgmlTypeInfo{16, "IQ2_XXS", 256, 66, std::nullopt}, GgmlTypeInfo{17, "IQ2_XS", 256, 74, std::nullopt},
    GgmlTypeInfo{18, "IQ3_XXS", 256, 98, std::nullopt}, GgmlTypeInfo{19, "IQ1_S", 256, 50, std::nullopt},
    GgmlTypeInfo{20, "IQ4_NL", 32, 18, std::nullopt},   GgmlTypeInfo{21, "IQ3_S", 256, 110, std::nullopt},
    GgmlTypeInfo{22, "IQ2_S", 256, 82, std::nullopt},   GgmlTypeInfo{23, "IQ4_XS", 256, 136, std::nullopt},
    GgmlTypeInfo{24, "I8", 1, 1, std::nullopt},    GgmlTypeInfo{25, "I16", 1, 2, std::nullopt},
    GgmlTypeInfo{26, "I32", 1, 4, DType::i32},     GgmlTypeInfo{27, "I64", 1, 8, DType::i64},
    GgmlTypeInfo{28, "F64", 1, 8, DType::f64},     GgmlTypeInfo{29, "IQ1_M", 256, 56, std::nullopt},
    GgmlTypeInfo{30, "BF16", 1, 2, DType::bf16},   GgmlTypeInfo{34, "TQ1_0", 256, 54, std::nullopt},
    GgmlTypeInfo{35, "TQ2_0", 256, 66, std::nullopt}, GgmlTypeInfo{39, "MXFP4", 32, 17, std::nullopt},
};

// Bytes of one scalar of a value type (0 for string and array).
int scalar_size(GgufType t) {
  switch (t) {
    case GgufType::u8: case GgufType::i8: case GgufType::boolean: return 1;
    case GgufType::u16: case GgufType::i16: return 2;
    case GgufType::u32: case GgufType::i32: case GgufType::f32: return 4;
    case GgufType::u64: case GgufType::i64: case GgufType::f64: return 8;
    case GgufType::string: case GgufType::array: return 0;
  }
  return 0;
}

bool known_type(uint32_t t) { return t <= uint32_t(GgufType::f64); }

// Untrusted text for an error message: control bytes escaped, long text cut.
std::string quoted(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size() && i < kMaxQuoted; ++i) {
    const auto c = uint8_t(s[i]);
    if (c < 0x20 || c == 0x7f) out += fmt::format("\\x{:02x}", c);
    else out += char(c);
  }
  if (s.size() > kMaxQuoted) out += "...";
  return out;
}

// A bounds-checked little-endian cursor over the file image.
class Reader {
 public:
  // Every `what` names the file and the field ("model.gguf: tensor 'x': offset").
  explicit Reader(std::span<const std::byte> bytes) : bytes_(bytes) {}
  uint64_t pos() const { return pos_; }
  uint64_t left() const { return bytes_.size() - pos_; }

  template <class T>
  T get(std::string_view what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string string(std::string_view what) {
    const auto n = get<uint64_t>(what);
    if (n > left())
      fail("{}: string length {} at offset {} runs past the end of the file ({} bytes left)", what, n, pos_ - 8,
           left());
    std::string s(reinterpret_cast<const char*>(bytes_.data() + pos_), size_t(n));
    pos_ += n;
    return s;
  }
  void need(uint64_t n, std::string_view what) const {
    if (n > left())
      fail("{}: needs {} bytes at offset {}, but the file ends {} bytes later", what, n, pos_, left());
  }

 private:
  std::span<const std::byte> bytes_;
  uint64_t pos_ = 0;
};

GgufValue read_scalar(Reader& r, GgufType t, const std::string& what) {
  GgufValue v;
  v.type = t;
  switch (t) {
    case GgufType::u8: v.u = r.get<uint8_t>(what); break;
    case GgufType::i8: v.i = r.get<int8_t>(what); break;
    case GgufType::u16: v.u = r.get<uint16_t>(what); break;
    case GgufType::i16: v.i = r.get<int16_t>(what); break;
    case GgufType::u32: v.u = r.get<uint32_t>(what); break;
    case GgufType::i32: v.i = r.get<int32_t>(what); break;
    case GgufType::u64: v.u = r.get<uint64_t>(what); break;
    case GgufType::i64: v.i = r.get<int64_t>(what); break;
    case GgufType::f32: v.f = r.get<float>(what); break;
    case GgufType::f64: v.f = r.get<double>(what); break;
    case GgufType::boolean: {
      const auto b = r.get<uint8_t>(what);
      if (b > 1) fail("{}: bool value {}, expected 0 or 1", what, b);
      v.i = b;
      break;
    }
    case GgufType::string: v.s = r.string(what); break;
    case GgufType::array: break;  // handled by the caller
  }
  return v;
}

GgufValue read_value(Reader& r, uint32_t type, const std::string& where) {
  if (!known_type(type)) fail("{}: value type {}, expected 0..12 (a GGUF value type)", where, type);
  const auto t = GgufType(type);
  if (t != GgufType::array) return read_scalar(r, t, where);
  GgufValue v;
  v.type = t;
  const auto elem = r.get<uint32_t>(where + ": array element type");
  if (!known_type(elem)) fail("{}: array element type {}, expected 0..12 (a GGUF value type)", where, elem);
  if (GgufType(elem) == GgufType::array) fail("{}: an array of arrays, which tpp does not read", where);
  v.elem = GgufType(elem);
  const auto n = r.get<uint64_t>(where + ": array length");
  // Each element takes at least its scalar size (strings: the 8-byte length).
  const uint64_t min_bytes = v.elem == GgufType::string ? 8 : uint64_t(scalar_size(v.elem));
  if (n > r.left() / min_bytes)
    fail("{}: array of {} {} elements cannot fit in the {} bytes left in the file", where, n,
         gguf_type_name(v.elem), r.left());
  // Each element is held as a GgufValue; the largest real arrays (vocabularies
  // and merges) hold well under a million.
  if (n > kMaxArrayLength)
    fail("{}: array of {} elements, expected at most {}", where, n, kMaxArrayLength);
  v.items.reserve(size_t(n));
  for (uint64_t i = 0; i < n; ++i) v.items.push_back(read_scalar(r, v.elem, where));
  return v;
}

std::string dims_str(const std::vector<int64_t>& ne) {
  std::string out = "[";
  for (size_t i = 0; i < ne.size(); ++i) out += (i ? ", " : "") + std::to_string(ne[i]);
  return out + "]";
}

}  // namespace

std::string_view gguf_type_name(GgufType t) {
  static constexpr std::array<std::string_view, 13> kNames{"u8",  "i8",     "u16",    "i16",   "u32",
                                                           "i32", "f32",    "bool",   "string", "array",
                                                           "u64", "i64",    "f64"};
  return uint32_t(t) < kNames.size() ? kNames[uint32_t(t)] : "?";
}

bool GgufValue::is_int() const {
  switch (type) {
    case GgufType::u8: case GgufType::i8: case GgufType::u16: case GgufType::i16: case GgufType::u32:
    case GgufType::i32: case GgufType::u64: case GgufType::i64: return true;
    default: return false;
  }
}

const GgmlTypeInfo* ggml_type_info(uint32_t id) {
  for (const auto& t : kGgmlTypes)
    if (t.id == id) return &t;
  return nullptr;
}

const GgmlTypeInfo* ggml_type_of(DType t) {
  for (const auto& info : kGgmlTypes)
    if (info.dtype == t) return &info;
  return nullptr;
}

GgufFile GgufFile::open(const std::string& path) {
  auto file = MappedFile::open(path);
  GgufFile g = parse(file->bytes(), path);
  g.file_ = std::move(file);
  return g;
}

GgufFile GgufFile::parse(std::span<const std::byte> bytes, const std::string& path) {
  GgufFile g;
  g.path_ = path;
  Reader r(bytes);
  if (bytes.size() < 24)
    fail("{}: file is {} bytes, expected at least 24 (a GGUF header: magic, version, counts)", path, bytes.size());
  const auto magic = r.get<uint32_t>(path + ": magic");
  if (magic != kMagic) {
    char m[4];
    std::memcpy(m, &magic, 4);
    fail("{}: magic is \"{}\", expected \"GGUF\" (not a GGUF file)", path, quoted(std::string_view(m, 4)));
  }
  g.version_ = r.get<uint32_t>(path + ": version");
  if (g.version_ == 0x03000000u || g.version_ == 0x02000000u)
    fail("{}: version field reads {:#x}: a big-endian GGUF file, expected little-endian", path, g.version_);
  if (g.version_ != 2 && g.version_ != 3)
    fail("{}: GGUF version {}, expected 2 or 3", path, g.version_);
  const auto n_tensors = r.get<uint64_t>(path + ": tensor count");
  const auto n_kv = r.get<uint64_t>(path + ": metadata count");
  // A key-value pair takes at least 8 + 1 + 4 + 1 bytes, a tensor info 8 + 1 + 4 + 8 + 4 + 8.
  if (n_kv > r.left() / 14) fail("{}: metadata count {} cannot fit in a file of {} bytes", path, n_kv, bytes.size());
  if (n_tensors > r.left() / 33)
    fail("{}: tensor count {} cannot fit in a file of {} bytes", path, n_tensors, bytes.size());

  for (uint64_t i = 0; i < n_kv; ++i) {
    const std::string where_key = fmt::format("{}: metadata entry {}", path, i);
    std::string key = r.string(where_key + ": key");
    if (key.empty()) fail("{}: empty key, expected a name", where_key);
    const std::string where = fmt::format("{}: metadata key '{}'", path, quoted(key));
    const auto type = r.get<uint32_t>(where + ": value type");
    GgufValue v = read_value(r, type, where);
    if (g.kv_.count(key)) fail("{}: given twice, expected unique keys", where);
    g.keys_.push_back(key);
    g.kv_.emplace(std::move(key), std::move(v));
  }
  if (const GgufValue* a = g.find("general.alignment")) {
    if (a->type != GgufType::u32)
      fail("{}: metadata key 'general.alignment': type {}, expected u32", path, gguf_type_name(a->type));
    if (a->u == 0 || (a->u & (a->u - 1)) != 0)
      fail("{}: metadata key 'general.alignment': {}, expected a power of two", path, a->u);
    g.alignment_ = a->u;
  } else {
    g.alignment_ = kDefaultAlignment;
  }

  g.tensors_.reserve(size_t(n_tensors));
  for (uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensor t;
    t.name = r.string(fmt::format("{}: tensor info {}: name", path, i));
    const std::string where = fmt::format("{}: tensor '{}'", path, quoted(t.name));
    if (t.name.empty()) fail("{}: tensor info {}: empty name, expected a name", path, i);
    const auto n_dims = r.get<uint32_t>(where + ": dimension count");
    if (n_dims < 1 || n_dims > kMaxDims) fail("{}: {} dimensions, expected 1 to {}", where, n_dims, kMaxDims);
    uint64_t numel = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const auto ne = r.get<uint64_t>(where + ": dimensions");
      if (ne > uint64_t(std::numeric_limits<int64_t>::max()) || (ne != 0 && numel > uint64_t(INT64_MAX) / ne))
        fail("{}: dimension {} = {} makes the element count overflow", where, d, ne);
      numel *= ne;
      t.ne.push_back(int64_t(ne));
    }
    t.type = r.get<uint32_t>(where + ": type");
    const GgmlTypeInfo* info = ggml_type_info(t.type);
    if (!info) fail("{}: GGML type {}, which tpp does not know", where, t.type);
    if (t.ne[0] % info->block != 0)
      fail("{}: row length ne[0] = {} is not a multiple of {}'s block of {}", where, t.ne[0], info->name,
           info->block);
    const uint64_t blocks = numel / uint64_t(info->block);
    if (blocks > std::numeric_limits<uint64_t>::max() / uint64_t(info->bytes))
      fail("{}: dimensions {} make the byte size overflow", where, dims_str(t.ne));
    t.nbytes = blocks * uint64_t(info->bytes);
    t.offset = r.get<uint64_t>(where + ": offset");
    if (t.offset % g.alignment_ != 0)
      fail("{}: offset {} is not a multiple of the alignment {}", where, t.offset, g.alignment_);
    if (g.index_.count(t.name)) fail("{}: given twice, expected unique tensor names", where);
    g.index_.emplace(t.name, g.tensors_.size());
    g.tensors_.push_back(std::move(t));
  }

  // The data section starts at the next multiple of the alignment.
  const uint64_t data_start = (r.pos() + g.alignment_ - 1) / g.alignment_ * g.alignment_;
  const uint64_t data_size = data_start <= bytes.size() ? bytes.size() - data_start : 0;
  if (!g.tensors_.empty() && data_start > bytes.size())
    fail("{}: the data section would start at offset {}, past the end of the file ({} bytes)", path, data_start,
         bytes.size());
  std::vector<const GgufTensor*> by_offset;
  for (auto& t : g.tensors_) {
    if (t.offset > data_size || t.nbytes > data_size - t.offset)
      fail("{}: tensor '{}': {} {} takes bytes [{}, {}) of the data section, which has {} bytes", path,
           quoted(t.name), t.info().name, dims_str(t.ne), t.offset, t.offset + t.nbytes, data_size);
    t.data = bytes.data() + data_start + t.offset;
    if (t.nbytes > 0) by_offset.push_back(&t);
  }
  std::sort(by_offset.begin(), by_offset.end(),
            [](const GgufTensor* a, const GgufTensor* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const GgufTensor *a = by_offset[i - 1], *b = by_offset[i];
    if (b->offset < a->offset + a->nbytes)
      fail("{}: tensors '{}' (bytes [{}, {})) and '{}' (bytes [{}, {})) overlap, expected disjoint ranges", path,
           quoted(a->name), a->offset, a->offset + a->nbytes, quoted(b->name), b->offset, b->offset + b->nbytes);
  }
  return g;
}

const GgufValue* GgufFile::find(std::string_view key) const {
  auto it = kv_.find(key);
  return it == kv_.end() ? nullptr : &it->second;
}

bool gguf_has_tokenizer(const GgufFile& f) {
  if (!f.find("tokenizer.ggml.model")) return false;
  const auto model = f.get_string("tokenizer.ggml.model");
  return !model || (*model != "no_vocab" && *model != "none");
}

const GgufTensor* GgufFile::find_tensor(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

namespace {

[[noreturn]] void wrong_type(const std::string& path, std::string_view key, const GgufValue& v,
                             std::string_view expected) {
  std::string got(gguf_type_name(v.type));
  if (v.type == GgufType::array) got += fmt::format(" of {}", gguf_type_name(v.elem));
  fail("{}: metadata key '{}': type {}, expected {}", path, key, got, expected);
}

int64_t as_int(const GgufValue& v, const std::string& path, std::string_view key) {
  if (v.type == GgufType::u8 || v.type == GgufType::u16 || v.type == GgufType::u32 || v.type == GgufType::u64) {
    if (v.u > uint64_t(INT64_MAX)) fail("{}: metadata key '{}': {} is too large", path, key, v.u);
    return int64_t(v.u);
  }
  if (v.is_int()) return v.i;
  wrong_type(path, key, v, "an integer");
}

}  // namespace

std::optional<int64_t> GgufFile::get_int(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  return as_int(*v, path_, key);
}

std::optional<double> GgufFile::get_float(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (v->is_float()) return v->f;
  if (v->is_int()) return double(as_int(*v, path_, key));
  wrong_type(path_, key, *v, "a number");
}

std::optional<bool> GgufFile::get_bool(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (v->type != GgufType::boolean) wrong_type(path_, key, *v, "bool");
  return v->i != 0;
}

std::optional<std::string> GgufFile::get_string(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (v->type != GgufType::string) wrong_type(path_, key, *v, "string");
  return v->s;
}

std::optional<std::vector<std::string>> GgufFile::get_strings(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (v->type != GgufType::array || v->elem != GgufType::string) wrong_type(path_, key, *v, "array of string");
  std::vector<std::string> out;
  out.reserve(v->items.size());
  for (const auto& item : v->items) out.push_back(item.s);
  return out;
}

std::optional<std::vector<double>> GgufFile::get_floats(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (v->type != GgufType::array || v->elem == GgufType::string || v->elem == GgufType::boolean)
    wrong_type(path_, key, *v, "array of numbers");
  std::vector<double> out;
  out.reserve(v->items.size());
  for (const auto& item : v->items) out.push_back(item.is_float() ? item.f : double(as_int(item, path_, key)));
  return out;
}

std::optional<std::vector<int64_t>> GgufFile::get_ints(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  GgufValue elem;
  elem.type = v->elem;
  if (v->type != GgufType::array || !elem.is_int()) wrong_type(path_, key, *v, "array of integers");
  std::vector<int64_t> out;
  out.reserve(v->items.size());
  for (const auto& item : v->items) out.push_back(as_int(item, path_, key));
  return out;
}

// ---- writing ----

namespace {

template <class T>
void put(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof(T));
}
void put_string(std::string& out, const std::string& s) {
  put<uint64_t>(out, s.size());
  out += s;
}
void put_scalar(std::string& out, const GgufValue& v) {
  switch (v.type) {
    case GgufType::u8: put<uint8_t>(out, uint8_t(v.u)); break;
    case GgufType::i8: put<int8_t>(out, int8_t(v.i)); break;
    case GgufType::u16: put<uint16_t>(out, uint16_t(v.u)); break;
    case GgufType::i16: put<int16_t>(out, int16_t(v.i)); break;
    case GgufType::u32: put<uint32_t>(out, uint32_t(v.u)); break;
    case GgufType::i32: put<int32_t>(out, int32_t(v.i)); break;
    case GgufType::u64: put<uint64_t>(out, v.u); break;
    case GgufType::i64: put<int64_t>(out, v.i); break;
    case GgufType::f32: put<float>(out, float(v.f)); break;
    case GgufType::f64: put<double>(out, v.f); break;
    case GgufType::boolean: put<uint8_t>(out, uint8_t(v.i != 0)); break;
    case GgufType::string: put_string(out, v.s); break;
    case GgufType::array: fail("gguf: nested arrays cannot be written");
  }
}

}  // namespace

void write_gguf(const std::string& path, const std::vector<std::pair<std::string, GgufValue>>& metadata,
                const std::vector<GgufWriteTensor>& tensors) {
  std::string head;
  put<uint32_t>(head, kMagic);
  put<uint32_t>(head, 3);
  put<uint64_t>(head, tensors.size());
  put<uint64_t>(head, metadata.size());
  std::set<std::string> keys;
  uint64_t align = kDefaultAlignment;
  for (const auto& [key, v] : metadata) {
    if (!keys.insert(key).second) fail("{}: metadata key '{}' given twice", path, key);
    if (key == "general.alignment") {
      if (v.type != GgufType::u32 || v.u == 0 || (v.u & (v.u - 1)) != 0)
        fail("{}: metadata key 'general.alignment': expected a u32 power of two", path);
      align = v.u;
    }
    put_string(head, key);
    put<uint32_t>(head, uint32_t(v.type));
    if (v.type != GgufType::array) {
      put_scalar(head, v);
      continue;
    }
    if (v.elem == GgufType::array) fail("{}: metadata key '{}': an array of arrays, expected scalars", path, key);
    put<uint32_t>(head, uint32_t(v.elem));
    put<uint64_t>(head, v.items.size());
    for (const auto& item : v.items) {
      if (item.type != v.elem)
        fail("{}: metadata key '{}': an item of type {} in an array of {}", path, key, gguf_type_name(item.type),
             gguf_type_name(v.elem));
      put_scalar(head, item);
    }
  }
  uint64_t offset = 0;
  std::set<std::string> names;
  for (const auto& t : tensors) {
    if (!names.insert(t.name).second) fail("{}: tensor '{}' given twice", path, t.name);
    const GgmlTypeInfo* info = ggml_type_info(t.type);
    if (!info) fail("{}: tensor '{}': unknown GGML type {}", path, t.name, t.type);
    if (t.shape.empty() || t.shape.size() > size_t(kMaxDims))
      fail("{}: tensor '{}': {} dimensions, expected 1 to {}", path, t.name, t.shape.size(), kMaxDims);
    int64_t numel = 1;
    for (auto d : t.shape) {
      if (d < 0 || (d != 0 && numel > INT64_MAX / d))
        fail("{}: tensor '{}': dimension {} is negative or makes the element count overflow", path, t.name, d);
      numel *= d;
    }
    if (t.shape.back() % info->block != 0)
      fail("{}: tensor '{}': row length {} is not a multiple of {}'s block of {}", path, t.name, t.shape.back(),
           info->name, info->block);
    const uint64_t nbytes = uint64_t(numel / info->block * info->bytes);
    if (t.bytes.size() != nbytes)
      fail("{}: tensor '{}': {} bytes given, expected {}", path, t.name, t.bytes.size(), nbytes);
    put_string(head, t.name);
    put<uint32_t>(head, uint32_t(t.shape.size()));
    for (auto it = t.shape.rbegin(); it != t.shape.rend(); ++it) put<uint64_t>(head, uint64_t(*it));
    put<uint32_t>(head, t.type);
    put<uint64_t>(head, offset);
    offset += (nbytes + align - 1) / align * align;
  }
  const std::vector<std::byte> zeros(static_cast<size_t>(align));
  auto pad_to = [&](uint64_t n) { return std::span(zeros.data(), size_t((align - n % align) % align)); };
  std::vector<std::span<const std::byte>> parts;
  parts.push_back(std::as_bytes(std::span(head.data(), head.size())));
  parts.push_back(pad_to(head.size()));
  for (const auto& t : tensors) {
    parts.push_back(t.bytes);
    parts.push_back(pad_to(t.bytes.size()));
  }
  write_parts_atomic(path, parts);
}

GgufValue gguf_u32(uint32_t v) { GgufValue g; g.type = GgufType::u32; g.u = v; return g; }
GgufValue gguf_i32(int32_t v) { GgufValue g; g.type = GgufType::i32; g.i = v; return g; }
GgufValue gguf_f32(float v) { GgufValue g; g.type = GgufType::f32; g.f = v; return g; }
GgufValue gguf_bool(bool v) { GgufValue g; g.type = GgufType::boolean; g.i = v; return g; }
GgufValue gguf_string(std::string v) { GgufValue g; g.type = GgufType::string; g.s = std::move(v); return g; }
GgufValue gguf_strings(std::vector<std::string> v) {
  GgufValue g;
  g.type = GgufType::array;
  g.elem = GgufType::string;
  for (auto& s : v) g.items.push_back(gguf_string(std::move(s)));
  return g;
}
GgufValue gguf_f32s(const std::vector<float>& v) {
  GgufValue g;
  g.type = GgufType::array;
  g.elem = GgufType::f32;
  for (float f : v) g.items.push_back(gguf_f32(f));
  return g;
}
GgufValue gguf_i32s(const std::vector<int32_t>& v) {
  GgufValue g;
  g.type = GgufType::array;
  g.elem = GgufType::i32;
  for (int32_t i : v) g.items.push_back(gguf_i32(i));
  return g;
}

}  // namespace tpp::io
