// tpp quantize carries a model directory's tokenizer.json into the GGUF file's
// tokenizer.ggml.* metadata: byte-level BPE as model "gpt2" under llama.cpp's
// pre-tokenizer name, SentencePiece-style BPE (LLaMA 2) as model
// "llama" with scores that merge in the order of the merge ranks. The file's
// tokenizer (read as tpp and llama.cpp read it) encodes and decodes as the
// tokenizer.json does, gives the reference ids of tests/golden/tokenizers, and
// has the same BOS, EOS, stop ids and chat template. Real tokenizers come from
// data/tokenizers (scripts/get_tokenizers.sh; each test skips, saying so, when
// its files are absent); a small one written by the tests needs no data.
// Unknown pre-tokenizers, Unigram models, SentencePiece-style files llama.cpp
// would tokenize differently, and merge ranks no scores reproduce (Gemma 3's) are refused
// by name, and the check refuses a file whose tokenizer differs (as one with
// the -1000 scores of llama.cpp's converter does), leaving `out` as it was.
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
// `model` and `pre`: the tokenizer.ggml.model and .pre the file must name;
// `written`, when given, receives the file's path.
void check_carried(const std::string& name, int vocab, const std::string& model, const std::string& pre,
                   const std::string& special, std::string* written = nullptr) {
  const std::string tok = source_path("data/tokenizers/" + name);
  if (!fs::exists(tok + "/tokenizer.json"))
    GTEST_SKIP() << tok << "/tokenizer.json is absent: run scripts/get_tokenizers.sh";
  const std::string dir = temp_dir("quantize_tok_" + name);
  write_tiny_model(dir + "/m", vocab);
  copy_tokenizer(tok, dir + "/m");
  const std::string out = dir + "/m.gguf";
  convert::quantize_model(dir + "/m", out, {DType::q8_0, false}, nullptr, kWriter);
  if (written) *written = out;

  const io::GgufFile f = io::GgufFile::open(out);
  EXPECT_EQ(f.get_string("tokenizer.ggml.model"), model);
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
      EXPECT_EQ(got.tokenizer->decode(ids), want.tokenizer->decode(ids)) << name << ": " << text;
      // LLaMA 2's Prepend normalizer adds a ▁ after each special token that decoding keeps.
      if (model == "gpt2" || !special_text) {
        EXPECT_EQ(got.tokenizer->decode(ids), text) << name << ": round trip";
      }
    }
  }
  // The reference ids (Hugging Face's tokenizer) for every golden text.
  const auto golden = io::read_json_file(source_path("tests/golden/tokenizers/" + name + ".json"));
  for (const auto& c : golden.at("cases"))
    EXPECT_EQ(got.tokenizer->encode(c.at("text").get<std::string>(), c.at("add_special").get<bool>(), true),
              c.at("ids").get<std::vector<int32_t>>())
        << name << ": " << c.at("text");
  EXPECT_EQ(got.tokenizer->bos_id(), want.tokenizer->bos_id());
  EXPECT_EQ(f.get_int("tokenizer.ggml.eos_token_id"), want.tokenizer->eos_id());
  for (int32_t id : want.stop_ids)
    EXPECT_NE(std::find(got.stop_ids.begin(), got.stop_ids.end(), id), got.stop_ids.end()) << name << ": stop " << id;

  const nlohmann::json config = io::read_json_file(tok + "/tokenizer_config.json");
  if (!config.contains("chat_template")) {
    EXPECT_FALSE(f.find("tokenizer.chat_template"));
    return;
  }
  EXPECT_EQ(f.get_string("tokenizer.chat_template"), config["chat_template"].get<std::string>());
  ASSERT_TRUE(want.chat_template && got.chat_template);
  const std::vector<ChatMessage> chat = {{"system", "Be brief."}, {"user", "\u4f60\u597d, what's 2+2?"}};
  EXPECT_EQ(got.chat_prompt(chat), want.chat_prompt(chat)) << name << ": the rendered chat prompt";
}

TEST(QuantizeTokenizerTest, Llama3) { check_carried("llama3", 128256, "gpt2", "llama-bpe", "<|eot_id|>"); }
// Qwen3's model has more embedding rows than the tokenizer has ids: the rest are [PAD<id>] tokens.
TEST(QuantizeTokenizerTest, Qwen3) { check_carried("qwen3", 151936, "gpt2", "qwen2", "<|im_end|>"); }

// The score of the token `text` as written: minus the rank of the first merge that makes it.
float first_rank_score(const nlohmann::json& merges, const std::string& text) {
  for (size_t r = 0; r < merges.size(); ++r) {
    const auto& m = merges[r];
    const std::string s = m.is_string() ? m.get<std::string>() : m[0].get<std::string>() + " " + m[1].get<std::string>();
    const size_t space = s.find(' ', 1);
    if (s.substr(0, space) + s.substr(space + 1) == text) return -float(r);
  }
  return 1;  // no merge makes it
}

// LLaMA 2's shape (Prepend + Replace normalizer, byte fallback, Strip decoder;
// the package's ids are Mistral 7B's): model "llama", a space prepended.
TEST(QuantizeTokenizerTest, Llama2) {
  std::string out;
  check_carried("llama2", 32000, "llama", "default", "</s>", &out);
  if (IsSkipped() || HasFatalFailure()) return;
  const std::string tok = source_path("data/tokenizers/llama2");
  const io::GgufFile f = io::GgufFile::open(out);
  const auto tokens = *f.get_strings("tokenizer.ggml.tokens");
  const auto types = *f.get_ints("tokenizer.ggml.token_type");
  const auto scores = *f.get_floats("tokenizer.ggml.scores");
  ASSERT_EQ(scores.size(), 32000u);
  EXPECT_EQ(tokens[0], "<unk>");
  EXPECT_EQ(types[0], 3);
  EXPECT_EQ(tokens[1], "<s>");
  EXPECT_EQ(types[1], 3);
  EXPECT_EQ(tokens[3 + 0x0A], "<0x0A>");
  EXPECT_EQ(types[3 + 0x0A], 6);
  const nlohmann::json merges = io::read_json_file(tok + "/tokenizer.json")["model"]["merges"];
  for (const char* text : {"\u2581t", "\u2581the", "ing", "\u2581\u2581\u2581\u2581"}) {
    const auto it = std::find(tokens.begin(), tokens.end(), std::string(text));
    ASSERT_NE(it, tokens.end()) << text;
    EXPECT_EQ(scores[size_t(it - tokens.begin())], first_rank_score(merges, text)) << text;
  }
  EXPECT_EQ(scores[3 + 0x0A], -1e9f) << "no merge makes a byte token";
  EXPECT_EQ(f.get_bool("tokenizer.ggml.add_space_prefix"), true);
  EXPECT_EQ(f.get_bool("tokenizer.ggml.add_bos_token"), true);
  EXPECT_EQ(f.get_bool("tokenizer.ggml.add_eos_token"), false);
  EXPECT_EQ(f.get_int("tokenizer.ggml.bos_token_id"), 1);
  EXPECT_EQ(f.get_int("tokenizer.ggml.eos_token_id"), 2);
  EXPECT_EQ(f.get_int("tokenizer.ggml.unknown_token_id"), 0);
}

// Gemma 3's merges that make runs of ▁ interleave (model.merges[4] and [10]
// make 31 of them, [7] between them makes 30): one score per token cannot
// order them, so the file is refused by name. Its runs of newlines and tabs
// interleave too, but those characters are added tokens split out before
// merging, so they are not what is named.
TEST(QuantizeTokenizerTest, RefusesGemma3sInterleavedMergeRanks) {
  const std::string tok = source_path("data/tokenizers/gemma3");
  if (!fs::exists(tok + "/tokenizer.json"))
    GTEST_SKIP() << tok << "/tokenizer.json is absent: run scripts/get_tokenizers.sh";
  const std::string dir = temp_dir("quantize_tok_gemma3");
  write_tiny_model(dir + "/m", 262208);
  copy_tokenizer(tok, dir + "/m");
  std::string run30, run31;
  for (int i = 0; i < 30; ++i) run30 += "\u2581";
  run31 = run30 + "\u2581";
  const std::string msg =
      error_message([&] { convert::quantize_model(dir + "/m", dir + "/m.gguf", {}, nullptr, kWriter); });
  EXPECT_NE(msg.find("model.merges[4] and model.merges[10] make '" + run31 + "', and model.merges[7] between them "
                     "makes '" + run30 + "'"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("no scores reproduce these ranks"), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(dir + "/m.gguf"));
}

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

// A SentencePiece-style file without byte fallback (llama.cpp would spell
// unknown characters as bytes, not <unk>) and a Unigram model are refused by name.
TEST(QuantizeTokenizerTest, RefusesWhatGgufsLlamaTokenizerCannotCarry) {
  const std::string dir = temp_dir("quantize_tok_spm");
  write_tiny_model(dir + "/m", 8);
  std::ofstream(dir + "/m/tokenizer.json") << R"({
    "model": {"type": "BPE", "vocab": {"<unk>": 0, "\u2581": 1, "a": 2, "\u2581a": 3}, "merges": ["\u2581 a"],
              "unk_token": "<unk>"},
    "normalizer": {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"},
    "pre_tokenizer": null,
    "decoder": {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
    "added_tokens": []})";
  EXPECT_ERROR(convert::quantize_model(dir + "/m", dir + "/m.gguf", {}, nullptr, kWriter),
               "without model.byte_fallback cannot be written to GGUF");
  std::ofstream(dir + "/m/tokenizer.json") << R"({
    "model": {"type": "Unigram", "unk_id": 0, "vocab": [["<unk>", 0.0], ["\u2581a", -1.5], ["a", -2.0]]},
    "normalizer": null, "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581"}, "decoder": null,
    "added_tokens": []})";
  EXPECT_ERROR(convert::quantize_model(dir + "/m", dir + "/m.gguf", {}, nullptr, kWriter),
               "model.type \"Unigram\" cannot be written to GGUF");
  EXPECT_FALSE(fs::exists(dir + "/m.gguf"));
}

// The real LLaMA 2 file, edited: each edit makes llama.cpp's "llama" tokenizer
// disagree with the tokenizer.json for some text, and is refused by name
// before anything is written.
TEST(QuantizeTokenizerTest, RefusesSentencePieceStyleFilesLlamaCppWouldTokenizeDifferently) {
  const std::string tok = source_path("data/tokenizers/llama2");
  if (!fs::exists(tok + "/tokenizer.json"))
    GTEST_SKIP() << tok << "/tokenizer.json is absent: run scripts/get_tokenizers.sh";
  const std::string dir = temp_dir("quantize_tok_spm_edits");
  write_tiny_model(dir + "/m", 32000);
  const std::string json = dir + "/m/tokenizer.json";
  auto refused = [&](const std::function<void(nlohmann::json&)>& edit, const std::string& what) {
    copy_tokenizer(tok, dir + "/m");
    edit_json(json, edit);
    EXPECT_ERROR(convert::quantize_model(dir + "/m", dir + "/m.gguf", {}, nullptr, kWriter), what);
    EXPECT_FALSE(fs::exists(dir + "/m.gguf"));
  };
  auto parts = [](const nlohmann::json& m) {
    const std::string s = m.is_string() ? m.get<std::string>() : m[0].get<std::string>() + " " + m[1].get<std::string>();
    return std::pair{s.substr(0, s.find(' ', 1)), s.substr(s.find(' ', 1) + 1)};
  };
  // Mistral 7B v0.3's shape: Metaspace prepends ▁ only to the first stretch.
  refused(
      [](nlohmann::json& j) {
        j["normalizer"] = nullptr;
        j["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", "\u2581"}, {"prepend_scheme", "first"},
                              {"split", false}};
      },
      "prepend_scheme \"first\" cannot be written to GGUF");
  // One of the merges that make ▁the, moved to the end: ▁the's merges no longer
  // come together, so no one score for ▁the orders them.
  refused(
      [&](nlohmann::json& j) {
        auto& m = j["model"]["merges"];
        for (auto it = m.begin(); it != m.end(); ++it)
          if (const auto [a, b] = parts(*it); a + b == "\u2581the" && a == "\u2581th") {
            const nlohmann::json moved = *it;
            m.erase(it);
            m.push_back(moved);
            break;
          }
      },
      "make '\u2581the', and model.merges[");
  // ▁th + e no longer merges, but ▁the is still made (from ▁t + he): llama.cpp
  // would merge ▁th + e.
  refused(
      [&](nlohmann::json& j) {
        auto& m = j["model"]["merges"];
        for (auto it = m.begin(); it != m.end(); ++it)
          if (const auto [a, b] = parts(*it); a == "\u2581th" && b == "e") {
            m.erase(it);
            break;
          }
      },
      "'\u2581the' is '\u2581th' + 'e', which llama.cpp's \"llama\" tokenizer would merge but model.merges never");
}

// What llama.cpp's converter writes for a directory without tokenizer.model
// (LlamaHfVocab: every score -1000) tokenizes differently: llama.cpp then
// merges leftmost-first. The check refuses such a file and keeps `out`.
TEST(QuantizeTokenizerTest, CheckRefusesTheConvertersFlatScores) {
  const std::string tok = source_path("data/tokenizers/llama2");
  if (!fs::exists(tok + "/tokenizer.json"))
    GTEST_SKIP() << tok << "/tokenizer.json is absent: run scripts/get_tokenizers.sh";
  const std::string dir = temp_dir("quantize_tok_flat");
  write_tiny_model(dir + "/m", 32000);
  copy_tokenizer(tok, dir + "/m");
  const convert::GgufTokenizerWriter flat = [](const std::string& d, int64_t vocab_size) {
    auto source = std::make_shared<const GgufTokenizerSource>(d);
    GgufMetadata m = source->metadata(vocab_size);
    for (auto& [key, value] : m)
      if (key == "tokenizer.ggml.scores") value = io::gguf_f32s(std::vector<float>(size_t(vocab_size), -1000.0f));
    return convert::CarriedTokenizer{std::move(m), [source](const io::GgufFile& g) { source->check(g); }};
  };
  std::ofstream(dir + "/kept.gguf") << "precious";
  EXPECT_ERROR(convert::quantize_model(dir + "/m", dir + "/kept.gguf", {}, nullptr, flat), "encodes sample");
  std::ifstream in(dir + "/kept.gguf");
  std::string kept;
  in >> kept;
  EXPECT_EQ(kept, "precious");
  EXPECT_FALSE(fs::exists(dir + "/kept.gguf.partial"));
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
