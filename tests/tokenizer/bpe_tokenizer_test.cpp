// Byte-level BPE against an independent implementation (@lenml/tokenizers, a
// port of Hugging Face tokenizers; tools/golden/gen_tokenizers.mjs) on the
// real LLaMA 3, Qwen3 (byte-level) and Gemma 3 (SentencePiece-style) vocabularies (installed by scripts/get_tokenizers.sh
// into data/tokenizers/; skipped, saying so, when they are absent), over text
// with Unicode, digits, whitespace runs, contractions and special tokens.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/test_util.h"
#include "tpp/core/error.h"
#include "tpp/io/json_file.h"
#include "tpp/tokenizer/bpe_tokenizer.h"

namespace tpp::test {
namespace {

class BpeGoldenTest : public ::testing::TestWithParam<std::string> {};

TEST_P(BpeGoldenTest, IdsMatchTheReferenceAndDecodeRoundTrips) {
  const std::string dir = source_path("data/tokenizers/" + GetParam());
  if (!std::filesystem::exists(dir + "/tokenizer.json"))
    GTEST_SKIP() << dir << "/tokenizer.json is absent: run scripts/get_tokenizers.sh";
  const BpeTokenizer tok = BpeTokenizer::load(dir);
  const auto golden = io::read_json_file(source_path("tests/golden/tokenizers/" + GetParam() + ".json"));
  int checked = 0;
  for (const auto& c : golden["cases"]) {
    const std::string text = c["text"].get<std::string>();
    const auto expected = c["ids"].get<std::vector<int32_t>>();
    const auto ids = tok.encode(text, c["add_special"].get<bool>(), true);
    EXPECT_EQ(ids, expected) << "text: " << text;
    EXPECT_EQ(tok.decode(tok.encode(text, false, false)), text) << "decode(encode(text)) differs";
    ++checked;
  }
  EXPECT_GE(checked, 20);
  // Without parse_special, special-token text is ordinary text.
  const auto plain = tok.encode("<|im_start|>", false, false);
  EXPECT_GT(plain.size(), 1u);
  EXPECT_EQ(tok.decode(plain), "<|im_start|>");
}

INSTANTIATE_TEST_SUITE_P(Families, BpeGoldenTest, ::testing::Values("llama3", "qwen3", "gemma3"),
                         [](const auto& info) { return info.param; });

void write(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

// A hand-made vocabulary: merges apply by rank, and the template adds a BOS.
TEST(BpeTokenizerTest, MergesByRankAndAddsTheTemplate) {
  const std::string dir = temp_dir("bpe_small");
  write(dir + "/tokenizer.json", R"({
    "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "c": 2, "ab": 3, "bc": 4, "abc": 5, "Ġ": 6, "Ġa": 7},
              "merges": ["b c", "a b", "a bc", "Ġ a"]},
    "added_tokens": [{"id": 8, "content": "<s>", "special": true}],
    "normalizer": null,
    "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},
    "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>"}}, {"Sequence": {"id": "A"}}]},
    "decoder": {"type": "ByteLevel"}})");
  const BpeTokenizer tok = BpeTokenizer::load(dir);
  EXPECT_EQ(tok.encode("abc", false), (std::vector<int32_t>{5}));  // b c first, then a bc
  EXPECT_EQ(tok.encode("abc a", true), (std::vector<int32_t>{8, 5, 7}));
  EXPECT_EQ(tok.decode({8, 5, 7}), "<s>abc a");
}

TEST(BpeTokenizerTest, UnsupportedOrMalformedFilesAreRefusedByName) {
  const std::string dir = temp_dir("bpe_bad");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"model": {"type": "Unigram", "vocab": []}})", "model.type"},
      {R"({"model": {"type": "BPE", "byte_fallback": true, "vocab": {}, "merges": []}})", "byte_fallback"},
      {R"({"model": {"type": "BPE", "vocab": {"a": -1}, "merges": []}})", "model.vocab['a']"},
      {R"({"model": {"type": "BPE", "vocab": {}, "merges": [3]}})", "model.merges[0]"},
      {R"({"model": {"type": "BPE", "vocab": {}, "merges": []}, "normalizer": {"type": "NFKD"},
           "pre_tokenizer": {"type": "ByteLevel"}})", "normalizer"},
      {R"({"model": {"type": "BPE", "vocab": {}, "merges": []}, "normalizer": null,
           "pre_tokenizer": {"type": "Metaspace"}})", "Metaspace"},
      {R"({"model": {"type": "BPE", "vocab": {}, "merges": []}, "normalizer": null,
           "pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "(["},
           "behavior": "Isolated"}]}})", "regex"},
      {R"({"model": )", "malformed JSON"},
  };
  for (const auto& [text, expected] : cases) {
    write(dir + "/tokenizer.json", text);
    try {
      BpeTokenizer::load(dir);
      ADD_FAILURE() << "accepted: " << text;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("tokenizer.json"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace tpp::test
