// A read-only memory mapping of a whole file (weights are never copied).
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>

namespace tpp::io {

class MappedFile {
 public:
  // Throws tpp::Error naming the path and the OS error.
  static std::shared_ptr<MappedFile> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  std::span<const std::byte> bytes() const { return {data_, size_}; }
  const std::string& path() const { return path_; }
  // Whether [p, p + n) lies inside the mapping.
  bool contains(const void* p, size_t n) const;
  // Gives back this process's copies of the whole pages inside [p, p + n)
  // (which must lie in the mapping): the mapping stays valid and a later read
  // faults the page in again from the file. For bytes already copied
  // elsewhere (packed weights), so they stop counting twice in RSS.
  void release(const void* p, size_t n) const;

 private:
  MappedFile() = default;
  std::string path_;
  const std::byte* data_ = nullptr;
  size_t size_ = 0;
};

// Read a whole (small) text file; throws tpp::Error naming the path.
std::string read_text_file(const std::string& path);

}  // namespace tpp::io
