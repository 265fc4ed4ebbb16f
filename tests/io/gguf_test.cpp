// GGUF reading and writing: the committed files written by an independent
// writer (tools/golden/gen_gguf.py) parse with the expected metadata and
// tensors; what tpp writes reads back; and every kind of damage to a header
// field is a tpp::Error naming the file and the field, never a crash.
#include "tpp/io/gguf.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>

#include <gtest/gtest.h>

#include "common/test_util.h"
#include "tpp/core/error.h"

namespace tpp::io {
namespace {

using test::source_path;

std::string golden(const std::string& name) { return source_path("tests/golden/gguf/" + name + ".gguf"); }

std::vector<std::byte> read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> c((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> out(c.size());
  std::memcpy(out.data(), c.data(), c.size());
  return out;
}

std::string parse_error(std::span<const std::byte> bytes) {
  try {
    GgufFile::parse(bytes, "damaged.gguf");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(GgufTest, ReadsAnIndependentlyWrittenFile) {
  const GgufFile f = GgufFile::open(golden("llama_q8_0"));
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), 32u);
  EXPECT_EQ(f.get_string("general.architecture"), "llama");
  EXPECT_EQ(f.get_int("llama.block_count"), 2);
  EXPECT_EQ(f.get_int("llama.attention.head_count_kv"), 2);
  EXPECT_NEAR(*f.get_float("llama.attention.layer_norm_rms_epsilon"), 1e-5, 1e-12);
  EXPECT_EQ(f.get_bool("tokenizer.ggml.add_bos_token"), false);
  const auto tokens = f.get_strings("tokenizer.ggml.tokens");
  ASSERT_TRUE(tokens);
  EXPECT_EQ(tokens->size(), 67u);
  EXPECT_EQ((*tokens)[1], "t");
  EXPECT_EQ(f.get_strings("tokenizer.ggml.merges")->at(0), "t h");
  EXPECT_EQ(f.get_ints("tokenizer.ggml.token_type")->at(0), 1);
  EXPECT_EQ(f.get_ints("tokenizer.ggml.token_type")->at(19), 3);
  EXPECT_FALSE(f.get_int("llama.no_such_key"));

  const GgufTensor* q = f.find_tensor("blk.0.attn_q.weight");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->info().name, "Q8_0");
  EXPECT_EQ(q->ne, (std::vector<int64_t>{32, 32}));
  EXPECT_EQ(q->nbytes, 32u * 34u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(q->data) % 32, 0u);
  const GgufTensor* down = f.find_tensor("blk.0.ffn_down.weight");
  ASSERT_NE(down, nullptr);
  EXPECT_EQ(down->info().name, "F16") << "rows of 48 cannot be Q8_0";
  EXPECT_EQ(down->shape(), (std::vector<int64_t>{32, 48}));
  EXPECT_EQ(f.find_tensor("blk.0.attn_norm.weight")->info().name, "F32");
}

TEST(GgufTest, WrongTypedGetterNamesKeyAndTypes) {
  const GgufFile f = GgufFile::open(golden("llama_f32"));
  try {
    f.get_string("llama.block_count");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'llama.block_count': type u32, expected string"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(f.get_strings("tokenizer.ggml.token_type"), Error);
  EXPECT_THROW(f.get_floats("tokenizer.ggml.tokens"), Error);
  EXPECT_THROW(f.get_bool("general.name"), Error);
}

TEST(GgufTest, WriteThenReadRoundTrips) {
  const std::string path = test::temp_dir("gguf_rt") + "/rt.gguf";
  std::vector<float> a = test::random_floats(64, 7);
  std::vector<uint16_t> b(96, 0x3c00);  // f16 ones
  write_gguf(path,
             {{"general.architecture", gguf_string("llama")},
              {"x.count", gguf_u32(7)},
              {"x.neg", gguf_i32(-3)},
              {"x.flag", gguf_bool(false)},
              {"x.names", gguf_strings({"a", "", "ü"})},
              {"x.floats", gguf_f32s({0.5f, -2.0f})},
              {"x.ints", gguf_i32s({1, -1})}},
             {{"a", 0, {2, 32}, std::as_bytes(std::span(a))}, {"b", 1, {96}, std::as_bytes(std::span(b))}});
  const GgufFile f = GgufFile::open(path);
  EXPECT_EQ(f.keys().size(), 7u);
  EXPECT_EQ(f.keys()[1], "x.count");
  EXPECT_EQ(f.get_int("x.count"), 7);
  EXPECT_EQ(f.get_int("x.neg"), -3);
  EXPECT_EQ(f.get_bool("x.flag"), false);
  EXPECT_EQ(f.get_strings("x.names"), (std::vector<std::string>{"a", "", "ü"}));
  EXPECT_EQ(f.get_floats("x.floats"), (std::vector<double>{0.5, -2.0}));
  EXPECT_EQ(f.get_ints("x.ints"), (std::vector<int64_t>{1, -1}));
  ASSERT_EQ(f.tensors().size(), 2u);
  EXPECT_EQ(f.tensors()[0].shape(), (std::vector<int64_t>{2, 32}));
  EXPECT_EQ(std::memcmp(f.tensors()[0].data, a.data(), a.size() * 4), 0);
  EXPECT_EQ(f.tensors()[1].offset % 32, 0u);
  EXPECT_EQ(std::memcmp(f.tensors()[1].data, b.data(), b.size() * 2), 0);
  EXPECT_THROW(write_gguf(path, {}, {{"q", 8, {2, 48}, {}}}), Error) << "rows must hold whole blocks";
  EXPECT_THROW(write_gguf(path, {}, {{"q", 0, {-1, 32}, {}}}), Error) << "negative dimension";
  GgufValue mixed = gguf_i32s({1});
  mixed.items.push_back(gguf_string("two"));
  EXPECT_THROW(write_gguf(path, {{"x.mixed", mixed}}, {}), Error) << "array items of another type";

  // The writer honours general.alignment, and the reader checks offsets against it.
  write_gguf(path, {{"general.alignment", gguf_u32(64)}},
             {{"a", 0, {2, 32}, std::as_bytes(std::span(a))}, {"b", 1, {96}, std::as_bytes(std::span(b))}});
  const GgufFile g = GgufFile::open(path);
  EXPECT_EQ(g.alignment(), 64u);
  EXPECT_EQ(g.tensors()[1].offset % 64, 0u);
  EXPECT_EQ(std::memcmp(g.tensors()[1].data, b.data(), b.size() * 2), 0);
}

// An array longer than any real vocabulary is refused before it is read
// (each element would be held as a value: memory many times the file's size).
TEST(GgufTest, HugeArraysAreRefusedByName) {
  std::string head;
  auto put = [&](auto v) { head.append(reinterpret_cast<const char*>(&v), sizeof(v)); };
  put(uint32_t(0x46554747));
  put(uint32_t(3));
  put(uint64_t(0));  // tensors
  put(uint64_t(1));  // metadata
  const std::string key = "x.bytes";
  put(uint64_t(key.size()));
  head += key;
  put(uint32_t(9));  // array
  put(uint32_t(0));  // of u8
  const uint64_t n = (uint64_t(1) << 24) + 1;
  put(n);
  std::vector<std::byte> bytes(head.size() + n);
  std::memcpy(bytes.data(), head.data(), head.size());
  const std::string e = parse_error(bytes);
  EXPECT_NE(e.find("'x.bytes': array of 16777217 elements, expected at most 16777216"), std::string::npos) << e;
}

// Every truncation of a valid file is an error, never a crash (the data
// section's end included: the last tensor then runs past it).
TEST(GgufTest, EveryTruncationIsAnError) {
  const auto bytes = read_all(golden("llama_q4_0"));
  const GgufFile f = GgufFile::parse(bytes, "whole.gguf");
  uint64_t last_end = 0;
  for (const auto& t : f.tensors()) last_end = std::max<uint64_t>(last_end, uint64_t(t.data - bytes.data()) + t.nbytes);
  for (size_t n = 0; n < last_end; n += (n < 4096 ? 1 : 97)) {
    const std::string e = parse_error(std::span(bytes.data(), n));
    EXPECT_FALSE(e.empty()) << "prefix of " << n << " bytes parsed";
    if (!e.empty()) {
      EXPECT_EQ(e.rfind("damaged.gguf: ", 0), 0u) << e;
    }
  }
}

// Byte offsets of header fields in a small file written for the purpose.
struct Built {
  std::vector<std::byte> bytes;
  size_t key0_type = 0, arr_elem = 0, arr_len = 0, t_ndims = 0, t_ne0 = 0, t_type = 0, t_offset = 0,
         t2_offset = 0, align_value = 0;
};

Built build() {
  const std::string path = test::temp_dir("gguf_damage") + "/base.gguf";
  std::vector<float> a(64, 1.0f), b(32, 2.0f);
  write_gguf(path, {{"general.alignment", gguf_u32(32)}, {"k.list", gguf_i32s({1, 2, 3})}},
             {{"a", 0, {2, 32}, std::as_bytes(std::span(a))}, {"b", 0, {32}, std::as_bytes(std::span(b))}});
  Built out;
  out.bytes = read_all(path);
  // header 24; key "general.alignment" (8 + 17), type (4), u32 value (4)
  size_t p = 24 + 8 + 17;
  out.key0_type = p;
  out.align_value = p + 4;
  p += 8;
  p += 8 + 6;  // key "k.list"
  p += 4;      // type array
  out.arr_elem = p;
  out.arr_len = p + 4;
  p += 4 + 8 + 12;
  p += 8 + 1;  // name "a"
  out.t_ndims = p;
  out.t_ne0 = p + 4;
  out.t_type = p + 4 + 16;
  out.t_offset = out.t_type + 4;
  p = out.t_offset + 8 + 8 + 1;  // then "b"
  out.t2_offset = p + 4 + 8 + 4;
  return out;
}

template <class T>
void poke(std::vector<std::byte>& b, size_t at, T v) {
  std::memcpy(b.data() + at, &v, sizeof(T));
}

TEST(GgufTest, DamagedFieldsAreNamed) {
  const Built base = build();
  ASSERT_EQ(parse_error(base.bytes), "") << "the undamaged file parses";
  struct Damage {
    std::function<void(std::vector<std::byte>&)> apply;
    std::string expect;
  };
  const std::vector<Damage> cases = {
      {[](auto& b) { poke<uint32_t>(b, 0, 0x46554748); }, "expected \"GGUF\""},
      {[](auto& b) { poke<uint32_t>(b, 4, 1); }, "GGUF version 1, expected 2 or 3"},
      {[](auto& b) { poke<uint32_t>(b, 4, 0x03000000); }, "big-endian"},
      {[](auto& b) { poke<uint64_t>(b, 8, uint64_t(1) << 60); }, "tensor count"},
      {[](auto& b) { poke<uint64_t>(b, 16, uint64_t(1) << 40); }, "metadata count"},
      {[](auto& b) { poke<uint64_t>(b, 24, uint64_t(1) << 50); }, "runs past the end"},
      {[&](auto& b) { poke<uint32_t>(b, base.key0_type, 13); }, "value type 13"},
      {[&](auto& b) { poke<uint32_t>(b, base.key0_type, 5); }, "'general.alignment': type i32, expected u32"},
      {[&](auto& b) { poke<uint32_t>(b, base.align_value, 48); }, "48, expected a power of two"},
      {[&](auto& b) { poke<uint32_t>(b, base.arr_elem, 9); }, "array of arrays"},
      {[&](auto& b) { poke<uint64_t>(b, base.arr_len, uint64_t(1) << 61); }, "cannot fit"},
      {[&](auto& b) { poke<uint32_t>(b, base.t_ndims, 0); }, "0 dimensions, expected 1 to 4"},
      {[&](auto& b) { poke<uint32_t>(b, base.t_ndims, 5); }, "5 dimensions, expected 1 to 4"},
      {[&](auto& b) { poke<uint64_t>(b, base.t_ne0, uint64_t(1) << 62); }, "tensor 'a'"},
      {[&](auto& b) { poke<uint32_t>(b, base.t_type, 5); }, "GGML type 5, which tpp does not know"},
      {[&](auto& b) { poke<uint32_t>(b, base.t_type, 12); }, "not a multiple of Q4_K's block of 256"},
      {[&](auto& b) { poke<uint32_t>(b, base.t_type, 23); }, "not a multiple of IQ4_XS's block of 256"},
      {[&](auto& b) { poke<uint64_t>(b, base.t_offset, 4); }, "offset 4 is not a multiple of the alignment 32"},
      {[&](auto& b) { poke<uint64_t>(b, base.t_offset, 1 << 20); }, "of the data section, which has"},
      {[&](auto& b) { poke<uint64_t>(b, base.t2_offset, 128); }, "overlap"},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    auto bytes = base.bytes;
    cases[i].apply(bytes);
    const std::string e = parse_error(bytes);
    EXPECT_NE(e.find(cases[i].expect), std::string::npos) << "case " << i << ": got \"" << e << "\"";
    EXPECT_EQ(e.rfind("damaged.gguf: ", 0), 0u) << "case " << i << ": " << e;
  }
}

TEST(GgufTest, RepeatedKeysAndTensorNamesAreRefused) {
  const std::string dir = test::temp_dir("gguf_dup");
  std::vector<float> a(32, 1.0f);
  // The writer refuses them, so build the repeat by renaming in the bytes.
  write_gguf(dir + "/k.gguf", {{"k.aa", gguf_u32(1)}, {"k.bb", gguf_u32(2)}}, {});
  auto bytes = read_all(dir + "/k.gguf");
  const std::string text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  const size_t at = text.find("k.bb");
  ASSERT_NE(at, std::string::npos);
  std::memcpy(bytes.data() + at, "k.aa", 4);
  EXPECT_NE(parse_error(bytes).find("'k.aa': given twice"), std::string::npos) << parse_error(bytes);

  write_gguf(dir + "/t.gguf", {}, {{"x1", 0, {32}, std::as_bytes(std::span(a))}, {"x2", 0, {32}, std::as_bytes(std::span(a))}});
  bytes = read_all(dir + "/t.gguf");
  const std::string t2(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  std::memcpy(bytes.data() + t2.find("x2"), "x1", 2);
  EXPECT_NE(parse_error(bytes).find("tensor 'x1': given twice"), std::string::npos) << parse_error(bytes);
}

TEST(GgufTest, NotAFileOrNotGguf) {
  EXPECT_THROW(GgufFile::open("/nonexistent/model.gguf"), Error);
  const std::string e = [] {
    try {
      GgufFile::open(source_path("tests/golden/models/hf_llama_f32/model.safetensors"));
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  }();
  EXPECT_NE(e.find("not a GGUF file"), std::string::npos) << e;
}

}  // namespace
}  // namespace tpp::io
