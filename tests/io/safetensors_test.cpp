// safetensors: round trips, a byte-exact file of the published format, and
// corruption of every kind refused with a tpp::Error that names the file and
// the tensor or field; never a crash.
#include <cstring>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "common/test_util.h"
#include "tpp/core/error.h"
#include "tpp/io/safetensors.h"

namespace tpp::test {
namespace {

namespace fs = std::filesystem;
using io::SafeTensors;

std::vector<std::byte> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> c((std::istreambuf_iterator<char>(in)), {});
  std::vector<std::byte> out(c.size());
  std::memcpy(out.data(), c.data(), c.size());
  return out;
}

// An image with the given header text and data bytes.
std::vector<std::byte> image(const std::string& header, size_t data_bytes) {
  std::vector<std::byte> out(8 + header.size() + data_bytes);
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[size_t(i)] = std::byte((n >> (8 * i)) & 0xff);
  std::memcpy(out.data() + 8, header.data(), header.size());
  return out;
}

std::string error_of(std::span<const std::byte> bytes) {
  try {
    SafeTensors::parse(bytes, "t.safetensors");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::string sample_file(const std::string& dir) {
  const std::vector<float> a = {1, 2, 3, 4, 5, 6};
  const std::vector<uint16_t> b = {0x3f80, 0x4000, 0xc040};
  const int32_t s = 42;
  const std::string path = dir + "/sample.safetensors";
  io::write_safetensors(path,
                        {{"a", DType::f32, {2, 3}, std::as_bytes(std::span(a))},
                         {"b.weight", DType::bf16, {3}, std::as_bytes(std::span(b))},
                         {"scalar", DType::i32, {}, std::as_bytes(std::span(&s, 1))},
                         {"empty", DType::f16, {0, 4}, {}}},
                        {{"format", "pt"}, {"note", "round trip"}});
  return path;
}

TEST(SafeTensorsTest, RoundTrip) {
  const auto path = sample_file(temp_dir("st_rt"));
  const auto st = SafeTensors::open(path);
  ASSERT_EQ(st.tensors().size(), 4u);
  const auto* a = st.find("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->dtype, DType::f32);
  EXPECT_EQ(a->shape, (std::vector<int64_t>{2, 3}));
  float v[6];
  std::memcpy(v, a->data, sizeof v);
  EXPECT_EQ(v[5], 6.0f);
  EXPECT_EQ(st.find("b.weight")->dtype, DType::bf16);
  EXPECT_EQ(st.find("scalar")->numel(), 1);
  EXPECT_EQ(st.find("empty")->nbytes(), 0u);
  EXPECT_EQ(st.find("nope"), nullptr);
  EXPECT_EQ(st.metadata().at("note"), "round trip");
  // The header is padded so the data section starts 8-aligned.
  const auto bytes = read_bytes(path);
  uint64_t n;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ((8 + n) % 8, 0u);
}

TEST(SafeTensorsTest, ReadsTheReferenceWritersLayout) {
  // {"a": F32 [2]} exactly as Python's safetensors writes it.
  const std::string header = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  auto img = image(header, 8);
  const float vals[2] = {1.5f, -2.0f};
  std::memcpy(img.data() + 8 + header.size(), vals, 8);
  const auto st = SafeTensors::parse(img, "ref.safetensors");
  float got[2];
  std::memcpy(got, st.find("a")->data, 8);
  EXPECT_EQ(got[0], 1.5f);
  EXPECT_EQ(got[1], -2.0f);
}

TEST(SafeTensorsTest, TruncationAtEveryByteIsACleanError) {
  const auto bytes = read_bytes(sample_file(temp_dir("st_trunc")));
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    const std::string msg = error_of(std::span(bytes.data(), cut));
    EXPECT_FALSE(msg.empty()) << "accepted a file truncated to " << cut << " bytes";
    EXPECT_NE(msg.find("t.safetensors"), std::string::npos) << msg;
  }
  EXPECT_EQ(error_of(bytes), "");
}

TEST(SafeTensorsTest, MalformedHeadersNameTheProblem) {
  struct Case {
    std::string header;
    size_t data;
    std::vector<std::string> expected;
  };
  const std::vector<Case> cases = {
      {R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}})", 8, {"tensor 'w'", "exceed the data section of 8"}},
      {R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,8]}})", 16, {"tensor 'w'", "span 8 bytes, expected 16", "[4]"}},
      {R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", 16, {"tensor 'w'", "end before begin"}},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
       16, {"'a'", "'b'", "overlap"}},
      {R"({"w":{"dtype":"Q9","shape":[2],"data_offsets":[0,8]}})", 8, {"tensor 'w'", "\"Q9\""}},
      {R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8, {"tensor 'w'", "non-negative"}},
      {R"({"w":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})", 8, {"tensor 'w'", "non-negative integers"}},
      {R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"w":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
       16, {"'w'", "twice"}},
      {R"([1,2,3])", 0, {"expected a JSON object"}},
      {R"({"w":{"dtype":"F32","shape":[2]}})", 8, {"tensor 'w'", "data_offsets"}},
      {R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"extra":1}})", 8, {"tensor 'w'", "unknown field 'extra'"}},
      {R"({"w":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,8]}})", 8, {"tensor 'w'", "too large"}},
      {R"({"__metadata__":{"k":3}})", 0, {"__metadata__", "expected a string"}},
      {R"({"w": )", 0, {"not valid JSON"}},
  };
  for (const auto& c : cases) {
    const std::string msg = error_of(image(c.header, c.data));
    ASSERT_FALSE(msg.empty()) << "accepted: " << c.header;
    EXPECT_NE(msg.find("t.safetensors"), std::string::npos) << msg;
    for (const auto& s : c.expected) EXPECT_NE(msg.find(s), std::string::npos) << "'" << s << "' not in: " << msg;
  }
}

TEST(SafeTensorsTest, HeaderLengthsBeyondTheFile) {
  for (uint64_t n : {uint64_t(100), ~uint64_t(0), uint64_t(1) << 63}) {
    std::vector<std::byte> img(16, std::byte{'{'});
    for (int i = 0; i < 8; ++i) img[size_t(i)] = std::byte((n >> (8 * i)) & 0xff);
    const std::string msg = error_of(img);
    EXPECT_NE(msg.find("exceeds the file size"), std::string::npos) << msg;
  }
}

TEST(SafeTensorsTest, RandomByteFlipsNeverCrash) {
  const auto good = read_bytes(sample_file(temp_dir("st_flip")));
  uint64_t state = 7;
  int rejected = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    auto bytes = good;
    for (int f = 0; f < 1 + trial % 4; ++f) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      const size_t at = size_t(state >> 33) % std::min<size_t>(bytes.size(), 8 + 300);
      bytes[at] = std::byte(state >> 24);
    }
    try {
      const auto st = SafeTensors::parse(bytes, "t.safetensors");
      for (const auto& t : st.tensors()) ASSERT_LE(t.data + t.nbytes(), bytes.data() + bytes.size());
    } catch (const Error&) {
      ++rejected;
    }
  }
  EXPECT_GT(rejected, 1000);
}

TEST(SafeTensorsTest, AtomicWriteReplacesAndLeavesNoTemporaryFile) {
  const std::string dir = temp_dir("st_atomic");
  sample_file(dir);
  const std::vector<float> one = {9};
  io::write_safetensors(dir + "/sample.safetensors", {{"only", DType::f32, {1}, std::as_bytes(std::span(one))}});
  EXPECT_EQ(SafeTensors::open(dir + "/sample.safetensors").tensors().size(), 1u);
  for (const auto& e : fs::directory_iterator(dir))
    EXPECT_EQ(e.path().filename().string().find(".tmp."), std::string::npos) << e.path();
}

TEST(SafeTensorsTest, WriterRejectsBadInputsAndMissingDirectories) {
  const std::string dir = temp_dir("st_wbad");
  const std::vector<float> two = {1, 2};
  EXPECT_THROW(io::write_safetensors(dir + "/x.safetensors", {{"a", DType::f32, {3}, std::as_bytes(std::span(two))}}), Error);
  EXPECT_THROW(io::write_safetensors(dir + "/x.safetensors", {{"a", DType::f32, {2}, std::as_bytes(std::span(two))},
                                                               {"a", DType::f32, {2}, std::as_bytes(std::span(two))}}),
               Error);
  try {
    io::write_safetensors(dir + "/no/such/dir/x.safetensors", {});
    FAIL() << "wrote into a missing directory";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no/such/dir"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(dir + "/x.safetensors"));
}

TEST(MappedFileTest, MissingFileAndEmptyFile) {
  const std::string dir = temp_dir("mf");
  try {
    io::MappedFile::open(dir + "/missing.bin");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing.bin"), std::string::npos);
  }
  std::ofstream(dir + "/empty.bin").close();
  EXPECT_EQ(io::MappedFile::open(dir + "/empty.bin")->bytes().size(), 0u);
  EXPECT_NE(error_of({}).find("at least 8"), std::string::npos);
}

}  // namespace
}  // namespace tpp::test
