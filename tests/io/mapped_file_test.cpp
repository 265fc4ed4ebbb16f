// MappedFile and read_text_file: contents byte for byte, empty files without
// a mapping, and errors that name the path and the OS's reason.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "common/test_util.h"
#include "tpp/core/error.h"
#include "tpp/io/mapped_file.h"

namespace tpp::test {
namespace {

namespace fs = std::filesystem;

void write_text(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary);
  out << contents;
}

std::string binary_contents() {
  std::string s;
  for (int i = 0; i < 70000; ++i) s += char((i * 131 + 7) & 0xff);  // NULs included, > one page
  return s;
}

TEST(MappedFileTest, MapsTheWholeFileByteForByte) {
  const std::string path = temp_dir("mf_map") + "/data.bin";
  const std::string contents = binary_contents();
  write_text(path, contents);
  const auto f = io::MappedFile::open(path);
  EXPECT_EQ(f->path(), path);
  ASSERT_EQ(f->bytes().size(), contents.size());
  EXPECT_EQ(std::memcmp(f->bytes().data(), contents.data(), contents.size()), 0);
}

// Resident kB of the mapping that starts at `start`, from /proc/self/smaps.
int64_t resident_kb(const void* start) {
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  bool in = false;
  const auto want = reinterpret_cast<uintptr_t>(start);
  while (std::getline(smaps, line)) {
    unsigned long lo = 0, hi = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &lo, &hi) == 2) {  // a mapping's header line
      in = lo == want;
      continue;
    }
    if (in && line.rfind("Rss:", 0) == 0) return std::stoll(line.substr(4));
  }
  return -1;
}

TEST(MappedFileTest, ReleasedPagesLeaveResidentMemoryAndReadBackFromTheFile) {
  const std::string path = temp_dir("mf_release") + "/data.bin";
  std::string contents;
  for (int i = 0; i < (1 << 20); ++i) contents += char((i * 37 + 11) & 0xff);  // 1 MiB
  write_text(path, contents);
  const auto f = io::MappedFile::open(path);
  const auto* p = reinterpret_cast<const volatile char*>(f->bytes().data());
  long sum = 0;
  for (size_t i = 0; i < contents.size(); i += 512) sum += p[i];  // fault every page in
  ASSERT_NE(sum, 0);
  const int64_t before = resident_kb(f->bytes().data());
  ASSERT_GE(before, 1024) << "smaps shows no resident mapping at the file's address";
  // Released: all but the first and last (partial) pages of an unaligned range.
  f->release(f->bytes().data() + 100, contents.size() - 200);
  EXPECT_LE(resident_kb(f->bytes().data()), 8);
  EXPECT_EQ(std::memcmp(f->bytes().data(), contents.data(), contents.size()), 0);
  EXPECT_TRUE(f->contains(f->bytes().data() + 10, contents.size() - 10));
  EXPECT_FALSE(f->contains(f->bytes().data() + 10, contents.size()));
  EXPECT_FALSE(f->contains(contents.data(), 1));
  const std::string msg = error_message([&] { f->release(contents.data(), 16); });
  EXPECT_EQ(msg, path + ": release of 16 bytes outside the mapping");
}

TEST(MappedFileTest, EmptyFileHasNoBytes) {
  const std::string path = temp_dir("mf_empty") + "/empty.bin";
  write_text(path, "");
  const auto f = io::MappedFile::open(path);
  EXPECT_EQ(f->bytes().size(), 0u);
  EXPECT_EQ(f->bytes().data(), nullptr);
}

TEST(MappedFileTest, MappingOutlivesTheDirectoryEntry) {
  const std::string path = temp_dir("mf_unlink") + "/gone.bin";
  write_text(path, "still here");
  const auto f = io::MappedFile::open(path);
  fs::remove(path);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(f->bytes().data()), f->bytes().size()), "still here");
}

TEST(MappedFileTest, ErrorsNameThePathAndTheReason) {
  const std::string dir = temp_dir("mf_err");
  const std::string missing = dir + "/missing.bin";
  std::string msg = error_message([&] { io::MappedFile::open(missing); });
  EXPECT_EQ(msg, missing + ": cannot open: No such file or directory");
  msg = error_message([&] { io::MappedFile::open(dir); });
  EXPECT_EQ(msg.rfind(dir + ": not a regular file", 0), 0u) << msg;
  EXPECT_NE(msg.find("directory"), std::string::npos) << msg;
  msg = error_message([&] { io::MappedFile::open("/dev/null"); });
  EXPECT_EQ(msg.rfind("/dev/null: not a regular file", 0), 0u) << msg;
}

TEST(ReadTextFileTest, ReadsEveryByte) {
  const std::string dir = temp_dir("rt_read");
  const std::string contents = binary_contents();
  write_text(dir + "/bin", contents);
  EXPECT_EQ(io::read_text_file(dir + "/bin"), contents);
  write_text(dir + "/config.json", "{\"dim\": 8}\n");
  EXPECT_EQ(io::read_text_file(dir + "/config.json"), "{\"dim\": 8}\n");
  write_text(dir + "/empty", "");
  EXPECT_EQ(io::read_text_file(dir + "/empty"), "");
}

TEST(ReadTextFileTest, ErrorsNameThePathAndTheReason) {
  const std::string dir = temp_dir("rt_err");
  EXPECT_EQ(error_message([&] { io::read_text_file(dir + "/config.json"); }),
            dir + "/config.json: cannot open: No such file or directory");
  const std::string msg = error_message([&] { io::read_text_file(dir); });
  EXPECT_EQ(msg.rfind(dir + ": not a regular file", 0), 0u) << msg;
}

}  // namespace
}  // namespace tpp::test
