#include "tpp/io/safetensors.h"

#include <algorithm>
#include <limits>
#include <set>

#include <nlohmann/json.hpp>

#include "tpp/core/error.h"
#include "tpp/core/utf8.h"
#include "tpp/io/atomic_file.h"

namespace tpp::io {
namespace {

using json = nlohmann::json;

// Headers above this size are refused before parsing; the reference reader
// has the same limit (MAX_HEADER_SIZE = 100'000'000). Real ones are < 10 MB.
constexpr uint64_t kMaxHeader = 100'000'000;
// A valid header nests three deep ({"t": {"shape": [..]}}); anything much
// deeper is refused while parsing, which also bounds every recursive walk
// (dump in an error message) over the parsed value.
constexpr size_t kMaxDepth = 8;
// Untrusted text quoted in an error message is cut to this many bytes.
constexpr size_t kMaxQuoted = 200;

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

std::string supported_dtypes() {
  std::string out;
  for (const auto& info : kDTypes)
    if (!info.safetensors.empty()) out += (out.empty() ? "" : ", ") + std::string(info.safetensors);
  return out;
}

// A name or key from the header, fit for an error message: control bytes are
// escaped (no terminal escapes from a hostile file), long names are cut at a
// UTF-8 boundary. Names come from parsed JSON, so they are valid UTF-8.
std::string safe_name(std::string_view s) {
  std::string out;
  const size_t n = utf8::floor_boundary(s, kMaxQuoted);  // do not split a character
  for (size_t i = 0; i < n; ++i) {
    const auto c = uint8_t(s[i]);
    if (c < 0x20 || c == 0x7f)
      out += fmt::format("\\x{:02x}", c);
    else
      out += char(c);
  }
  if (n < s.size()) out += "...";
  return out;
}

// Arbitrary bytes (a parser's "last read" excerpt) as printable ASCII.
std::string printable(std::string_view s) {
  std::string out;
  for (const char ch : s) {
    const auto c = uint8_t(ch);
    if (c < 0x20 || c >= 0x7f)
      out += fmt::format("\\x{:02x}", c);
    else
      out += ch;
  }
  return out;
}

// A JSON value for an error message: compact, ASCII only, at most ~60 bytes.
std::string show(const json& j) {
  std::string s = j.dump(-1, ' ', /*ensure_ascii=*/true, json::error_handler_t::replace);
  return s.size() > 60 ? s.substr(0, 57) + "..." : s;
}

std::string type_of(const json& j) {
  if (j.is_number_unsigned()) return "an unsigned integer";
  if (j.is_number_integer()) return "a negative integer";
  if (j.is_number_float()) return "a floating-point number";
  const std::string name = j.type_name();
  return (name == "object" || name == "array" ? "an " : "a ") + name;
}

uint64_t read_u64_le(const std::byte* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | uint64_t(p[i]);
  return v;
}

// Parses the header text. nlohmann's DOM parser keeps the last of duplicate
// keys silently, so a parser callback tracks the keys of every open object
// and refuses a repeat; it also refuses deep nesting and records the order
// of the top-level keys (the DOM's std::map sorts them).
json parse_header(std::string_view text, const std::string& path, std::vector<std::string>* order) {
  std::vector<std::set<std::string>> open_objects;  // keys seen, per open object
  size_t depth = 0;                                 // open objects and arrays
  std::string top_key;                              // the entry being parsed
  bool have_top_key = false;                        // top_key is set
  auto callback = [&](int /*depth*/, json::parse_event_t event, json& parsed) -> bool {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        if (++depth > kMaxDepth) {
          if (!have_top_key)
            fail("{}: header nests deeper than {} levels; a valid header nests 3", path, kMaxDepth);
          fail("{}: tensor '{}': header nests deeper than {} levels; a valid header nests 3", path,
               safe_name(top_key), kMaxDepth);
        }
        if (event == json::parse_event_t::object_start) open_objects.emplace_back();
        break;
      case json::parse_event_t::object_end:
        --depth;
        open_objects.pop_back();
        break;
      case json::parse_event_t::array_end:
        --depth;
        break;
      case json::parse_event_t::key: {
        const auto& key = parsed.get_ref<const std::string&>();
        const bool top = open_objects.size() == 1 && depth == 1;
        if (top) {
          top_key = key;
          have_top_key = true;
        }
        if (!open_objects.back().insert(key).second) {
          if (top && key == "__metadata__") fail("{}: '__metadata__' appears twice in the header", path);
          if (top) fail("{}: tensor '{}' appears twice in the header", path, safe_name(key));
          if (top_key == "__metadata__")
            fail("{}: __metadata__ key '{}' appears twice", path, safe_name(key));
          fail("{}: tensor '{}': field '{}' appears twice", path, safe_name(top_key), safe_name(key));
        }
        if (top) order->push_back(key);
        break;
      }
      case json::parse_event_t::value:
        break;
    }
    return true;
  };
  try {
    return json::parse(text.begin(), text.end(), callback);
  } catch (const json::parse_error& e) {
    const size_t at = e.byte > 0 ? e.byte - 1 : 0;  // e.byte counts from 1; size() = end of input
    fail("{}: header is not valid JSON (at byte {} of the {}-byte header, file offset {}): {}", path, at,
         text.size(), at + 8, printable(e.what()));
  } catch (const json::exception& e) {
    fail("{}: header is not valid JSON: {}", path, printable(e.what()));
  }
}

// One tensor entry of the header, every field checked.
TensorEntry parse_entry(const std::string& name, const json& entry, uint64_t data_size,
                        const std::string& path) {
  const std::string where = fmt::format("{}: tensor '{}'", path, safe_name(name));
  if (!entry.is_object())
    fail("{}: entry is {} ({}), expected an object with dtype, shape, data_offsets", where,
         type_of(entry), show(entry));
  for (const auto& [key, value] : entry.items())
    if (key != "dtype" && key != "shape" && key != "data_offsets")
      fail("{}: unknown field '{}' (expected only dtype, shape, data_offsets)", where, safe_name(key));
  for (const char* field : {"dtype", "shape", "data_offsets"})
    if (!entry.contains(field)) fail("{}: field '{}' is missing", where, field);

  TensorEntry t;
  t.name = name;

  const json& dtype = entry.at("dtype");
  if (!dtype.is_string())
    fail("{}: field 'dtype' is {} ({}), expected a string", where, type_of(dtype), show(dtype));
  const auto& dtype_text = dtype.get_ref<const std::string&>();
  const auto parsed = parse_safetensors_dtype(dtype_text);
  if (!parsed)
    fail("{}: dtype \"{}\" is not supported (expected one of {})", where, safe_name(dtype_text),
         supported_dtypes());
  t.dtype = *parsed;
  const auto elem = uint64_t(dtype_size(t.dtype));

  const json& shape = entry.at("shape");
  if (!shape.is_array())
    fail("{}: field 'shape' is {} ({}), expected an array of non-negative integers", where,
         type_of(shape), show(shape));
  // numel = product of the dimensions, every partial product within int64
  // (as the reference reader's checked multiply), so numel() never overflows.
  uint64_t numel = 1;
  t.shape.reserve(shape.size());
  for (size_t i = 0; i < shape.size(); ++i) {
    const json& dim = shape[i];
    if (!dim.is_number_unsigned())
      fail("{}: shape {}: dimension {} is {} ({}), expected non-negative integers", where, show(shape),
           i, type_of(dim), show(dim));
    const uint64_t d = dim.get<uint64_t>();
    constexpr auto kMax = uint64_t(std::numeric_limits<int64_t>::max());
    if (d > kMax || (d != 0 && numel > kMax / d))
      fail("{}: shape {} is too large: its element count overflows 64 bits", where, show(shape));
    numel *= d;
    t.shape.push_back(int64_t(d));
  }
  if (numel > std::numeric_limits<uint64_t>::max() / elem)
    fail("{}: shape {} is too large: {} elements x {} bytes overflows 64 bits", where, shape_str(t.shape),
         numel, elem);
  const uint64_t expected = numel * elem;

  const json& offsets = entry.at("data_offsets");
  if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
      !offsets[1].is_number_unsigned())
    fail("{}: field 'data_offsets' is {}, expected [begin, end] of two non-negative integers", where,
         show(offsets));
  t.begin = offsets[0].get<uint64_t>();
  t.end = offsets[1].get<uint64_t>();
  if (t.end < t.begin)
    fail("{}: data_offsets [{}, {}]: end before begin, expected begin <= end", where, t.begin, t.end);
  if (t.end > data_size)
    fail("{}: data_offsets [{}, {}] exceed the data section of {} bytes", where, t.begin, t.end, data_size);
  if (t.end - t.begin != expected)
    fail("{}: data_offsets [{}, {}] span {} bytes, expected {} (shape {} x {})", where, t.begin, t.end,
         t.end - t.begin, expected, shape_str(t.shape), dtype_info(t.dtype).safetensors);
  return t;
}

void parse_metadata(const json& meta, std::map<std::string, std::string>* out, const std::string& path) {
  if (!meta.is_object())
    fail("{}: '__metadata__' is {} ({}), expected an object of string values", path, type_of(meta),
         show(meta));
  for (const auto& [key, value] : meta.items()) {
    if (!value.is_string())
      fail("{}: __metadata__ key '{}' is {} ({}), expected a string", path, safe_name(key), type_of(value),
           show(value));
    (*out)[key] = value.get<std::string>();
  }
}

// A JSON string literal; throws tpp::Error when `s` is not valid UTF-8.
std::string json_string(const std::string& s, const std::string& path, std::string_view what) {
  try {
    return json(s).dump();
  } catch (const json::exception&) {
    fail("{}: {} \"{}\" is not valid UTF-8", path, what, printable(s));
  }
}

}  // namespace

int64_t TensorEntry::numel() const {
  int64_t n = 1;
  for (auto s : shape) n *= s;
  return n;
}

SafeTensors SafeTensors::open(const std::string& path) {
  auto file = MappedFile::open(path);
  SafeTensors st = parse(file->bytes(), path);
  st.file_ = std::move(file);
  return st;
}

SafeTensors SafeTensors::parse(std::span<const std::byte> bytes, const std::string& path) {
  SafeTensors st;
  st.path_ = path;
  const uint64_t size = bytes.size();
  if (size < 8) fail("{}: file is {} bytes, expected at least 8 (the header length)", path, size);
  const uint64_t header_len = read_u64_le(bytes.data());
  if (header_len > size - 8)
    fail("{}: header length {} exceeds the file size {} minus the 8-byte length prefix", path, header_len,
         size);
  if (header_len > kMaxHeader)
    fail("{}: header length {} exceeds the limit of {} bytes", path, header_len, kMaxHeader);
  const std::string_view text(reinterpret_cast<const char*>(bytes.data() + 8), size_t(header_len));

  // nlohmann's lexer takes a NUL byte for the end of input, so "{}\0junk"
  // would pass; NUL is never valid JSON text (escaped as \u0000 in strings).
  if (const size_t nul = text.find('\0'); nul != std::string_view::npos)
    fail("{}: header byte {} (file offset {}) is NUL, expected JSON text ({}-byte header)", path, nul,
         nul + 8, header_len);

  std::vector<std::string> order;  // top-level keys in file order
  const json j = parse_header(text, path, &order);
  if (!j.is_object()) fail("{}: header is {} ({}), expected a JSON object", path, type_of(j), show(j));

  const std::byte* data = bytes.data() + 8 + header_len;
  const uint64_t data_size = size - 8 - header_len;
  st.tensors_.reserve(order.size());
  for (const auto& name : order) {
    const json& entry = j.at(name);
    if (name == "__metadata__") {
      parse_metadata(entry, &st.metadata_, path);
      continue;
    }
    TensorEntry t = parse_entry(name, entry, data_size, path);
    t.data = data + t.begin;
    st.tensors_.push_back(std::move(t));
  }

  // No two tensors may share a byte. Zero-size tensors hold none.
  std::vector<const TensorEntry*> by_offset;
  for (const auto& t : st.tensors_)
    if (t.nbytes() > 0) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(), [](const TensorEntry* a, const TensorEntry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const TensorEntry *a = by_offset[i - 1], *b = by_offset[i];
    if (b->begin < a->end)
      fail("{}: tensors '{}' data_offsets [{}, {}] and '{}' data_offsets [{}, {}] overlap, expected disjoint "
           "byte ranges",
           path, safe_name(a->name), a->begin, a->end, safe_name(b->name), b->begin, b->end);
  }
  for (size_t i = 0; i < st.tensors_.size(); ++i) st.index_[st.tensors_[i].name] = i;
  return st;
}

const TensorEntry* SafeTensors::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  // The header is built as text so the tensors keep the caller's order
  // (nlohmann's object would sort them); the layout is the reference writer's:
  // compact JSON, __metadata__ first, data packed in header order.
  std::string text = "{";
  if (!metadata.empty()) {
    text += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [key, value] : metadata) {
      if (!first) text += ',';
      first = false;
      text += json_string(key, path, "__metadata__ key");
      text += ':';
      text += json_string(value, path, fmt::format("__metadata__ value for key '{}'", printable(key)));
    }
    text += "}";
  }
  uint64_t offset = 0;
  std::set<std::string_view> names;
  for (const auto& t : tensors) {
    const std::string where = fmt::format("{}: tensor '{}'", path, safe_name(t.name));
    if (t.name == "__metadata__") fail("{}: the name is reserved for metadata", where);
    if (!names.insert(t.name).second) fail("{}: given twice, expected unique names", where);
    if (is_block_dtype(t.dtype))
      fail("{}: dtype {} is a block format, which safetensors cannot hold", where, dtype_name(t.dtype));
    uint64_t numel = 1;
    for (const auto d : t.shape) {
      if (d < 0) fail("{}: shape {} has a negative dimension", where, shape_str(t.shape));
      if (d != 0 && numel > uint64_t(std::numeric_limits<int64_t>::max()) / uint64_t(d))
        fail("{}: shape {} is too large: its element count overflows 64 bits", where, shape_str(t.shape));
      numel *= uint64_t(d);
    }
    const auto elem = uint64_t(dtype_size(t.dtype));
    if (numel > std::numeric_limits<uint64_t>::max() / elem)
      fail("{}: shape {} is too large", where, shape_str(t.shape));
    const uint64_t nbytes = numel * elem;
    if (t.bytes.size() != nbytes)
      fail("{}: {} bytes given, expected {} (shape {} x {})", where, t.bytes.size(), nbytes,
           shape_str(t.shape), dtype_info(t.dtype).safetensors);
    if (text.size() > 1) text += ',';
    text += json_string(t.name, path, "tensor name");
    text += fmt::format(R"(:{{"dtype":"{}","shape":{},"data_offsets":[{},{}]}})",
                        dtype_info(t.dtype).safetensors, json(t.shape).dump(), offset, offset + nbytes);
    offset += nbytes;
  }
  text += "}";
  // Pad with spaces (JSON whitespace) so the data section starts 8-aligned.
  text.append((8 - text.size() % 8) % 8, ' ');
  std::byte len[8];
  for (int i = 0; i < 8; ++i) len[i] = std::byte((uint64_t(text.size()) >> (8 * i)) & 0xff);
  std::vector<std::span<const std::byte>> parts;
  parts.reserve(tensors.size() + 2);
  parts.push_back(len);
  parts.push_back(std::as_bytes(std::span(text.data(), text.size())));
  for (const auto& t : tensors) parts.push_back(t.bytes);
  write_parts_atomic(path, parts);
}

}  // namespace tpp::io
