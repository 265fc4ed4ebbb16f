// The text side of a model from a GGUF file or a model directory: the GGUF
// tokenizers (byte-level BPE with merges, SentencePiece-style with scores and
// byte fallback) give the ids that tools/golden/gen_gguf.py's own tokenizers
// give; chat templates and stop tokens come from the same file.
#include "tpp/infer/model_text.h"

#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/test_util.h"
#include "tpp/core/error.h"
#include "tpp/io/gguf.h"

namespace tpp::test {
namespace {

std::string gguf(const std::string& name) { return source_path("tests/golden/gguf/" + name); }

TEST(ModelTextTest, GgufTokenizersMatchTheIndependentGoldens) {
  std::ifstream in(gguf("tokenizer_cases.json"));
  const auto j = nlohmann::json::parse(in);
  int checked = 0;
  for (const auto& c : j.at("cases")) {
    const ModelText text = load_model_text(gguf(c.at("file").get<std::string>()));
    ASSERT_TRUE(text.tokenizer) << c.at("file");
    const auto ids = text.tokenizer->encode(c.at("text").get<std::string>());
    EXPECT_EQ(ids, c.at("ids").get<std::vector<int32_t>>()) << c.at("file") << ": " << c.at("text");
    ++checked;
  }
  EXPECT_GE(checked, 9);
}

TEST(ModelTextTest, GgufStopTokensAndChatTemplate) {
  const ModelText bpe = load_model_text(gguf("qwen3_q8_0.gguf"));
  ASSERT_TRUE(bpe.tokenizer && bpe.chat_template);
  const int32_t im_end = bpe.tokenizer->token_id("<|im_end|>");
  ASSERT_GE(im_end, 0);
  EXPECT_NE(std::find(bpe.stop_ids.begin(), bpe.stop_ids.end(), im_end), bpe.stop_ids.end());
  const std::vector<ChatMessage> messages{{"user", "the cat"}};
  const auto ids = bpe.chat_prompt(messages);
  const int32_t im_start = bpe.tokenizer->token_id("<|im_start|>");
  const std::vector<int32_t> the_cat = bpe.tokenizer->encode("the cat", false);
  std::vector<int32_t> want{im_start};
  want.insert(want.end(), the_cat.begin(), the_cat.end());
  want.insert(want.end(), {im_end, im_start});
  EXPECT_EQ(ids, want) << "special-token text in the rendering becomes the tokens";

  const ModelText spm = load_model_text(gguf("tokenizer_spm.gguf"));
  ASSERT_TRUE(spm.tokenizer);
  EXPECT_EQ(spm.bos_token, "<s>");
  EXPECT_EQ(spm.eos_token, "</s>");
  EXPECT_EQ(spm.stop_ids, std::vector<int32_t>{2});
  EXPECT_EQ(spm.tokenizer->decode(spm.tokenizer->encode("the cat sat", false)), "the cat sat");

  // Without tokenizer.ggml.bos_token_id, SentencePiece's BOS is token 1 (as in
  // llama.cpp) for encoding and for the template's bos_token alike.
  const io::GgufFile f = io::GgufFile::open(gguf("tokenizer_spm.gguf"));
  std::vector<std::pair<std::string, io::GgufValue>> meta;
  for (const auto& k : f.keys())
    if (k != "tokenizer.ggml.bos_token_id") meta.emplace_back(k, *f.find(k));
  const std::string path = temp_dir("model_text_bos") + "/no_bos_id.gguf";
  io::write_gguf(path, meta, {});
  const ModelText no_id = load_model_text(path);
  EXPECT_EQ(no_id.tokenizer->bos_id(), 1);
  EXPECT_EQ(no_id.bos_token, "<s>");
}

// llama.cpp marks a vocabulary-less file with tokenizer.ggml.model "no_vocab"
// (or "none"): such a file has no tokenizer, as if the key were absent.
TEST(ModelTextTest, GgufNoVocabMarkerMeansNoTokenizer) {
  const std::string dir = temp_dir("model_text_no_vocab");
  auto name = [](const char* model) {
    return std::vector<std::pair<std::string, io::GgufValue>>{{"tokenizer.ggml.model", io::gguf_string(model)}};
  };
  for (const char* marker : {"no_vocab", "none"}) {
    const std::string path = dir + "/" + marker + ".gguf";
    io::write_gguf(path, name(marker), {});
    const ModelText t = load_model_text(path);
    EXPECT_FALSE(t.tokenizer) << marker;
    EXPECT_FALSE(t.chat_template) << marker;
  }
  const std::string other = dir + "/t5.gguf";
  io::write_gguf(other, name("t5"), {});
  EXPECT_THROW(load_model_text(other), Error) << "any other model name is still read (and refused by name)";
}

TEST(ModelTextTest, DirectoryWithoutTokenizerHasNone) {
  const ModelText t = load_model_text(source_path("tests/golden/models/hf_llama_f32"));
  EXPECT_FALSE(t.tokenizer);
  EXPECT_FALSE(t.chat_template);
  EXPECT_THROW(t.chat_prompt({}), Error);
}

// A model directory: generation_config.json's eos ids join the tokenizer's,
// and ids outside the vocabulary are refused by name.
TEST(ModelTextTest, GenerationConfigStopIds) {
  const std::string real = source_path("data/tokenizers/llama3");
  if (!std::ifstream(real + "/tokenizer.json")) GTEST_SKIP() << "data/tokenizers/llama3 not installed (scripts/get_tokenizers.sh)";
  const std::string dir = temp_dir("model_text_gencfg");
  for (const char* f : {"tokenizer.json", "tokenizer_config.json"})
    std::filesystem::copy_file(real + "/" + f, dir + "/" + f);
  std::ofstream(dir + "/generation_config.json") << R"({"bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009]})";
  const ModelText t = load_model_text(dir);
  ASSERT_TRUE(t.tokenizer && t.chat_template);
  for (int32_t id : {128001, 128008, 128009})
    EXPECT_NE(std::find(t.stop_ids.begin(), t.stop_ids.end(), id), t.stop_ids.end()) << id;
  const std::vector<ChatMessage> messages{{"system", "Be brief."}, {"user", "Hi"}};
  const auto ids = t.chat_prompt(messages);
  ASSERT_GE(ids.size(), 3u);
  EXPECT_EQ(ids[0], 128000) << "the template writes <|begin_of_text|> once";
  EXPECT_NE(ids[1], 128000);
  EXPECT_EQ(t.tokenizer->decode({ids.back()}), "\n\n");
  std::ofstream(dir + "/generation_config.json") << R"({"eos_token_id": 999999})";
  try {
    load_model_text(dir);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("generation_config.json"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tpp::test
