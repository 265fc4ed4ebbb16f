#include "tpp/io/atomic_file.h"

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <fcntl.h>
#include <unistd.h>

#include "tpp/core/error.h"

namespace tpp::io {
namespace {

void fsync_dir(const std::string& path) {
  const auto parent = std::filesystem::path(path).parent_path();
  const std::string dir = parent.empty() ? std::string(".") : parent.string();
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) fail("{}: written, but cannot open directory {} to sync it: {}", path, dir, std::strerror(errno));
  // Some file systems cannot sync a directory (EINVAL); the rename stands.
  if (::fsync(fd) != 0 && errno != EINVAL && errno != ENOTSUP) {
    const int err = errno;
    ::close(fd);
    fail("{}: written, but fsync of directory {} failed: {}", path, dir, std::strerror(err));
  }
  ::close(fd);
}

}  // namespace

void write_parts_atomic(const std::string& path, const std::vector<std::span<const std::byte>>& parts) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0666);
  if (fd < 0) fail("{}: cannot create temporary file {}: {}", path, tmp, std::strerror(errno));
  auto bail = [&](const char* what) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    fail("{}: {} of temporary file {} failed: {}", path, what, tmp, std::strerror(err));
  };
  for (const auto part : parts) {
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
    fail("{}: close of temporary file {} failed: {}", path, tmp, std::strerror(err));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    fail("{}: rename from {} failed: {}", path, tmp, std::strerror(err));
  }
  fsync_dir(path);
}

void write_file_atomic(const std::string& path, std::span<const std::byte> contents) {
  write_parts_atomic(path, {contents});
}

void write_file_atomic(const std::string& path, std::string_view contents) {
  write_parts_atomic(path, {std::as_bytes(std::span(contents.data(), contents.size()))});
}

}  // namespace tpp::io
