#include "tpp/io/safetensors.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>

#include <fcntl.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "tpp/core/error.h"

namespace tpp::io {
namespace {

using json = nlohmann::json;

// Headers above this size are refused before parsing (real ones are < 10 MB).
constexpr uint64_t kMaxHeader = 100ull << 20;

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

std::string show(const json& j) {
  std::string s = j.dump(-1, ' ', false, json::error_handler_t::replace);
  return s.size() > 60 ? s.substr(0, 57) + "..." : s;
}

// nlohmann keeps the last of duplicate keys silently; this SAX pass finds
// duplicates among the top-level keys first.
struct DuplicateKeyFinder : json::json_sax_t {
  int depth = 0;
  std::set<std::string> keys;
  std::string duplicate;
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override { return ++depth, true; }
  bool end_object() override { return --depth, true; }
  bool start_array(std::size_t) override { return ++depth, true; }
  bool end_array() override { return --depth, true; }
  bool key(string_t& k) override {
    if (depth == 1 && !keys.insert(k).second) {
      duplicate = k;
      return false;
    }
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    return false;
  }
};

uint64_t read_u64_le(const std::byte* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | uint64_t(p[i]);
  return v;
}

void fsync_dir(const std::string& path) {
  const auto dir = std::filesystem::path(path).parent_path();
  const int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

void write_atomic(const std::string& path, const std::vector<std::span<const std::byte>>& parts) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail("{}: cannot create temporary file {}: {}", path, tmp, std::strerror(errno));
  auto bail = [&](const char* what) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    fail("{}: {} failed: {}", path, what, std::strerror(err));
  };
  for (auto part : parts) {
    const std::byte* p = part.data();
    size_t left = part.size();
    while (left > 0) {
      const ssize_t n = ::write(fd, p, left);
      if (n < 0) {
        if (errno == EINTR) continue;
        bail("write");
      }
      p += n;
      left -= size_t(n);
    }
  }
  if (::fsync(fd) != 0) bail("fsync");
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    fail("{}: close failed: {}", path, std::strerror(err));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    fail("{}: rename from {} failed: {}", path, tmp, std::strerror(err));
  }
  fsync_dir(path);
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
  if (bytes.size() < 8)
    fail("{}: file is {} bytes, expected at least 8 (the header length)", path, bytes.size());
  const uint64_t header_len = read_u64_le(bytes.data());
  if (header_len > bytes.size() - 8)
    fail("{}: header length {} exceeds the file size {} - 8", path, header_len, bytes.size());
  if (header_len > kMaxHeader) fail("{}: header length {} exceeds the limit of {}", path, header_len, kMaxHeader);
  if (header_len < 2) fail("{}: header length {}, expected a JSON object", path, header_len);
  const char* text = reinterpret_cast<const char*>(bytes.data() + 8);
  const std::string_view header(text, size_t(header_len));

  DuplicateKeyFinder dup;
  json::sax_parse(header.begin(), header.end(), &dup);
  if (!dup.duplicate.empty()) fail("{}: tensor '{}' appears twice in the header", path, dup.duplicate);
  json j;
  try {
    j = json::parse(header.begin(), header.end());
  } catch (const json::exception& e) {
    fail("{}: header is not valid JSON: {}", path, e.what());
  }
  if (!j.is_object()) fail("{}: header is {}, expected a JSON object", path, show(j));

  const std::byte* data = bytes.data() + 8 + header_len;
  const uint64_t data_size = bytes.size() - 8 - header_len;
  for (const auto& [name, entry] : j.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) fail("{}: '__metadata__' is {}, expected an object of strings", path, show(entry));
      for (const auto& [k, v] : entry.items()) {
        if (!v.is_string()) fail("{}: __metadata__['{}'] is {}, expected a string", path, k, show(v));
        st.metadata_[k] = v.get<std::string>();
      }
      continue;
    }
    const std::string where = fmt::format("{}: tensor '{}'", path, name);
    if (!entry.is_object()) fail("{}: entry is {}, expected an object", where, show(entry));
    for (const auto& [k, v] : entry.items())
      if (k != "dtype" && k != "shape" && k != "data_offsets")
        fail("{}: unknown field '{}' (expected dtype, shape, data_offsets)", where, k);
    TensorEntry t;
    t.name = name;
    auto dt = entry.find("dtype");
    if (dt == entry.end() || !dt->is_string()) fail("{}: field 'dtype' missing or not a string", where);
    const auto parsed = parse_safetensors_dtype(dt->get<std::string>());
    if (!parsed) fail("{}: dtype \"{}\" is not supported (expected F32, F16, BF16, F64, I32, I64, U8)", where, dt->get<std::string>());
    t.dtype = *parsed;
    auto sh = entry.find("shape");
    if (sh == entry.end() || !sh->is_array()) fail("{}: field 'shape' missing or not an array", where);
    uint64_t numel = 1;
    bool overflow = false;
    for (const auto& dim : *sh) {
      if (!dim.is_number_unsigned() && !(dim.is_number_integer() && dim.get<int64_t>() >= 0))
        fail("{}: shape {} has {}, expected non-negative integers", where, show(*sh), show(dim));
      const uint64_t dv = dim.get<uint64_t>();
      if (dv > uint64_t(INT64_MAX)) overflow = true;
      else if (dv != 0 && numel > UINT64_MAX / dv) overflow = true;
      else numel *= dv;
      t.shape.push_back(int64_t(std::min<uint64_t>(dv, uint64_t(INT64_MAX))));
    }
    if (overflow || numel > UINT64_MAX / 8) fail("{}: shape {} is too large", where, show(*sh));
    auto off = entry.find("data_offsets");
    if (off == entry.end() || !off->is_array() || off->size() != 2 || !(*off)[0].is_number_unsigned() ||
        !(*off)[1].is_number_unsigned())
      fail("{}: field 'data_offsets' is {}, expected [begin, end] of unsigned integers", where,
           off == entry.end() ? std::string("missing") : show(*off));
    t.begin = (*off)[0].get<uint64_t>();
    t.end = (*off)[1].get<uint64_t>();
    if (t.end < t.begin) fail("{}: data_offsets [{}, {}] end before begin", where, t.begin, t.end);
    if (t.end > data_size)
      fail("{}: data_offsets [{}, {}] exceed the data section of {} bytes", where, t.begin, t.end, data_size);
    const uint64_t expected = numel * uint64_t(dtype_size(t.dtype));
    if (t.end - t.begin != expected)
      fail("{}: data_offsets [{}, {}] span {} bytes, expected {} (shape {} x {})", where, t.begin, t.end,
           t.end - t.begin, expected, shape_str(t.shape), dtype_info(t.dtype).safetensors);
    t.data = data + t.begin;
    st.tensors_.push_back(std::move(t));
  }
  // No two tensors may share bytes.
  std::vector<const TensorEntry*> by_offset;
  for (const auto& t : st.tensors_) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(), [](auto* a, auto* b) { return a->begin < b->begin; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const auto *a = by_offset[i - 1], *b = by_offset[i];
    if (b->begin < a->end && b->nbytes() > 0 && a->nbytes() > 0)
      fail("{}: tensors '{}' [{}, {}] and '{}' [{}, {}] overlap", path, a->name, a->begin, a->end, b->name,
           b->begin, b->end);
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
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  std::set<std::string> names;
  for (const auto& t : tensors) {
    if (!names.insert(t.name).second) fail("{}: tensor '{}' given twice", path, t.name);
    if (t.name == "__metadata__") fail("{}: '__metadata__' is not a valid tensor name", path);
    uint64_t numel = 1;
    for (auto s : t.shape) {
      if (s < 0) fail("{}: tensor '{}': negative dimension in shape {}", path, t.name, shape_str(t.shape));
      numel *= uint64_t(s);
    }
    const uint64_t nbytes = numel * uint64_t(dtype_size(t.dtype));
    if (t.bytes.size() != nbytes)
      fail("{}: tensor '{}': {} bytes given, expected {} (shape {} x {})", path, t.name, t.bytes.size(), nbytes,
           shape_str(t.shape), dtype_name(t.dtype));
    header[t.name] = {{"dtype", std::string(dtype_info(t.dtype).safetensors)},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
  }
  // Keys in the given order would be nicer to read, but nlohmann sorts
  // them; offsets carry the order, which is all readers need.
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // pad so the data section is 8-aligned
  std::byte len[8];
  for (int i = 0; i < 8; ++i) len[i] = std::byte((uint64_t(text.size()) >> (8 * i)) & 0xff);
  std::vector<std::span<const std::byte>> parts;
  parts.push_back(len);
  parts.push_back(std::as_bytes(std::span(text.data(), text.size())));
  for (const auto& t : tensors) parts.push_back(t.bytes);
  write_atomic(path, parts);
}

void write_file_atomic(const std::string& path, std::string_view contents) {
  write_atomic(path, {std::as_bytes(std::span(contents.data(), contents.size()))});
}

}  // namespace tpp::io
