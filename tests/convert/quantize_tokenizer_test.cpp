// tpp quantize carries a model directory's byte-level tokenizer.json into the
// GGUF file's tokenizer.ggml.* metadata: the file's tokenizer (read as tpp and
// llama.cpp read it) encodes and decodes as the tokenizer.json does, with the
// same BOS, EOS, stop ids and chat template, under llama.cpp's pre-tokenizer
// name. Real tokenizers come from data/tokenizers (scripts/get_tokenizers.sh;
// each test skips, saying so, when its files are absent); a small one written
// by the tests needs no data. Unknown pre-tokenizers and SentencePiece-style
// files are refused by name, and the check refuses a file whose tokenizer
// differs, leaving `out` as it was.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>

#include <nlohmann/json.hpp>

#include "common/test_util.h"
#include "tpp/convert/quantize.h"
#include "tpp/infer/model_text.h"
#include "tpp/io/gguf.h"
#include "tpp/io/json_file.h"
#include "tpp/model/model.h"
#include "tpp/tokenizer/gguf_write.h"

namespace tpp {
namespace {

namespace fs = std::filesystem;
using namespace test;

// What the CLI passes: one reading of the directory for the keys and the check.
convert::CarriedTokenizer carry(const std::string& dir, int64_t vocab_size) {
  auto source = std::make_shared<const GgufTokenizerSource>(dir);
  return {source->metadata(vocab_size), [source](const io::GgufFile& f) { source->check(f); }};
}
const convert::GgufTokenizerWriter kWriter = carry;

// A one-layer model of `vocab` tokens, small enough that a 150k vocabulary
// stays fast; d_model 32 so that its rows take q8_0 blocks.
void write_tiny_model(const std::string& dir, int vocab) {
  ModelConfig c;
  c.d_model = 32;
  c.n_layers = 1;
  c.n_heads = 2;
  c.n_kv_heads = {1};
  c.d_ff = 32;
  c.vocab_size = vocab;
  c.max_seq_len = 64;
  c.tie_embeddings = true;
  c.validate();
  save_model(init_model(c, 3, DType::f32), dir);
}

void copy_tokenizer(const std::string& from, const std::string& to) {
  for (const char* f : {"tokenizer.json", "tokenizer_config.json"})
    fs::copy_file(from + "/" + f, to + "/" + f, fs::copy_options::overwrite_existing);
}

const std::vector<std::string>& texts() {
  static const std::vector<std::string> t = {
      "The quick brown fox jumps over the lazy dog. It's 12:45, and we'll pay $1,234.56!",
      "  two spaces,\tone tab,\n\n\nthree newlines   and trailing   ",
      "\u4f60\u597d\uff0c\u4e16\u754c\uff01\u65e5\u672c\u8a9e\u3082 \ud55c\uad6d\uc5b4\ub3c4 caf\u00e9",
      "emoji \U0001F600\U0001F44D\U0001F3FD and a flag \U0001F1EF\U0001F1F5 \u2014 done",
      "for (int i = 0; i < 100000; ++i) { x[i] = y[i] * 3.0e-2; }",
  };
  return t;
}

// Quantizes a tiny model with `tokenizer`'s files to q8_0, then compares the
// GGUF file's tokenizer with the directory's through the model text loader.
void check_carried(const std::string& name, int vocab, const std::string& pre, const std::string& special) {
  const std::string tok = source_path("data/tokenizers/" + name);
  if (!fs::exists(tok + "/tokenizer.json"))
    GTEST_SKIP() << tok << "/tokenizer.json is absent: run scripts/get_tokenizers.sh";
  const std::string dir = temp_dir("quantize_tok_" + name);
  write_tiny_model(dir + "/m", vocab);
  copy_tokenizer(tok, dir + "/m");
  const std::string out = dir + "/m.gguf";
  convert::quantize_model(dir + "/m", out, {DType::q8_0, false}, nullptr, kWriter);

  const io::GgufFile f = io::GgufFile::open(out);
  EXPECT_EQ(f.get_string("tokenizer.ggml.model"), "gpt2");
  EXPECT_EQ(f.get_string("tokenizer.ggml.pre"), pre);
  const auto tokens = f.get_strings("tokenizer.ggml.tokens");
  const auto types = f.get_ints("tokenizer.ggml.token_type");
  ASSERT_TRUE(tokens && types);
  EXPECT_EQ(tokens->size(), size_t(vocab));
  EXPECT_EQ(types->size(), size_t(vocab));
  EXPECT_EQ(load_model(out).config.vocab_size, vocab);

  const ModelText want = load_model_text(dir + "/m"), got = load_model_text(out);
  ASSERT_TRUE(want.tokenizer && got.tokenizer);
  const int32_t special_id = want.tokenizer->token_id(special);
  ASSERT_GE(special_id, 0) << special;
  EXPECT_EQ((*tokens)[size_t(special_id)], special);
  EXPECT_EQ((*types)[size_t(special_id)], 3) << special << " is a control token";
  EXPECT_EQ((*types)[size_t(want.tokenizer->token_id("a"))], 1);

  std::vector<std::string> all = texts();
  all.push_back("before" + special + "after " + special);
  for (const auto& text : all) {
    for (bool special_text : {true, false}) {
      EXPECT_EQ(got.tokenizer->encode(text, special_text, special_text),
                want.tokenizer->encode(text, special_text, special_text))
          << name << ": " << text;
      const auto ids = got.tokenizer->encode(text, false, special_text);
      EXPECT_EQ(got.tokenizer->decode(ids), text) << name << ": round trip";
    }
  }
  EXPECT_EQ(got.tokenizer->bos_id(), want.tokenizer->bos_id());
  EXPECT_EQ(f.get_int("tokenizer.ggml.eos_token_id"), want.tokenizer->eos_id());
  for (int32_t id : want.stop_ids)
    EXPECT_NE(std::find(got.stop_ids.begin(), got.stop_ids.end(), id), got.stop_ids.end()) << name << ": stop " << id;

  const nlohmann::json config = io::read_json_file(tok + "/tokenizer_config.json");
  ASSERT_TRUE(config.contains("chat_template"));
  EXPECT_EQ(f.get_string("tokenizer.chat_template"), config["chat_template"].get<std::string>());
  ASSERT_TRUE(want.chat_template && got.chat_template);
  const std::vector<ChatMessage> chat = {{"system", "Be brief."}, {"user", "\u4f60\u597d, what's 2+2?"}};
  EXPECT_EQ(got.chat_prompt(chat), want.chat_prompt(chat)) << name << ": the rendered chat prompt";
}

TEST(QuantizeTokenizerTest, Llama3) { check_carried("llama3", 128256, "llama-bpe", "<|eot_id|>"); }
// Qwen3's model has more embedding rows than the tokenizer has ids: the rest are [PAD<id>] tokens.
TEST(QuantizeTokenizerTest, Qwen3) { check_carried("qwen3", 151936, "qwen2", "<|im_end|>"); }

TEST(QuantizeTokenizerTest, Gpt2) {
  const std::string tok = source_path("data/tokenizers/gpt2");
  if (!fs::exists(tok + "/tokenizer.json"))
    GTEST_SKIP() << tok << "/tokenizer.json is absent: run scripts/get_tokenizers.sh";
  const std::string dir = temp_dir("quantize_tok_gpt2");
  write_tiny_model(dir + "/m", 50257);
  copy_tokenizer(tok, dir + "/m");
  convert::quantize_model(dir + "/m", dir + "/m.gguf", {DType::q8_0, false}, nullptr, kWriter);
  const io::GgufFile f = io::GgufFile::open(dir + "/m.gguf");
  EXPECT_EQ(f.get_string("tokenizer.ggml.pre"), "gpt-2");
  const ModelText want = load_model_text(dir + "/m"), got = load_model_text(dir + "/m.gguf");
  for (const auto& text : texts()) EXPECT_EQ(got.tokenizer->encode(text), want.tokenizer->encode(text)) << text;
  EXPECT_FALSE(f.find("tokenizer.chat_template"));
}

// The small tokenizer every checkout has: padded to the model's 300 rows.
TEST(QuantizeTokenizerTest, SmallTokenizerIsPaddedToTheModelsVocabulary) {
  const std::string dir = temp_dir("quantize_tok_small");
  write_tiny_model(dir + "/m", 300);
  write_test_tokenizer(dir + "/m");
  convert::quantize_model(dir + "/m", dir + "/m.gguf", {DType::q8_0, false}, nullptr, kWriter);
  const io::GgufFile f = io::GgufFile::open(dir + "/m.gguf");
  EXPECT_EQ(f.get_string("tokenizer.ggml.pre"), "gpt-2");
  const auto tokens = *f.get_strings("tokenizer.ggml.tokens");
  const auto types = *f.get_ints("tokenizer.ggml.token_type");
  ASSERT_EQ(tokens.size(), 300u);
  EXPECT_EQ(tokens[258], "\u0120the");
  EXPECT_EQ(tokens[262], "<|endoftext|>");
  EXPECT_EQ(types[262], 3);
  EXPECT_EQ(tokens[263], "[PAD263]");
  EXPECT_EQ(types[263], 5);
  EXPECT_EQ(f.get_strings("tokenizer.ggml.merges")->front(), "\u0120 t");
  EXPECT_EQ(f.get_int("tokenizer.ggml.eos_token_id"), 262);
  EXPECT_EQ(f.get_bool("tokenizer.ggml.add_bos_token"), false);
  const ModelText got = load_model_text(dir + "/m.gguf");
  EXPECT_EQ(got.tokenizer->encode("the cat<|endoftext|>"), (std::vector<int32_t>{116, 257, 261, 262}));
  EXPECT_EQ(got.stop_ids, std::vector<int32_t>{262});
}

// Without the tokenizer writer, and with more token ids than embedding rows,
// the directory is refused.
TEST(QuantizeTokenizerTest, RefusesWithoutAWriterOrWithTooFewRows) {
  const std::string dir = temp_dir("quantize_tok_rows");
  write_tiny_model(dir + "/m", 260);
  write_test_tokenizer(dir + "/m");
  EXPECT_ERROR(convert::quantize_model(dir + "/m", dir + "/m.gguf", {}), "no tokenizer writer");
  EXPECT_ERROR(convert::quantize_model(dir + "/m", dir + "/m.gguf", {}, nullptr, kWriter), "vocab_size is 260");
  EXPECT_FALSE(fs::exists(dir + "/m.gguf"));
}

void edit_json(const std::string& path, const std::function<void(nlohmann::json&)>& edit) {
  nlohmann::json j = io::read_json_file(path);
  edit(j);
  std::ofstream(path) << j.dump();
}

TEST(QuantizeTokenizerTest, RefusesAPreTokenizerLlamaCppHasNoNameFor) {
  const std::string dir = temp_dir("quantize_tok_pre");
  write_tiny_model(dir + "/m", 263);
  write_test_tokenizer(dir + "/m");
  edit_json(dir + "/m/tokenizer.json", [](nlohmann::json& j) {
    j["pre_tokenizer"] = nlohmann::json::parse(R"({"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": "\\p{L}+|\\p{N}{1,5}|\\s+"}, "behavior": "Isolated", "invert": false},
        {"type": "ByteLevel", "add_prefix_space": false, "use_regex": false}]})");
  });
  std::ofstream(dir + "/m.gguf") << "precious";
  const std::string msg =
      error_message([&] { convert::quantize_model(dir + "/m", dir + "/m.gguf", {}, nullptr, kWriter); });
  EXPECT_NE(msg.find("tokenizer.ggml.pre"), std::string::npos) << msg;
  EXPECT_NE(msg.find(R"(\p{N}{1,5})"), std::string::npos) << msg;
  EXPECT_NE(msg.find("llama-bpe"), std::string::npos) << "lists the known names: " << msg;
  std::ifstream in(dir + "/m.gguf");
  std::string kept;
  in >> kept;
  EXPECT_EQ(kept, "precious");
  EXPECT_FALSE(fs::exists(dir + "/m.gguf.partial"));
}

TEST(QuantizeTokenizerTest, RefusesASentencePieceStyleTokenizerByName) {
  const std::string dir = temp_dir("quantize_tok_spm");
  write_tiny_model(dir + "/m", 8);
  std::ofstream(dir + "/m/tokenizer.json") << R"({
    "model": {"type": "BPE", "vocab": {"<unk>": 0, "\u2581": 1, "a": 2, "\u2581a": 3}, "merges": ["\u2581 a"]},
    "normalizer": {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"},
    "pre_tokenizer": null,
    "decoder": {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
    "added_tokens": []})";
  EXPECT_ERROR(convert::quantize_model(dir + "/m", dir + "/m.gguf", {}, nullptr, kWriter),
               "SentencePiece-style tokenizer.json cannot be written to GGUF yet");
  EXPECT_FALSE(fs::exists(dir + "/m.gguf"));
}

// The check is not vacuous: a file whose tokenizer merges differently (" t"
// no longer merges), or names another EOS, is refused with what differed;
// quantize then removes its staged file and leaves `out` as it was.
TEST(QuantizeTokenizerTest, CheckRefusesAFileWhoseTokenizerDiffers) {
  const std::string dir = temp_dir("quantize_tok_check");
  write_tiny_model(dir + "/m", 263);
  write_test_tokenizer(dir + "/m");
  convert::quantize_model(dir + "/m", dir + "/m.gguf", {}, nullptr, kWriter);
  const io::GgufFile f = io::GgufFile::open(dir + "/m.gguf");
  GgufTokenizerSource(dir + "/m").check(f);  // the same tokenizer passes

  const std::string json = dir + "/m/tokenizer.json";
  const std::string original = io::read_text_file(json);
  edit_json(json, [](nlohmann::json& j) { j["model"]["merges"].erase(j["model"]["merges"].begin()); });
  const std::string msg = error_message([&] { GgufTokenizerSource(dir + "/m").check(f); });
  EXPECT_NE(msg.find("encodes sample"), std::string::npos) << msg;
  EXPECT_NE(msg.find("the tokenizer.json gives"), std::string::npos) << msg;

  // Inside quantize: the staged file is removed and `out` kept.
  fs::create_directories(dir + "/other");
  fs::copy_file(json, dir + "/other/tokenizer.json");
  std::ofstream(json) << original;
  const convert::GgufTokenizerWriter mismatched = [&](const std::string& d, int64_t vocab_size) {
    auto other = std::make_shared<const GgufTokenizerSource>(dir + "/other");
    return convert::CarriedTokenizer{GgufTokenizerSource(d).metadata(vocab_size),
                                     [other](const io::GgufFile& g) { other->check(g); }};
  };
  std::ofstream(dir + "/kept.gguf") << "precious";
  EXPECT_ERROR(convert::quantize_model(dir + "/m", dir + "/kept.gguf", {}, nullptr, mismatched), "encodes sample");
  std::ifstream in(dir + "/kept.gguf");
  std::string kept;
  in >> kept;
  EXPECT_EQ(kept, "precious");
  EXPECT_FALSE(fs::exists(dir + "/kept.gguf.partial"));

  std::ofstream(dir + "/m/tokenizer_config.json") << R"({"eos_token": "Ġcat"})";
  EXPECT_ERROR(GgufTokenizerSource(dir + "/m").check(f), "EOS id 262, expected 261");
}

}  // namespace
}  // namespace tpp
