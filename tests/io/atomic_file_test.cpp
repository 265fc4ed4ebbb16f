// Atomic file writing: the new contents replace the old as a whole (a reader
// that opened the old file keeps reading the old bytes), a failed write leaves
// the old file as it was and no temporary file behind, and every error names
// the path being written.
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <span>
#include <string>

#include <unistd.h>

#include <gtest/gtest.h>

#include "common/test_util.h"
#include "tpp/core/error.h"
#include "tpp/io/atomic_file.h"

namespace tpp::test {
namespace {

namespace fs = std::filesystem;

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

void expect_only(const std::string& dir, std::initializer_list<std::string> names) {
  std::set<std::string> found;
  for (const auto& e : fs::directory_iterator(dir)) found.insert(e.path().filename().string());
  EXPECT_EQ(found, std::set<std::string>(names)) << "files left in " << dir;
}

TEST(AtomicFileTest, ReplacesTheWholeContents) {
  const std::string dir = temp_dir("atomic_replace");
  const std::string path = dir + "/config.json";
  io::write_file_atomic(path, std::string(5000, 'x'));
  EXPECT_EQ(read_all(path), std::string(5000, 'x'));
  io::write_file_atomic(path, "{\"dim\": 8}\n");  // shorter: nothing of the old file remains
  EXPECT_EQ(read_all(path), "{\"dim\": 8}\n");
  io::write_file_atomic(path, "");
  EXPECT_EQ(read_all(path), "");
  expect_only(dir, {"config.json"});
}

TEST(AtomicFileTest, WritesBytesAndParts) {
  const std::string dir = temp_dir("atomic_bytes");
  const std::string path = dir + "/data.bin";
  const std::string bin("\0\x01\xff" "abc", 6);
  io::write_file_atomic(path, std::as_bytes(std::span(bin.data(), bin.size())));
  EXPECT_EQ(read_all(path), bin);
  const std::string a = "head", b = "", c = "tail";
  io::write_parts_atomic(path, {std::as_bytes(std::span(a.data(), a.size())), std::as_bytes(std::span(b.data(), b.size())),
                                std::as_bytes(std::span(c.data(), c.size()))});
  EXPECT_EQ(read_all(path), "headtail");
  io::write_parts_atomic(path, {});
  EXPECT_EQ(read_all(path), "");
  expect_only(dir, {"data.bin"});
}

TEST(AtomicFileTest, AReaderOfTheOldFileKeepsTheOldBytes) {
  // Replacement is a rename, not a rewrite in place: an open reader sees the old file whole.
  const std::string dir = temp_dir("atomic_reader");
  const std::string path = dir + "/state.json";
  io::write_file_atomic(path, "old contents\n");
  std::ifstream reader(path, std::ios::binary);
  ASSERT_TRUE(reader.is_open());
  io::write_file_atomic(path, "new\n");
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(reader), {}), "old contents\n");
  EXPECT_EQ(read_all(path), "new\n");
}

TEST(AtomicFileTest, AFailedWriteLeavesTheOldFileIntact) {
  const std::string dir = temp_dir("atomic_fail");
  const std::string path = dir + "/checkpoint.json";
  io::write_file_atomic(path, "{\"step\": 4}\n");
  // The temporary file cannot be created: a directory is in its place.
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  fs::create_directory(tmp);
  const std::string msg = error_message([&] { io::write_file_atomic(path, "{\"step\": 8}\n"); });
  EXPECT_EQ(msg.rfind(path + ": cannot create temporary file " + tmp, 0), 0u) << msg;
  EXPECT_EQ(read_all(path), "{\"step\": 4}\n");
  fs::remove(tmp);
  expect_only(dir, {"checkpoint.json"});
}

TEST(AtomicFileTest, AFailedRenameRemovesTheTemporaryFile) {
  // The target is a non-empty directory: the data is written, then the rename fails.
  const std::string dir = temp_dir("atomic_rename");
  const std::string target = dir + "/occupied";
  fs::create_directory(target);
  io::write_file_atomic(target + "/keep", "k");
  const std::string msg = error_message([&] { io::write_file_atomic(target, "text"); });
  EXPECT_EQ(msg.rfind(target + ": rename from " + target + ".tmp.", 0), 0u) << msg;
  EXPECT_TRUE(fs::is_directory(target));
  EXPECT_EQ(read_all(target + "/keep"), "k");
  expect_only(dir, {"occupied"});
}

TEST(AtomicFileTest, AMissingDirectoryIsAnErrorNamingThePath) {
  const std::string dir = temp_dir("atomic_nodir");
  const std::string path = dir + "/missing/config.json";
  const std::string msg = error_message([&] { io::write_file_atomic(path, "{}"); });
  EXPECT_EQ(msg.rfind(path + ": ", 0), 0u) << msg;
  EXPECT_NE(msg.find("No such file or directory"), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(dir + "/missing"));
}

}  // namespace
}  // namespace tpp::test
