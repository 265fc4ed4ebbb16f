// safetensors: round trips, byte-exact files of the published format, and
// corruption of every kind refused with a tpp::Error that names the file and
// the tensor or field; never a crash. Atomic writes leave no temporary file.
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include <gtest/gtest.h>

#include "common/test_util.h"
#include "tpp/core/error.h"
#include "tpp/io/safetensors.h"

namespace tpp::test {
namespace {

namespace fs = std::filesystem;
using io::SafeTensors;
using io::TensorToWrite;

std::vector<std::byte> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> c((std::istreambuf_iterator<char>(in)), {});
  std::vector<std::byte> out(c.size());
  if (!c.empty()) std::memcpy(out.data(), c.data(), c.size());
  return out;
}

void write_bytes(const std::string& path, std::span<const std::byte> bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

std::vector<std::byte> bytes_of(std::string_view s) {
  std::vector<std::byte> out(s.size());
  if (!s.empty()) std::memcpy(out.data(), s.data(), s.size());
  return out;
}

std::string text_of(std::span<const std::byte> b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

// An image with the given length prefix, header text and zeroed data bytes.
std::vector<std::byte> image(const std::string& header, size_t data_bytes, uint64_t n) {
  std::vector<std::byte> out(8 + header.size() + data_bytes);
  for (int i = 0; i < 8; ++i) out[size_t(i)] = std::byte((n >> (8 * i)) & 0xff);
  if (!header.empty()) std::memcpy(out.data() + 8, header.data(), header.size());
  return out;
}
std::vector<std::byte> image(const std::string& header, size_t data_bytes) {
  return image(header, data_bytes, header.size());
}

uint64_t header_length(std::span<const std::byte> b) {
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | uint64_t(b[size_t(i)]);
  return n;
}

// The message of the tpp::Error that parsing throws; "" when it parses. Any
// other exception escapes and fails the test.
std::string error_of(std::span<const std::byte> bytes, const std::string& name = "t.safetensors") {
  try {
    SafeTensors::parse(bytes, name);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

template <class T>
std::span<const std::byte> as_bytes_of(const std::vector<T>& v) {
  return std::as_bytes(std::span(v));
}

void expect_no_temporary_files(const std::string& dir) {
  for (const auto& e : fs::directory_iterator(dir))
    EXPECT_EQ(e.path().filename().string().find(".tmp."), std::string::npos) << "left behind: " << e.path();
}

// Four tensors (a scalar and a zero-size one among them) and metadata.
std::string sample_file(const std::string& dir) {
  static const std::vector<float> a = {1, 2, 3, 4, 5, 6};
  static const std::vector<uint16_t> b = {0x3f80, 0x4000, 0xc040};
  static const std::vector<int32_t> s = {42};
  const std::string path = dir + "/sample.safetensors";
  io::write_safetensors(path,
                        {{"a", DType::f32, {2, 3}, as_bytes_of(a)},
                         {"b.weight", DType::bf16, {3}, as_bytes_of(b)},
                         {"scalar", DType::i32, {}, as_bytes_of(s)},
                         {"empty", DType::f16, {0, 4}, {}}},
                        {{"format", "pt"}, {"note", "round trip"}});
  return path;
}

TEST(SafeTensorsTest, RoundTripsEveryDTypeAndShapeInOrder) {
  const std::string dir = temp_dir("st_rt");
  const auto f32 = random_floats(6, 1);
  const std::vector<uint16_t> f16 = {0x3c00, 0xc000, 0x7bff, 0x0001, 0x8000};
  const std::vector<uint16_t> bf16 = {0x3f80, 0x4000, 0xc040, 0x7f80, 0x0000, 0xffff};
  const std::vector<double> f64 = {3.141592653589793, -1e300};
  const std::vector<int32_t> i32 = {-7};
  const std::vector<int64_t> i64 = {int64_t(1) << 62};
  const std::vector<uint8_t> u8 = {0, 1, 2, 253, 254, 255, 7};  // odd size: later tensors unaligned
  const std::vector<TensorToWrite> in = {
      {"z.f32", DType::f32, {2, 3}, as_bytes_of(f32)},   // not sorted by name: order must be kept
      {"u8", DType::u8, {7}, as_bytes_of(u8)},
      {"f16", DType::f16, {5}, as_bytes_of(f16)},
      {"bf16", DType::bf16, {3, 1, 2}, as_bytes_of(bf16)},
      {"f64", DType::f64, {2}, as_bytes_of(f64)},
      {"scalar.i32", DType::i32, {}, as_bytes_of(i32)},
      {"i64", DType::i64, {1, 1}, as_bytes_of(i64)},
      {"empty.f16", DType::f16, {0, 4}, {}},
      {"empty.u8", DType::u8, {0}, {}},
      {"model.layers.0.self_attn.q_proj.weight", DType::f32, {1}, std::as_bytes(std::span(f32).first(1))},
  };
  const std::string path = dir + "/all.safetensors";
  io::write_safetensors(path, in);
  const auto st = SafeTensors::open(path);
  EXPECT_EQ(st.path(), path);
  EXPECT_TRUE(st.metadata().empty());
  ASSERT_EQ(st.tensors().size(), in.size());
  uint64_t offset = 0;
  for (size_t i = 0; i < in.size(); ++i) {
    const auto& t = st.tensors()[i];
    SCOPED_TRACE(in[i].name);
    EXPECT_EQ(t.name, in[i].name);  // header order is the given order
    EXPECT_EQ(t.dtype, in[i].dtype);
    EXPECT_EQ(t.shape, in[i].shape);
    EXPECT_EQ(t.begin, offset);  // packed contiguously in order
    EXPECT_EQ(t.nbytes(), in[i].bytes.size());
    EXPECT_EQ(uint64_t(t.numel()) * uint64_t(dtype_size(t.dtype)), t.nbytes());
    if (t.nbytes() > 0) {
      EXPECT_EQ(std::memcmp(t.data, in[i].bytes.data(), t.nbytes()), 0);
    }
    EXPECT_EQ(st.find(in[i].name), &t);
    offset = t.end;
  }
  EXPECT_EQ(st.find("scalar.i32")->numel(), 1);
  EXPECT_TRUE(st.find("scalar.i32")->shape.empty());
  EXPECT_EQ(st.find("empty.f16")->numel(), 0);
  EXPECT_EQ(st.find("nope"), nullptr);
  // Data after the odd-sized u8 tensor is unaligned; memcpy reads it.
  const auto* f64_entry = st.find("f64");
  double d[2];
  std::memcpy(d, f64_entry->data, sizeof d);
  EXPECT_EQ(d[0], f64[0]);
  EXPECT_EQ(d[1], f64[1]);
  EXPECT_NE(f64_entry->begin % 8, 0u);
}

TEST(SafeTensorsTest, RoundTripsMetadata) {
  const std::string dir = temp_dir("st_meta");
  const std::map<std::string, std::string> meta = {
      {"format", "pt"}, {"empty", ""}, {"quote\"and\\slash", "line\nbreak\ttab"}, {"unicode \xc3\xbc", "\xe2\x82\xac"}};
  const std::vector<float> one = {1};
  io::write_safetensors(dir + "/m.safetensors", {{"w", DType::f32, {1}, as_bytes_of(one)}}, meta);
  const auto st = SafeTensors::open(dir + "/m.safetensors");
  EXPECT_EQ(st.metadata(), meta);
  EXPECT_EQ(st.tensors().size(), 1u);
  // Metadata only, no tensors.
  io::write_safetensors(dir + "/only.safetensors", {}, meta);
  EXPECT_EQ(SafeTensors::open(dir + "/only.safetensors").metadata(), meta);
  EXPECT_TRUE(SafeTensors::open(dir + "/only.safetensors").tensors().empty());
  // No metadata: no __metadata__ entry at all.
  io::write_safetensors(dir + "/none.safetensors", {{"w", DType::f32, {1}, as_bytes_of(one)}});
  EXPECT_EQ(text_of(read_bytes(dir + "/none.safetensors")).find("__metadata__"), std::string::npos);
}

TEST(SafeTensorsTest, HeaderIsCompactJsonPaddedWithSpacesToEightBytes) {
  const std::string dir = temp_dir("st_pad");
  const std::vector<uint8_t> one = {9};
  for (size_t len = 1; len <= 16; ++len) {
    const std::string name(len, 'n');
    io::write_safetensors(dir + "/p.safetensors", {{name, DType::u8, {1}, as_bytes_of(one)}});
    const auto bytes = read_bytes(dir + "/p.safetensors");
    const uint64_t n = header_length(bytes);
    ASSERT_EQ(n % 8, 0u) << "name length " << len;
    ASSERT_EQ(bytes.size(), 8 + n + 1);
    const std::string header = text_of(std::span(bytes).subspan(8, n));
    const std::string json = fmt::format(R"({{"{}":{{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}}})", name);
    EXPECT_EQ(header, json + std::string(n - json.size(), ' '));
    EXPECT_LT(n - json.size(), 8u);
  }
}

// huggingface/safetensors bindings/python/tests/test_simple.py, test_serialization:
// save({"test": np.zeros((2, 2), dtype=np.int32)}) produces exactly these bytes.
const std::string kReferenceHeader = R"({"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}})";

TEST(SafeTensorsTest, WriterMatchesTheReferenceWriterByteForByte) {
  std::string expected = std::string("@\0\0\0\0\0\0\0", 8) + kReferenceHeader + "    " + std::string(16, '\0');
  ASSERT_EQ(expected.size(), 8u + 64 + 16);
  const std::vector<int32_t> zeros(4, 0);
  const std::string path = temp_dir("st_ref") + "/ref.safetensors";
  io::write_safetensors(path, {{"test", DType::i32, {2, 2}, as_bytes_of(zeros)}});
  EXPECT_EQ(text_of(read_bytes(path)), expected);
  const auto st = SafeTensors::parse(bytes_of(expected), "ref.safetensors");
  ASSERT_EQ(st.tensors().size(), 1u);
  EXPECT_EQ(st.tensors()[0].shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(st.tensors()[0].dtype, DType::i32);
}

TEST(SafeTensorsTest, ReadsFilesOfThePublishedFormat) {
  {  // {"a": F32 [2]}, built byte by byte: u64 LE length, JSON, spaces to 8, data.
    const std::string header = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
    ASSERT_EQ(header.size(), 54u);
    std::vector<std::byte> img = {std::byte{56}, {}, {}, {}, {}, {}, {}, {}};
    for (char c : header + "  ") img.push_back(std::byte(c));
    for (uint8_t b : {0x00, 0x00, 0xc0, 0x3f, 0x00, 0x00, 0x00, 0xc0}) img.push_back(std::byte{b});  // 1.5f, -2.0f
    const auto st = SafeTensors::parse(img, "a.safetensors");
    ASSERT_EQ(st.tensors().size(), 1u);
    const auto* a = st.find("a");
    ASSERT_NE(a, nullptr);
    EXPECT_EQ(a->shape, (std::vector<int64_t>{2}));
    float got[2];
    std::memcpy(got, a->data, 8);
    EXPECT_EQ(got[0], 1.5f);
    EXPECT_EQ(got[1], -2.0f);
  }
  {  // test_simple.py, test_deserialization_metadata: a 102-byte header, so the
     // data section starts unaligned (file offset 110); it must still be read.
    const std::string serialized =
        std::string("f\0\0\0\0\0\0\0", 8) +
        R"({"__metadata__":{"framework":"pt"},"test1":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}})" +
        "       " + std::string(16, '\0');
    const auto bytes = bytes_of(serialized);
    const auto st = SafeTensors::parse(bytes, "meta.safetensors");
    EXPECT_EQ(st.metadata(), (std::map<std::string, std::string>{{"framework", "pt"}}));
    ASSERT_EQ(st.tensors().size(), 1u);
    EXPECT_EQ(st.tensors()[0].name, "test1");
    EXPECT_EQ(st.tensors()[0].data, bytes.data() + 110);
  }
}

TEST(SafeTensorsTest, AcceptsUnalignedDataGapsAndAnyOffsetOrder) {
  // 'b' listed first but stored second; 'a' starts at an odd offset; a gap
  // before it and trailing bytes after; a zero-size tensor inside 'a's range.
  const std::string header =
      R"({"b":{"dtype":"F32","shape":[1],"data_offsets":[9,13]},)"
      R"("a":{"dtype":"F32","shape":[2],"data_offsets":[1,9]},)"
      R"("e":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}})";
  auto img = image(header, 16);
  const float vals[3] = {1.25f, -3.5f, 7.0f};
  std::memcpy(img.data() + 8 + header.size() + 1, vals, sizeof vals);
  const auto st = SafeTensors::parse(img, "u.safetensors");
  ASSERT_EQ(st.tensors().size(), 3u);
  EXPECT_EQ(st.tensors()[0].name, "b");
  EXPECT_EQ(st.tensors()[1].name, "a");
  EXPECT_EQ(st.tensors()[2].name, "e");
  float a[2], b;
  std::memcpy(a, st.find("a")->data, 8);
  std::memcpy(&b, st.find("b")->data, 4);
  EXPECT_EQ(a[0], 1.25f);
  EXPECT_EQ(a[1], -3.5f);
  EXPECT_EQ(b, 7.0f);
  // An empty header object is a valid file with no tensors.
  EXPECT_TRUE(SafeTensors::parse(image("{}", 0), "e.safetensors").tensors().empty());
}

TEST(SafeTensorsTest, ErrorMessageNamesFileTensorExpectedAndActual) {
  const std::string header =
      R"({"blk.0.attn_q.weight":{"dtype":"F32","shape":[4,8],"data_offsets":[0,100]}})";
  EXPECT_EQ(error_of(image(header, 128), "model.safetensors"),
            "model.safetensors: tensor 'blk.0.attn_q.weight': data_offsets [0, 100] span 100 bytes, "
            "expected 128 (shape [4, 8] x F32)");
}

TEST(SafeTensorsTest, TruncationAtEveryByteIsACleanError) {
  const auto bytes = read_bytes(sample_file(temp_dir("st_trunc")));
  const uint64_t data_start = 8 + header_length(bytes);
  ASSERT_LT(data_start, bytes.size());
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    const std::string msg = error_of(std::span(bytes.data(), cut));
    ASSERT_FALSE(msg.empty()) << "accepted a file truncated to " << cut << " bytes";
    EXPECT_EQ(msg.rfind("t.safetensors: ", 0), 0u) << msg;
    if (cut < 8) {
      EXPECT_NE(msg.find("expected at least 8"), std::string::npos) << msg;
    } else if (cut < data_start) {
      EXPECT_NE(msg.find("exceeds the file size"), std::string::npos) << msg;
    } else {  // a tensor's bytes are cut off: the message names it
      EXPECT_NE(msg.find("tensor '"), std::string::npos) << msg;
      EXPECT_NE(msg.find("exceed the data section"), std::string::npos) << msg;
    }
  }
  EXPECT_EQ(error_of(bytes), "");
}

TEST(SafeTensorsTest, MalformedHeadersNameTheProblem) {
  struct Case {
    std::string header;
    size_t data;
    std::vector<std::string> expected;  // substrings of the message
  };
  const std::string deep = R"({"w":)" + std::string(100000, '[');
  const std::vector<Case> cases = {
      // offsets
      {R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}})", 8,
       {"tensor 'w'", "data_offsets [0, 16] exceed the data section of 8 bytes"}},
      {R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[18446744073709551615,18446744073709551615]}})", 8,
       {"tensor 'w'", "exceed the data section of 8"}},
      {R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,8]}})", 16,
       {"tensor 'w'", "span 8 bytes, expected 16", "shape [4] x F32"}},
      {R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", 16, {"tensor 'w'", "[8, 0]", "end before begin"}},
      {R"({"w":{"dtype":"F32","shape":[2]}})", 8, {"tensor 'w'", "field 'data_offsets' is missing"}},
      {R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", 8, {"tensor 'w'", "'data_offsets'", "[0]"}},
      {R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8,16]}})", 8, {"tensor 'w'", "'data_offsets'"}},
      {R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}})", 8, {"tensor 'w'", "'data_offsets'", "[-8,0]"}},
      {R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8.0]}})", 8, {"tensor 'w'", "'data_offsets'"}},
      {R"({"w":{"dtype":"F32","shape":[2],"data_offsets":"0-8"}})", 8, {"tensor 'w'", "'data_offsets'"}},
      // overlap: adjacent in the file, apart in the file, one inside another
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
       16, {"tensors 'a'", "'b'", "[0, 8]", "[4, 12]", "overlap"}},
      {R"({"b":{"dtype":"U8","shape":[4],"data_offsets":[4,8]},"c":{"dtype":"U8","shape":[4],"data_offsets":[8,12]},)"
       R"("a":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}})",
       16, {"'a'", "'b'", "overlap"}},
      {R"({"big":{"dtype":"U8","shape":[16],"data_offsets":[0,16]},"in":{"dtype":"U8","shape":[2],"data_offsets":[4,6]}})",
       16, {"'big'", "'in'", "overlap"}},
      {R"({"x":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"y":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}})",
       16, {"'x'", "'y'", "overlap"}},
      // dtype
      {R"({"w":{"dtype":"Q9","shape":[2],"data_offsets":[0,8]}})", 8, {"tensor 'w'", "dtype \"Q9\"", "F32"}},
      {R"({"w":{"dtype":"f32","shape":[2],"data_offsets":[0,8]}})", 8, {"tensor 'w'", "dtype \"f32\""}},
      {R"({"w":{"dtype":4,"shape":[2],"data_offsets":[0,8]}})", 8, {"tensor 'w'", "field 'dtype'", "expected a string"}},
      {R"({"w":{"shape":[2],"data_offsets":[0,8]}})", 8, {"tensor 'w'", "field 'dtype' is missing"}},
      // shape
      {R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8, {"tensor 'w'", "shape [-2]", "non-negative"}},
      {R"({"w":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})", 8, {"tensor 'w'", "non-negative integers"}},
      {R"({"w":{"dtype":"F32","shape":[1,"2"],"data_offsets":[0,8]}})", 8, {"tensor 'w'", "dimension 1"}},
      {R"({"w":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})", 8, {"tensor 'w'", "non-negative integers"}},
      {R"({"w":{"dtype":"F32","shape":[-0],"data_offsets":[0,0]}})", 0, {"tensor 'w'", "non-negative integers"}},
      {R"({"w":{"dtype":"F32","shape":2,"data_offsets":[0,8]}})", 8, {"tensor 'w'", "field 'shape'", "expected an array"}},
      {R"({"w":{"dtype":"F32","data_offsets":[0,8]}})", 8, {"tensor 'w'", "field 'shape' is missing"}},
      {R"({"w":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,8]}})", 8, {"tensor 'w'", "too large"}},
      {R"({"w":{"dtype":"F32","shape":[18446744073709551615],"data_offsets":[0,8]}})", 8, {"tensor 'w'", "too large"}},
      {R"({"w":{"dtype":"F32","shape":[18446744073709551616],"data_offsets":[0,8]}})", 8, {"tensor 'w'", "non-negative integers"}},
      {R"({"w":{"dtype":"F32","shape":[4611686018427387904,4,0],"data_offsets":[0,0]}})", 0, {"tensor 'w'", "too large"}},
      {R"({"w":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,8]}})", 8,
       {"tensor 'w'", "4611686018427387904 elements x 8 bytes overflows"}},
      // entries
      {R"({"w":[1,2]})", 0, {"tensor 'w'", "expected an object"}},
      {R"({"w":null})", 0, {"tensor 'w'", "expected an object"}},
      {R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"extra":1}})", 8, {"tensor 'w'", "unknown field 'extra'"}},
      // duplicates: tensor names, fields, metadata keys
      {R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"w":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
       16, {"tensor 'w'", "appears twice"}},
      {R"({"w":{"dtype":"F32","shape":[2],"dtype":"F32","data_offsets":[0,8]}})", 8,
       {"tensor 'w'", "field 'dtype' appears twice"}},
      {R"({"__metadata__":{"k":"1","k":"2"}})", 0, {"__metadata__ key 'k' appears twice"}},
      {R"({"__metadata__":{},"__metadata__":{}})", 0, {"'__metadata__' appears twice"}},
      // the header itself
      {R"([1,2,3])", 0, {"header is an array", "expected a JSON object"}},
      {R"("text")", 0, {"header is a string", "expected a JSON object"}},
      {R"(12)", 0, {"expected a JSON object"}},
      {R"(null)", 0, {"expected a JSON object"}},
      {"", 0, {"header is not valid JSON"}},
      {R"({"w": )", 0, {"header is not valid JSON"}},
      {R"({} x)", 0, {"header is not valid JSON"}},
      {"{\"w\xff\":1}", 0, {"header is not valid JSON", "\\xff"}},
      {std::string("{}\0\0", 4), 0, {"header byte 2 (file offset 10) is NUL"}},
      {std::string("{\"a\0\":1}", 8), 0, {"header byte 3 (file offset 11) is NUL"}},
      {deep, 0, {"tensor 'w'", "nests deeper than 8"}},
      {std::string(100000, '['), 0, {"nests deeper than 8"}},
      // metadata
      {R"({"__metadata__":{"k":3}})", 0, {"__metadata__ key 'k'", "expected a string"}},
      {R"({"__metadata__":{"k":{"nested":"x"}}})", 0, {"__metadata__ key 'k'", "expected a string"}},
      {R"({"__metadata__":["a"]})", 0, {"'__metadata__' is an array", "expected an object"}},
      {R"({"__metadata__":null})", 0, {"'__metadata__'", "expected an object"}},
      // hostile names are escaped in messages
      {"{\"a\\u001b[2Jb\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,9]}}", 9, {"tensor 'a\\x1b[2Jb'"}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.header.substr(0, 120));
    const std::string msg = error_of(image(c.header, c.data));
    ASSERT_FALSE(msg.empty()) << "accepted";
    EXPECT_EQ(msg.rfind("t.safetensors: ", 0), 0u) << msg;
    for (const auto& s : c.expected) EXPECT_NE(msg.find(s), std::string::npos) << "'" << s << "' not in: " << msg;
    for (char ch : msg) EXPECT_TRUE(ch == '\n' || uint8_t(ch) >= 0x20) << "control byte in: " << msg;
  }
}

TEST(SafeTensorsTest, HeaderLengthsBeyondTheFile) {
  const std::string header = R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})";
  const uint64_t one_over = header.size() + 2;  // file holds header.size() + 1 bytes after the prefix
  for (uint64_t n : {one_over, uint64_t(100), ~uint64_t(0), ~uint64_t(0) - 7, uint64_t(1) << 63}) {
    const std::string msg = error_of(image(header, 1, n));
    EXPECT_NE(msg.find(fmt::format("t.safetensors: header length {} exceeds the file size {}", n,
                                   8 + header.size() + 1)),
              std::string::npos)
        << msg;
  }
  // One byte more than the header: the zeroed data byte is read as header text.
  EXPECT_NE(error_of(image(header, 1, header.size() + 1)).find("is NUL"), std::string::npos);
  EXPECT_EQ(error_of(image(header, 1, header.size())), "");
}

TEST(SafeTensorsTest, HeaderLengthAboveTheLimit) {
  // A sparse file of 100 MB + 9: the length is checked before the header is read.
  const std::string path = temp_dir("st_limit") + "/huge.safetensors";
  const uint64_t n = 100'000'001;
  write_bytes(path, image("", 0, n));
  fs::resize_file(path, 8 + n);
  try {
    SafeTensors::open(path);
    FAIL() << "accepted a header of " << n << " bytes";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path + ": header length 100000001 exceeds the limit of 100000000"),
              std::string::npos)
        << e.what();
  }
}

// Every mutated file must parse (with every tensor inside the buffer) or
// throw tpp::Error naming the file; nothing else.
void expect_parses_or_throws_error(const std::vector<std::byte>& bytes, int* rejected) {
  try {
    const auto st = SafeTensors::parse(bytes, "t.safetensors");
    const std::byte* end = bytes.data() + bytes.size();
    for (const auto& t : st.tensors()) {
      ASSERT_GE(t.data, bytes.data() + 8);
      ASSERT_LE(t.data + t.nbytes(), end);
      ASSERT_EQ(uint64_t(t.numel()) * uint64_t(dtype_size(t.dtype)), t.nbytes());
    }
  } catch (const Error& e) {
    ++*rejected;
    ASSERT_EQ(std::string(e.what()).rfind("t.safetensors: ", 0), 0u) << e.what();
  } catch (const std::exception& e) {
    FAIL() << "threw a non-tpp exception: " << e.what();
  }
}

uint64_t next(uint64_t& state) {
  state = state * 6364136223846793005ull + 1442695040888963407ull;
  return state >> 33;
}

TEST(SafeTensorsTest, RandomByteFlipsParseOrThrowError) {
  const auto good = read_bytes(sample_file(temp_dir("st_flip")));
  const size_t header_end = 8 + header_length(good);
  uint64_t state = 7;
  int rejected = 0;
  for (int trial = 0; trial < 2000; ++trial) {
    auto bytes = good;
    for (int f = 0; f < 1 + trial % 4; ++f) {
      const size_t at = next(state) % header_end;  // the length prefix and the header
      bytes[at] = std::byte(next(state));
    }
    expect_parses_or_throws_error(bytes, &rejected);
    if (HasFatalFailure()) return;
  }
  EXPECT_GT(rejected, 1000);
}

TEST(SafeTensorsTest, RandomJsonTokenMutationsParseOrThrowError) {
  // Mutations drawn from JSON's own alphabet reach deeper than random bytes.
  const auto good = read_bytes(sample_file(temp_dir("st_tok")));
  const size_t header_end = 8 + header_length(good);
  const std::string alphabet = "{}[]\",:0123456789-+.eE truefalsnul\\";
  uint64_t state = 11;
  int rejected = 0;
  for (int trial = 0; trial < 2000; ++trial) {
    auto bytes = good;
    for (int f = 0; f < 1 + trial % 3; ++f) {
      const size_t at = 8 + next(state) % (header_end - 8);
      bytes[at] = std::byte(alphabet[next(state) % alphabet.size()]);
    }
    expect_parses_or_throws_error(bytes, &rejected);
    if (HasFatalFailure()) return;
  }
  EXPECT_GT(rejected, 1000);
}

TEST(SafeTensorsTest, TensorsStayValidWhileAnyCopyLives) {
  const std::string path = sample_file(temp_dir("st_life"));
  auto st = std::make_unique<SafeTensors>(SafeTensors::open(path));
  fs::remove(path);  // the mapping outlives the directory entry
  const SafeTensors copy = *st;
  st.reset();
  float v[6];
  std::memcpy(v, copy.find("a")->data, sizeof v);
  EXPECT_EQ(v[0], 1.0f);
  EXPECT_EQ(v[5], 6.0f);
}

TEST(SafeTensorsTest, AtomicWriteReplacesAnExistingFileIntact) {
  const std::string dir = temp_dir("st_atomic");
  const std::string path = sample_file(dir);
  const std::vector<float> one = {9};
  io::write_safetensors(path, {{"only", DType::f32, {1}, as_bytes_of(one)}});
  const auto replaced = read_bytes(path);
  io::write_safetensors(dir + "/fresh.safetensors", {{"only", DType::f32, {1}, as_bytes_of(one)}});
  EXPECT_EQ(replaced, read_bytes(dir + "/fresh.safetensors"));  // nothing of the old file remains
  const auto st = SafeTensors::open(path);
  ASSERT_EQ(st.tensors().size(), 1u);
  EXPECT_TRUE(st.metadata().empty());
  expect_no_temporary_files(dir);
}

TEST(SafeTensorsTest, FailedWriteRemovesTheTemporaryFile) {
  // The target is a non-empty directory: the rename fails after the data is written.
  const std::string dir = temp_dir("st_fail");
  const std::string target = dir + "/occupied";
  fs::create_directory(target);
  write_bytes(target + "/keep", bytes_of("k"));
  const std::vector<float> one = {1};
  try {
    io::write_safetensors(target, {{"w", DType::f32, {1}, as_bytes_of(one)}});
    FAIL() << "wrote over a directory";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(target + ": rename"), std::string::npos) << e.what();
  }
  expect_no_temporary_files(dir);
  EXPECT_TRUE(fs::is_directory(target));
  EXPECT_TRUE(fs::exists(target + "/keep"));
}

TEST(SafeTensorsTest, WritingIntoAMissingDirectoryIsAClearError) {
  const std::string dir = temp_dir("st_nodir");
  const std::string path = dir + "/no/such/dir/x.safetensors";
  const std::vector<float> one = {1};
  try {
    io::write_safetensors(path, {{"w", DType::f32, {1}, as_bytes_of(one)}});
    FAIL() << "wrote into a missing directory";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind(path + ": ", 0), 0u) << msg;
    EXPECT_NE(msg.find("No such file or directory"), std::string::npos) << msg;
  }
  EXPECT_FALSE(fs::exists(dir + "/no"));
}

TEST(SafeTensorsTest, WriterRejectsBadInputs) {
  const std::string dir = temp_dir("st_wbad");
  const std::string path = dir + "/x.safetensors";
  const std::vector<float> two = {1, 2};
  struct Case {
    std::vector<TensorToWrite> tensors;
    std::map<std::string, std::string> metadata;
    std::vector<std::string> expected;
  };
  const std::vector<Case> cases = {
      {{{"a", DType::f32, {3}, as_bytes_of(two)}}, {}, {"tensor 'a'", "8 bytes given, expected 12", "[3] x F32"}},
      {{{"a", DType::f32, {2}, as_bytes_of(two)}, {"a", DType::f32, {2}, as_bytes_of(two)}},
       {},
       {"tensor 'a'", "given twice"}},
      {{{"__metadata__", DType::f32, {2}, as_bytes_of(two)}}, {}, {"'__metadata__'", "reserved"}},
      {{{"a", DType::f32, {-2}, as_bytes_of(two)}}, {}, {"tensor 'a'", "negative"}},
      {{{"a", DType::f32, {int64_t(1) << 40, int64_t(1) << 40}, as_bytes_of(two)}}, {}, {"tensor 'a'", "too large"}},
      {{{"bad\xff", DType::f32, {2}, as_bytes_of(two)}}, {}, {"tensor name", "\\xff", "not valid UTF-8"}},
      {{}, {{"k", "bad\xc3"}}, {"__metadata__ value for key 'k'", "not valid UTF-8"}},
  };
  for (const auto& c : cases) {
    try {
      io::write_safetensors(path, c.tensors, c.metadata);
      ADD_FAILURE() << "accepted: " << c.expected[0];
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_EQ(msg.rfind(path + ": ", 0), 0u) << msg;
      for (const auto& s : c.expected) EXPECT_NE(msg.find(s), std::string::npos) << "'" << s << "' not in: " << msg;
    }
  }
  EXPECT_FALSE(fs::exists(path));
  expect_no_temporary_files(dir);
}

}  // namespace
}  // namespace tpp::test
