// safetensors: read (memory-mapped, every field validated before use) and
// write (atomically: temporary file, fsync, rename).
//
// Format: u64 little-endian header length N, then N bytes of JSON
//   {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {"key": "value", ...}}
// then the data section; offsets are relative to the data section start.
// Ref: https://github.com/huggingface/safetensors (format description).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "tpp/core/dtype.h"
#include "tpp/io/mapped_file.h"

namespace tpp::io {

struct TensorEntry {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;  // outermost first, as stored
  uint64_t begin = 0, end = 0;  // byte offsets within the data section
  const std::byte* data = nullptr;  // points into the mapping / buffer
  uint64_t nbytes() const { return end - begin; }
  int64_t numel() const;
};

class SafeTensors {
 public:
  // Map and validate a file. Throws tpp::Error naming the file and the field.
  static SafeTensors open(const std::string& path);
  // Validate an in-memory image (the caller keeps `bytes` alive); `path` is
  // used in error messages only.
  static SafeTensors parse(std::span<const std::byte> bytes, const std::string& path);

  const std::string& path() const { return path_; }
  const std::vector<TensorEntry>& tensors() const { return tensors_; }
  const TensorEntry* find(const std::string& name) const;  // nullptr when absent
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  std::string path_;
  std::shared_ptr<MappedFile> file_;  // null when parsed from a caller's buffer
  std::vector<TensorEntry> tensors_;  // in file order
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

struct TensorToWrite {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  std::span<const std::byte> bytes;  // exactly numel * dtype_size bytes
};

// Write atomically: `path`.tmp.<pid>, fsync, rename over `path`, fsync the directory.
void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// Write a whole text file atomically (same protocol); used for config.json.
void write_file_atomic(const std::string& path, std::string_view contents);

}  // namespace tpp::io
