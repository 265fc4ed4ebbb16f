// safetensors: read (memory-mapped, every field validated before use) and
// write (atomically: temporary file, fsync, rename).
//
// Format: u64 little-endian header length N, then N bytes of JSON
//   {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {"key": "value", ...}}
// then the data section; offsets are relative to the data section start.
// Ref: https://github.com/huggingface/safetensors (format description).
//
// Reading validates every field before any tensor byte is touched, and every
// failure is a tpp::Error whose message starts with the file path and names
// the tensor or field with the expected and actual values:
//   - file >= 8 bytes; header length N <= file size - 8 and N <= 100'000'000;
//   - the header is a JSON object (nesting at most 8 deep) with no key repeated
//     in any object (duplicate tensor names included);
//   - each tensor entry has exactly dtype (a supported name: F32 F16 BF16 F64
//     I32 I64 U8), shape (non-negative integers, element count within int64)
//     and data_offsets ([begin, end], begin <= end <= data section size,
//     end - begin == numel * dtype size);
//   - no two tensors share a byte (zero-size tensors hold none);
//   - "__metadata__", when present, is an object of string values.
// Gaps between tensors and bytes after the last one are allowed.
//
// ALIGNMENT: safetensors does not promise alignment (the header length need
// not be a multiple of 8, offsets need not be multiples of the element size),
// so TensorEntry::data may be unaligned for its dtype. Read it with memcpy or
// unaligned loads, or copy it; never dereference it as a float* / uint16_t*.
// (tpp's own writer pads the header so the data section starts 8-aligned.)
//
// Files are mapped, not read: a file truncated by another process while it
// is mapped faults (SIGBUS) on access, as with any mmap reader.
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
  const std::byte* data = nullptr;  // into the mapping / buffer; MAY BE UNALIGNED (see above)
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
  // In header order. Entries point into the mapping, which every copy of this
  // object shares, so they stay valid as long as any copy lives.
  const std::vector<TensorEntry>& tensors() const { return tensors_; }
  const TensorEntry* find(const std::string& name) const;  // nullptr when absent
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // The mapping the tensors point into; null when parsed from a caller's buffer.
  std::shared_ptr<const MappedFile> mapping() const { return file_; }

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

// Written atomically (io/atomic_file.h: temporary file, fsync, rename, fsync the directory).
// The header lists __metadata__ (when not empty) and then the tensors in the
// given order, compact JSON padded with spaces to a multiple of 8 bytes; the
// data is packed in the same order. Names must be unique and not
// "__metadata__"; each `bytes` must be exactly numel * dtype size. On any
// failure the temporary file is removed, `path` is untouched and tpp::Error
// names the path and the cause.
void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace tpp::io
