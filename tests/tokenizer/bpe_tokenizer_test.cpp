// BPE from tokenizer.json against an independent implementation (@lenml/tokenizers,
// a port of Hugging Face tokenizers; tools/golden/gen_tokenizers.mjs) on the
// real LLaMA 3, Qwen3 (byte-level), Gemma 3 and "llama2" (SentencePiece-style)
// vocabularies (installed by scripts/get_tokenizers.sh into data/tokenizers/;
// the "llama2" package's file has LLaMA 2's legacy shape but Mistral 7B's ids:
// ▁ is 28705 and ▁the 272, where LLaMA 2 has 29871 and 278;
// skipped, saying so, when they are absent), over text with Unicode, digits,
// whitespace runs, contractions, byte fallback and special tokens. Hand-made
// vocabularies pin down each tokenizer.json shape: LLaMA 2's legacy
// Prepend/Replace normalizer and Strip decoder, the Metaspace pre-tokenizer and
// decoder, <unk> without byte fallback, tokenizer_config.json's add_bos_token.
#include <filesystem>
#include <fstream>
#include <functional>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/test_util.h"
#include "tpp/core/error.h"
#include "tpp/io/json_file.h"
#include "tpp/tokenizer/bpe_tokenizer.h"

namespace tpp::test {
namespace {

using json = nlohmann::json;
using Ids = std::vector<int32_t>;

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
    const auto expected = c["ids"].get<Ids>();
    const auto ids = tok.encode(text, c["add_special"].get<bool>(), true);
    EXPECT_EQ(ids, expected) << "text: " << text;
    // Hugging Face's decode gives the text back, its leading space included
    // (the Strip decoder removes only the ▁ that encoding prepended).
    EXPECT_EQ(tok.decode(tok.encode(text, false, false)), text) << "decode(encode(text)) differs";
    ++checked;
  }
  EXPECT_GE(checked, 32);
  // Without parse_special, special-token text is ordinary text.
  const auto plain = tok.encode("<|im_start|>", false, false);
  EXPECT_GT(plain.size(), 1u);
  EXPECT_EQ(tok.decode(plain), "<|im_start|>");
}

INSTANTIATE_TEST_SUITE_P(Families, BpeGoldenTest, ::testing::Values("llama3", "qwen3", "gemma3", "llama2", "gpt2"),
                         [](const auto& info) { return info.param; });

// LLaMA 2's shape as Hugging Face defines it: BOS from the template, a ▁ before every
// stretch of text (so "<s>" mid-text is followed by "▁"), and decode keeps the
// space after a special token while dropping the one encoding added.
TEST(BpeTokenizerTest, Llama2RealVocabularyDetails) {
  const std::string dir = source_path("data/tokenizers/llama2");
  if (!std::filesystem::exists(dir + "/tokenizer.json"))
    GTEST_SKIP() << dir << "/tokenizer.json is absent: run scripts/get_tokenizers.sh";
  const BpeTokenizer tok = BpeTokenizer::load(dir);
  EXPECT_EQ(tok.bos_id(), 1);
  EXPECT_EQ(tok.eos_id(), 2);
  EXPECT_EQ(tok.stop_ids(), Ids{2});
  const int32_t hello = tok.token_id("\u2581Hello");
  ASSERT_GE(hello, 0);
  EXPECT_EQ(tok.encode("Hello"), (Ids{1, hello}));
  EXPECT_EQ(tok.decode({1, hello}), "<s> Hello");
  EXPECT_EQ(tok.decode({hello}), "Hello");
  EXPECT_EQ(tok.decode_token(hello), " Hello");  // streaming keeps the space
  EXPECT_EQ(tok.decode({tok.token_id("<0x0A>"), hello}), "\n Hello");
  EXPECT_EQ(tok.encode(""), Ids{1});
  EXPECT_EQ(tok.encode("", false), Ids{});
}

void write(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

// A small SentencePiece-style vocabulary: <unk> <s> </s>, the 256 byte tokens,
// then ▁ a b ▁a ab ▁ab b▁ with merges in that order of priority.
json sp_tokenizer() {
  json vocab = {{"<unk>", 0}, {"<s>", 1}, {"</s>", 2}};
  for (int b = 0; b < 256; ++b) vocab[fmt::format("<0x{:02X}>", b)] = 3 + b;
  int32_t id = 259;
  for (const char* t : {"\u2581", "a", "b", "\u2581a", "ab", "\u2581ab", "b\u2581"}) vocab[t] = id++;
  return {
      {"model",
       {{"type", "BPE"}, {"vocab", vocab}, {"merges", {"b \u2581", "\u2581 a", "a b", "\u2581a b"}},
        {"byte_fallback", true}, {"unk_token", "<unk>"}, {"fuse_unk", true}}},
      {"added_tokens",
       {{{"id", 0}, {"content", "<unk>"}, {"special", true}},
        {{"id", 1}, {"content", "<s>"}, {"special", true}},
        {{"id", 2}, {"content", "</s>"}, {"special", true}}}},
      {"normalizer",
       {{"type", "Sequence"},
        {"normalizers",
         {{{"type", "Prepend"}, {"prepend", "\u2581"}},
          {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\u2581"}}}}}},
      {"pre_tokenizer", nullptr},
      {"post_processor",
       {{"type", "TemplateProcessing"}, {"single", {{{"SpecialToken", {{"id", "<s>"}}}}, {{"Sequence", {{"id", "A"}}}}}}}},
      {"decoder",
       {{"type", "Sequence"},
        {"decoders",
         {{{"type", "Replace"}, {"pattern", {{"String", "\u2581"}}}, {"content", " "}},
          {{"type", "ByteFallback"}},
          {{"type", "Fuse"}},
          {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}}}}},
  };
}

BpeTokenizer load_json(const std::string& name, const json& tokenizer, const json& config = nullptr) {
  const std::string dir = temp_dir(name);
  write(dir + "/tokenizer.json", tokenizer.dump());
  if (!config.is_null()) write(dir + "/tokenizer_config.json", config.dump());
  return BpeTokenizer::load(dir);
}

// Ids of the small vocabulary.
constexpr int32_t kBos = 1, kSp = 259, kA = 260, kB = 261, kSpA = 262, kAB = 263, kSpAB = 264, kBSp = 265;
constexpr int32_t byte_id(int b) { return 3 + b; }

TEST(BpeTokenizerTest, Llama2LegacyShapePrependsToEveryStretchAndStripsOnDecode) {
  const BpeTokenizer tok = load_json("sp_legacy", sp_tokenizer());
  EXPECT_EQ(tok.encode("ab", false), (Ids{kSpAB}));
  EXPECT_EQ(tok.encode("ab"), (Ids{kBos, kSpAB}));
  EXPECT_EQ(tok.encode(" ab", false), (Ids{kSp, kSpAB}));       // Prepend always: "▁▁ab"
  EXPECT_EQ(tok.encode("<s>ab", false), (Ids{kBos, kSpAB}));     // and after a special token
  EXPECT_EQ(tok.encode("<s>ab", false, false), (Ids{kSp, byte_id('<'), byte_id('s'), byte_id('>'), kAB}));
  EXPECT_EQ(tok.encode("", true), (Ids{kBos}));
  // "b ▁" outranks everything: "▁ab▁ab" is one piece, so b▁ forms across the space.
  EXPECT_EQ(tok.encode("ab ab", false), (Ids{kSpA, kBSp, kAB}));
  // é is not in the vocabulary: its UTF-8 bytes.
  EXPECT_EQ(tok.encode("\u00e9", false), (Ids{kSp, byte_id(0xc3), byte_id(0xa9)}));
  for (const std::string text : {"ab", " ab", "  a b ", "\u00e9a", "ab ab", ""})
    EXPECT_EQ(tok.decode(tok.encode(text, false)), text);
  EXPECT_EQ(tok.decode({kBos, kSpAB}), "<s> ab");  // the space after <s> stays
  EXPECT_EQ(tok.decode({kSpAB, kSpA}), "ab a");
  EXPECT_EQ(tok.decode_token(kSpAB), " ab");
}

json metaspace_tokenizer(const json& pre, const json& decoder) {
  json t = sp_tokenizer();
  t["normalizer"] = nullptr;
  t["pre_tokenizer"] = pre;
  t["decoder"] = decoder;
  return t;
}

json metaspace(const char* scheme, bool split) {
  return {{"type", "Metaspace"}, {"replacement", "\u2581"}, {"prepend_scheme", scheme}, {"split", split}};
}

TEST(BpeTokenizerTest, MetaspacePreTokenizerPrependSchemesAndSplit) {
  const json dec = {{"type", "Metaspace"}, {"replacement", "\u2581"}, {"prepend_scheme", "first"}};
  const BpeTokenizer first = load_json("ms_first", metaspace_tokenizer(metaspace("first", false), dec));
  EXPECT_EQ(first.encode("ab", false), (Ids{kSpAB}));
  EXPECT_EQ(first.encode(" ab", false), (Ids{kSpAB}));  // already starts with ▁: nothing prepended
  EXPECT_EQ(first.encode("<s>ab", false), (Ids{kBos, kAB}));  // not the first stretch
  EXPECT_EQ(first.encode("ab ab", false), (Ids{kSpA, kBSp, kAB}));
  const BpeTokenizer always = load_json("ms_always", metaspace_tokenizer(metaspace("always", false), dec));
  EXPECT_EQ(always.encode("<s>ab", false), (Ids{kBos, kSpAB}));
  const BpeTokenizer never = load_json("ms_never", metaspace_tokenizer(metaspace("never", false), dec));
  EXPECT_EQ(never.encode("ab", false), (Ids{kAB}));
  // split: every ▁ starts a piece, so b▁ cannot form across a space.
  const BpeTokenizer split = load_json("ms_split", metaspace_tokenizer(metaspace("first", true), dec));
  EXPECT_EQ(split.encode("ab ab", false), (Ids{kSpAB, kSpAB}));
  EXPECT_EQ(split.encode("a  b", false), (Ids{kSpA, kSp, kSp, kB}));
  // The older serialization: add_prefix_space true means "always", split defaults to true.
  const BpeTokenizer old = load_json(
      "ms_old", metaspace_tokenizer({{"type", "Metaspace"}, {"replacement", "\u2581"}, {"add_prefix_space", true}},
                                    {{"type", "Metaspace"}, {"replacement", "\u2581"}, {"add_prefix_space", true}}));
  EXPECT_EQ(old.encode("<s>ab ab", false), (Ids{kBos, kSpAB, kSpAB}));
}

TEST(BpeTokenizerTest, MetaspaceDecoderDropsEveryMetaspaceOfTheFirstTokenAsHuggingFaceDoes) {
  const json dec = {{"type", "Metaspace"}, {"replacement", "\u2581"}, {"prepend_scheme", "first"}};
  const BpeTokenizer tok = load_json("ms_dec", metaspace_tokenizer(metaspace("first", false), dec));
  EXPECT_EQ(tok.decode({kSpAB, kSpA}), "ab a");
  EXPECT_EQ(tok.decode({kBSp, kSpA}), "b a");  // "b▁" first: its ▁ is dropped too
  EXPECT_EQ(tok.decode({kBos, kSpAB}), "<s> ab");
  // Without ByteFallback in the decoder the byte tokens stay as their text.
  EXPECT_EQ(tok.decode({kSpA, byte_id(0x41)}), "a<0x41>");
  const BpeTokenizer never = load_json(
      "ms_dec_never", metaspace_tokenizer(metaspace("never", false), {{"type", "Metaspace"},
                                                                      {"replacement", "\u2581"},
                                                                      {"prepend_scheme", "never"}}));
  EXPECT_EQ(never.decode({kSpAB, kSpA}), " ab a");
}

TEST(BpeTokenizerTest, UnknownSymbolsBecomeUnkWithoutByteFallback) {
  json t = sp_tokenizer();
  t["model"]["byte_fallback"] = false;
  const BpeTokenizer fused = load_json("unk_fused", t);
  EXPECT_EQ(fused.encode("a\u00e9\u20acb", false), (Ids{kSpA, 0, kB}));  // é€: one fused <unk>
  t["model"]["fuse_unk"] = false;
  const BpeTokenizer apart = load_json("unk_apart", t);
  EXPECT_EQ(apart.encode("a\u00e9\u20acb", false), (Ids{kSpA, 0, 0, kB}));
  EXPECT_EQ(apart.decode({kSpA, 0, kB}), "a<unk>b");
}

TEST(BpeTokenizerTest, TokenizerConfigAddBosAndAddEosOverrideTheTemplate) {
  const json config = {{"bos_token", "<s>"}, {"eos_token", "</s>"}, {"add_bos_token", false}, {"add_eos_token", true}};
  const BpeTokenizer tok = load_json("add_flags", sp_tokenizer(), config);
  EXPECT_EQ(tok.encode("ab"), (Ids{kSpAB, 2}));
  EXPECT_EQ(tok.encode("ab", false), (Ids{kSpAB}));
  EXPECT_EQ(tok.bos_id(), 1);
  EXPECT_EQ(tok.eos_id(), 2);
}

// A hand-made byte-level vocabulary: merges apply by rank, and the template adds a BOS.
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
  EXPECT_EQ(tok.encode("abc", false), (Ids{5}));  // b c first, then a bc
  EXPECT_EQ(tok.encode("abc a", true), (Ids{8, 5, 7}));
  EXPECT_EQ(tok.decode({8, 5, 7}), "<s>abc a");
  // A model's padded embedding rows beyond the vocabulary decode to nothing.
  EXPECT_EQ(tok.decode_token(9), "");
  EXPECT_EQ(tok.decode_token(-1), "");
  EXPECT_EQ(tok.decode({5, 1000, 7}), "abc a");
}

// JSON deep enough to exhaust the stack when copied or printed is refused as
// it is read, naming the file.
TEST(BpeTokenizerTest, DeeplyNestedJsonIsRefused) {
  const std::string dir = temp_dir("bpe_deep");
  write(dir + "/tokenizer.json", R"({"model": {"type": "BPE", "vocab": {}, "merges": []}, "post_processor": )" +
                                     std::string(100000, '[') + std::string(100000, ']') + "}");
  try {
    BpeTokenizer::load(dir);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer.json: JSON nested 129 levels deep, expected at most 128"),
              std::string::npos)
        << e.what();
  }
}

// Long inputs: SentencePiece-style text is one piece, so merging must not be
// quadratic in its length (this would take minutes if it were).
TEST(BpeTokenizerTest, LongPiecesMergeInNLogN) {
  const BpeTokenizer tok = load_json("sp_long", sp_tokenizer());
  std::string text;
  for (int i = 0; i < 50000; ++i) text += "ab ";
  const auto ids = tok.encode(text, false);
  EXPECT_EQ(tok.decode(ids), text);
  EXPECT_LE(ids.size(), 2 * 50000u + 1);
}

// Corrupted files, truncated anywhere or with bytes overwritten: loading either
// succeeds or throws tpp::Error; it never crashes or throws anything else.
TEST(BpeTokenizerTest, CorruptedFilesThrowOurErrorAndNeverCrash) {
  const std::string good = sp_tokenizer().dump();
  const std::string dir = temp_dir("bpe_corrupt");
  int loaded = 0, refused = 0;
  auto attempt = [&](const std::string& text) {
    write(dir + "/tokenizer.json", text);
    try {
      const BpeTokenizer tok = BpeTokenizer::load(dir);
      const auto ids = tok.encode("ab a\u00e9 <s>x", true);
      EXPECT_FALSE(tok.decode(ids).empty());
      ++loaded;
    } catch (const Error&) {
      ++refused;
    } catch (const std::exception& e) {
      ADD_FAILURE() << "not a tpp::Error: " << e.what() << "\n" << text;
    }
  };
  for (size_t n = 0; n < good.size(); n += 11) attempt(good.substr(0, n));
  const std::vector<float> r = random_floats(1000, 7);
  for (size_t k = 0; k + 1 < r.size(); k += 2) {
    std::string bad = good;
    bad[size_t((r[k] * 0.5f + 0.5f) * float(bad.size() - 1))] = char(int((r[k + 1] * 0.5f + 0.5f) * 255.0f));
    attempt(bad);
  }
  EXPECT_GT(loaded, 0);
  EXPECT_GT(refused, 0);
}

TEST(BpeTokenizerTest, UnsupportedOrMalformedFilesAreRefusedByName) {
  auto with = [](const std::function<void(json&)>& edit) {
    json t = sp_tokenizer();
    edit(t);
    return t.dump();
  };
  const std::string byte_level_tail =
      R"("normalizer": null, "pre_tokenizer": {"type": "ByteLevel"}, "decoder": {"type": "ByteLevel"})";
  struct Case {
    std::string tokenizer, config, expected, file;
  };
  const std::vector<Case> cases = {
      {R"({"model": {"type": "Unigram", "vocab": []}})", "", "model.type", "tokenizer.json"},
      {R"({"model": {"type": "BPE", "byte_fallback": true, "vocab": {}, "merges": []}, )" + byte_level_tail + "}", "",
       "byte_fallback", "tokenizer.json"},
      {R"({"model": {"type": "BPE", "vocab": {"a": -1}, "merges": []}})", "", "model.vocab['a']", "tokenizer.json"},
      {R"({"model": {"type": "BPE", "vocab": {}, "merges": [3]}})", "", "model.merges[0]", "tokenizer.json"},
      {R"({"model": {"type": "BPE", "vocab": {"a": 99999999}, "merges": []}, )" + byte_level_tail + "}", "",
       "token id 99999999 is far beyond the 1 tokens", "tokenizer.json"},
      {with([](json& t) { t["added_tokens"][0]["special"] = "yes"; }), "", "unexpected JSON structure",
       "tokenizer.json"},
      {R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}})", "", "model.merges[0]: 'b'",
       "tokenizer.json"},
      {R"({"model": {"type": "BPE", "vocab": {}, "merges": [], "continuing_subword_prefix": "##"}})", "",
       "continuing_subword_prefix", "tokenizer.json"},
      {R"({"model": {"type": "BPE", "vocab": {}, "merges": []}, "normalizer": {"type": "NFKD"},
           "pre_tokenizer": {"type": "ByteLevel"}})", "", "NFKD", "tokenizer.json"},
      {R"({"model": {"type": "BPE", "vocab": {}, "merges": []}, "normalizer": null,
           "pre_tokenizer": {"type": "Metaspace", "replacement": "_"}})", "", "replacement", "tokenizer.json"},
      {with([](json& t) { t["pre_tokenizer"] = metaspace("sometimes", true); }), "", "prepend_scheme \"sometimes\"",
       "tokenizer.json"},
      {R"({"model": {"type": "BPE", "vocab": {}, "merges": []}, "normalizer": null,
           "pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "(["},
           "behavior": "Isolated"}, {"type": "ByteLevel"}]}})", "", "regex", "tokenizer.json"},
      {R"({"model": {"type": "BPE", "vocab": {}, "merges": []}, "normalizer": null,
           "pre_tokenizer": {"type": "Whitespace"}})", "", "Whitespace", "tokenizer.json"},
      {R"({"model": {"type": "BPE", "vocab": {}, "merges": []}, "normalizer": null,
           "pre_tokenizer": {"type": "ByteLevel"}, "decoder": {"type": "WordPiece"}})", "", "decoder", "tokenizer.json"},
      {with([](json& t) { t["decoder"] = nullptr; }), "", "decoder null", "tokenizer.json"},
      {with([](json& t) { t["decoder"]["decoders"].erase(2); }), "", "Strip", "tokenizer.json"},  // Strip before Fuse
      {with([](json& t) { t["added_tokens"][1]["lstrip"] = true; }), "", "lstrip", "tokenizer.json"},
      {with([](json& t) { t["model"]["unk_token"] = "<nope>"; }), "", "unk_token", "tokenizer.json"},
      {with([](json& t) { t["model"]["vocab"].erase("<0x41>"); }), "", "<0x41>", "tokenizer.json"},
      {with([](json&) {}), R"({"add_bos_token": true})", "bos_token", "tokenizer_config.json"},
      {with([](json&) {}), R"({"eos_token": "<end>"})", "'<end>'", "tokenizer_config.json"},
      {R"({"model": )", "", "malformed JSON", "tokenizer.json"},
  };
  for (const auto& c : cases) {
    const std::string dir = temp_dir("bpe_bad");
    write(dir + "/tokenizer.json", c.tokenizer);
    if (!c.config.empty()) write(dir + "/tokenizer_config.json", c.config);
    try {
      BpeTokenizer::load(dir);
      ADD_FAILURE() << "accepted: " << c.tokenizer;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(c.expected), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(c.file), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace tpp::test
