// MappedFile and read_text_file: contents byte for byte, empty files without
// a mapping, and errors that name the path and the OS's reason.
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
