#include "tpp/io/mapped_file.h"

#include <cerrno>
#include <cstdint>
#include <cstring>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tpp/core/error.h"

namespace tpp::io {
namespace {

// An open file descriptor that is closed on every path out.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// Opens `path` read-only and checks that it is a regular file; returns its size.
int open_regular(const std::string& path, uint64_t* size) {
  int fd;
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) fail("{}: cannot open: {}", path, std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    fail("{}: cannot stat: {}", path, std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail("{}: not a regular file (a {})", path, S_ISDIR(st.st_mode) ? "directory" : "special file");
  }
  *size = uint64_t(st.st_size);
  return fd;
}

}  // namespace

std::shared_ptr<MappedFile> MappedFile::open(const std::string& path) {
  uint64_t size = 0;
  const Fd fd(open_regular(path, &size));
  if (size > uint64_t(SIZE_MAX)) fail("{}: {} bytes do not fit the address space", path, size);
  std::shared_ptr<MappedFile> f(new MappedFile());
  f->path_ = path;
  f->size_ = size_t(size);
  if (f->size_ > 0) {  // mmap of length 0 is an error (EINVAL): an empty file maps to no bytes
    void* p = ::mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE, fd.get(), 0);
    if (p == MAP_FAILED) fail("{}: cannot map {} bytes: {}", path, f->size_, std::strerror(errno));
    f->data_ = static_cast<const std::byte*>(p);
  }
  return f;  // the mapping outlives the descriptor
}

bool MappedFile::contains(const void* p, size_t n) const {
  const auto a = reinterpret_cast<uintptr_t>(p), base = reinterpret_cast<uintptr_t>(data_);
  return data_ && a >= base && a - base <= size_ && n <= size_ - (a - base);
}

void MappedFile::release(const void* p, size_t n) const {
  TPP_CHECK(contains(p, n), "{}: release of {} bytes outside the mapping", path_, n);
  const auto page = uintptr_t(::sysconf(_SC_PAGESIZE));
  const auto a = reinterpret_cast<uintptr_t>(p);
  const uintptr_t begin = (a + page - 1) / page * page, end = (a + n) / page * page;
  // A private read-only file mapping: dropped pages read back from the file.
  if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<std::byte*>(data_), size_);
}

std::string read_text_file(const std::string& path) {
  uint64_t size = 0;
  const Fd fd(open_regular(path, &size));
  std::string out;
  out.reserve(size_t(size));
  // Read to end of file rather than trusting the size (it may change, and
  // some files report 0).
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("{}: read error after {} bytes: {}", path, out.size(), std::strerror(errno));
    }
    if (n == 0) break;
    out.append(buf, size_t(n));
  }
  return out;
}

}  // namespace tpp::io
