// GGUF (llama.cpp's model file): read, memory-mapped, every field validated
// before use; and written (atomically), for tests and conversions.
//
// Format (little-endian; versions 2 and 3):
//   "GGUF"  u32 version  u64 n_tensors  u64 n_kv
//   n_kv x   { string key, u32 value type, value }
//   n_tensors x { string name, u32 n_dims, u64 ne[n_dims], u32 ggml type, u64 offset }
//   padding to general.alignment (default 32), then the data section.
// string = u64 length + bytes; array = u32 element type + u64 count + elements.
// ne[0] is the innermost (contiguous) dimension: a [rows, cols] matrix has
// ne = {cols, rows}. Offsets are relative to the data section and multiples
// of the alignment.
// Ref: the GGUF description in the ggml repository (docs/gguf.md).
//
// Every failure is a tpp::Error that starts with the file path and names the
// key or tensor, the field, and the expected and actual values: bad magic or
// version, counts larger than the file could hold, strings or arrays running
// past the end, unknown value or tensor types, nested arrays, repeated keys
// or tensor names, an alignment that is not a power of two, a dimension
// count outside 1..4, a row length that is not a multiple of its type's
// block, sizes that overflow, offsets that are misaligned, out of range or
// overlapping.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tpp/core/dtype.h"
#include "tpp/io/mapped_file.h"

namespace tpp::io {

enum class GgufType : uint32_t {
  u8 = 0, i8 = 1, u16 = 2, i16 = 3, u32 = 4, i32 = 5, f32 = 6, boolean = 7,
  string = 8, array = 9, u64 = 10, i64 = 11, f64 = 12,
};
std::string_view gguf_type_name(GgufType t);

// One metadata value. Scalars keep their type; integers are widened into
// i (signed types, bool) or u (unsigned types), floats into f. Arrays hold
// scalars or strings of one element type (arrays of arrays are refused).
struct GgufValue {
  GgufType type = GgufType::u8;
  GgufType elem = GgufType::u8;  // arrays: the element type
  int64_t i = 0;
  uint64_t u = 0;
  double f = 0;
  std::string s;
  std::vector<GgufValue> items;  // arrays
  bool is_int() const;
  bool is_float() const { return type == GgufType::f32 || type == GgufType::f64; }
};

// GGML's tensor types that a file may declare (sizes known, so files of any
// of them validate); only some can be loaded as model weights (see dtype).
struct GgmlTypeInfo {
  uint32_t id;
  std::string_view name;  // "Q4_K"
  int block;              // elements per block
  int bytes;              // bytes per block
  std::optional<DType> dtype;  // tpp's storage type when tpp can compute with it
};
const GgmlTypeInfo* ggml_type_info(uint32_t id);  // nullptr when unknown
// The GGML type that stores tpp's `t` (its row in the same table); nullptr
// when GGUF has none (u8).
const GgmlTypeInfo* ggml_type_of(DType t);

struct GgufTensor {
  std::string name;
  uint32_t type = 0;         // GGML type id
  std::vector<int64_t> ne;   // innermost first, as stored
  uint64_t offset = 0;       // within the data section
  uint64_t nbytes = 0;
  const std::byte* data = nullptr;  // aligned to the file's alignment (mappings are page-aligned)
  // Outermost first (safetensors / PyTorch order): ne reversed.
  std::vector<int64_t> shape() const { return {ne.rbegin(), ne.rend()}; }
  const GgmlTypeInfo& info() const { return *ggml_type_info(type); }
};

class GgufFile {
 public:
  static GgufFile open(const std::string& path);
  // Validate an in-memory image (kept alive by the caller); `path` names it in errors.
  static GgufFile parse(std::span<const std::byte> bytes, const std::string& path);

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  // Keys in file order.
  const std::vector<std::string>& keys() const { return keys_; }
  const GgufValue* find(std::string_view key) const;  // nullptr when absent

  // Typed getters: std::nullopt / empty when the key is absent; a present key
  // of the wrong type is a tpp::Error naming it, its type and the expected one.
  std::optional<int64_t> get_int(std::string_view key) const;  // any integer type
  std::optional<double> get_float(std::string_view key) const;  // f32, f64 or an integer
  std::optional<bool> get_bool(std::string_view key) const;
  std::optional<std::string> get_string(std::string_view key) const;
  std::optional<std::vector<std::string>> get_strings(std::string_view key) const;
  std::optional<std::vector<double>> get_floats(std::string_view key) const;  // numbers
  std::optional<std::vector<int64_t>> get_ints(std::string_view key) const;

  const std::vector<GgufTensor>& tensors() const { return tensors_; }
  const GgufTensor* find_tensor(std::string_view name) const;  // nullptr when absent
  // The mapping the tensors point into.
  std::shared_ptr<const MappedFile> mapping() const { return file_; }

 private:
  std::string path_;
  std::shared_ptr<MappedFile> file_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  std::vector<std::string> keys_;
  std::map<std::string, GgufValue, std::less<>> kv_;
  std::vector<GgufTensor> tensors_;
  std::map<std::string, size_t, std::less<>> index_;
};

// Writing: metadata in the given order, then tensors packed in the given order
// at the alignment (32). Written atomically (temporary file, fsync, rename).
struct GgufWriteTensor {
  std::string name;
  uint32_t type;                     // GGML type id
  std::vector<int64_t> shape;        // outermost first
  std::span<const std::byte> bytes;  // exactly the type's size for that shape
};
void write_gguf(const std::string& path, const std::vector<std::pair<std::string, GgufValue>>& metadata,
                const std::vector<GgufWriteTensor>& tensors);

// Whether the file carries a tokenizer: tokenizer.ggml.model is present and
// not one of llama.cpp's markers for a vocabulary-less model ("no_vocab",
// "none"), which count as no tokenizer, like a missing key.
bool gguf_has_tokenizer(const GgufFile& f);

// Value builders for write_gguf.
GgufValue gguf_u32(uint32_t v);
GgufValue gguf_i32(int32_t v);
GgufValue gguf_f32(float v);
GgufValue gguf_bool(bool v);
GgufValue gguf_string(std::string v);
GgufValue gguf_strings(std::vector<std::string> v);
GgufValue gguf_f32s(const std::vector<float>& v);
GgufValue gguf_i32s(const std::vector<int32_t>& v);

}  // namespace tpp::io
