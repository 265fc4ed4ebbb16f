// BpeTokenizer::from_gguf: the tokenizer llama.cpp builds from a GGUF file's
// tokenizer.ggml.* metadata.
//  - The real LLaMA 3 and Qwen3 ("gpt2"), "llama2" (LLaMA 2's shape with
//    Mistral 7B's ids) and Gemma 3 ("llama") vocabularies, stored as llama.cpp's
//    converter would store them, give the same ids as the goldens of
//    tests/golden/tokenizers/ for every text.
//  - Hand-made vocabularies pin down score merges, byte fallback, the space
//    prefix, special and user-defined tokens, BOS/EOS defaults and the stop set.
//  - Malformed metadata is refused with the file, the key and what was expected.
#include <cctype>
#include <cmath>
#include <filesystem>
#include <functional>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/test_util.h"
#include "tpp/core/error.h"
#include "tpp/core/utf8.h"
#include "tpp/io/json_file.h"
#include "tpp/tokenizer/bpe_tokenizer.h"
#include "tpp/tokenizer/gguf_pretokenizers.h"

namespace tpp::test {
namespace {

using json = nlohmann::json;
using Ids = std::vector<int32_t>;
constexpr const char* kSpace = "\u2581";

bool starts_ends(const std::string& s, std::string_view a, std::string_view b) {
  return s.size() >= a.size() + b.size() && s.compare(0, a.size(), a) == 0 &&
         s.compare(s.size() - b.size(), b.size(), b) == 0;
}

// convert_hf_to_gguf.py's does_token_look_special.
bool looks_special(const std::string& t) {
  return t == "<pad>" || t == "<mask>" || t == "<2mass>" || t == "[@BOS@]" || starts_ends(t, "<|", "|>") ||
         starts_ends(t, "<\uff5c", "\uff5c>") || starts_ends(t, "<unused", ">");
}

bool is_byte_token(const std::string& t) {
  return t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>' && std::isxdigit(t[3]) && std::isxdigit(t[4]);
}

// The GGUF metadata llama.cpp's converter writes for a tokenizer.json:
//  - tokens by id (gaps as "[PAD<i>]", unused); model tokens normal, <0xXX> byte
//    (SentencePiece); added tokens control when special or special-looking,
//    otherwise user-defined with ▁ written as a space ("pre-normalize
//    user-defined spaces"), score -1000;
//  - "gpt2": the merges as "left right";
//  - "llama": scores. These files have no tokenizer.model, so the scores are
//    derived from the merges: a token's score is minus the rank of the first
//    merge that produces it, so "highest score first" merges in the same order
//    as "lowest rank first"; byte tokens score 0 and tokens no merge produces
//    -1e9 (they can only ever be merged last);
//  - bos / eos from tokenizer_config.json; add_bos as the Hugging Face tokenizer
//    adds a BOS (the LLaMA 3 package's template adds none, so the key says false);
//    add_space_prefix where the normalizer prepends ▁ (LLaMA 2, not Gemma).
GgufVocab gguf_from_tokenizer_json(const std::string& dir, const std::string& model, const std::string& pre) {
  const json j = io::read_json_file(dir + "/tokenizer.json");
  const json c = io::read_json_file(dir + "/tokenizer_config.json");
  const bool spm = model == "llama";
  const json& vocab = j["model"]["vocab"];
  size_t n = 0;
  for (const auto& [text, id] : vocab.items()) n = std::max(n, id.get<size_t>() + 1);
  for (const auto& a : j["added_tokens"]) n = std::max(n, a["id"].get<size_t>() + 1);
  GgufVocab v;
  v.source = dir + "/tokenizer.json as GGUF";
  v.model = model;
  v.pre = pre;
  v.tokens.resize(n);
  v.token_types.assign(n, int32_t(GgufTokenType::unused));
  if (spm) v.scores.assign(n, -1e9f);
  for (size_t i = 0; i < n; ++i) v.tokens[i] = "[PAD" + std::to_string(i) + "]";
  for (const auto& [text, id] : vocab.items()) {
    const size_t i = id.get<size_t>();
    v.tokens[i] = text;
    const bool byte = spm && is_byte_token(text);
    v.token_types[i] = int32_t(byte ? GgufTokenType::byte : GgufTokenType::normal);
    if (byte) v.scores[i] = 0.0f;
  }
  int rank = 0;
  for (const auto& m : j["model"]["merges"]) {
    const std::string merge = m.is_string() ? m.get<std::string>() : m[0].get<std::string>() + " " + m[1].get<std::string>();
    if (spm) {
      const size_t space = merge.find(' ', 1);
      const size_t id = vocab[merge.substr(0, space) + merge.substr(space + 1)].get<size_t>();
      v.scores[id] = std::max(v.scores[id], -float(rank));
    } else {
      v.merges.push_back(merge);
    }
    ++rank;
  }
  for (const auto& a : j["added_tokens"]) {
    const size_t i = a["id"].get<size_t>();
    std::string text = a["content"].get<std::string>();
    if (a.value("special", false) || looks_special(text)) {
      v.token_types[i] = int32_t(GgufTokenType::control);
    } else {
      for (size_t at = text.find(kSpace); at != std::string::npos; at = text.find(kSpace, at)) text.replace(at, 3, " ");
      v.token_types[i] = int32_t(GgufTokenType::user_defined);
    }
    v.tokens[i] = text;
    if (spm) v.scores[i] = -1000.0f;
  }
  auto id_of = [&](const char* key) -> std::optional<int32_t> {
    if (!c.contains(key) || !c[key].is_string()) return std::nullopt;
    const std::string text = c[key];
    if (vocab.contains(text)) return vocab[text].get<int32_t>();
    for (const auto& a : j["added_tokens"])
      if (a["content"] == text) return a["id"].get<int32_t>();
    return std::nullopt;
  };
  v.bos = id_of("bos_token");
  v.eos = id_of("eos_token");
  // add_bos: tokenizer_config.json's add_bos_token, else whether the template starts with a token.
  if (c.contains("add_bos_token") && c["add_bos_token"].is_boolean()) {
    v.add_bos = c["add_bos_token"].get<bool>();
  } else {
    const json& post = j["post_processor"];
    v.add_bos = post.is_object() && post.value("type", "") == "TemplateProcessing" &&
                post["single"][0].contains("SpecialToken");
  }
  if (spm) v.add_space_prefix = j["normalizer"].dump().find("Prepend") != std::string::npos;
  return v;
}

struct Family {
  std::string name, model, pre;
  std::string eos;                 // the token eos_id() names
  std::vector<std::string> stops;  // the tokens of stop_ids()
};

class GgufGoldenTest : public ::testing::TestWithParam<Family> {};

TEST_P(GgufGoldenTest, IdsMatchTheReferenceAndDecodeRoundTrips) {
  const Family& f = GetParam();
  const std::string dir = source_path("data/tokenizers/" + f.name);
  if (!std::filesystem::exists(dir + "/tokenizer.json"))
    GTEST_SKIP() << dir << "/tokenizer.json is absent: run scripts/get_tokenizers.sh";
  const BpeTokenizer tok = BpeTokenizer::from_gguf(gguf_from_tokenizer_json(dir, f.model, f.pre));
  const auto golden = io::read_json_file(source_path("tests/golden/tokenizers/" + f.name + ".json"));
  int checked = 0;
  for (const auto& c : golden["cases"]) {
    const std::string text = c["text"].get<std::string>();
    EXPECT_EQ(tok.encode(text, c["add_special"].get<bool>(), true), c["ids"].get<Ids>()) << "text: " << text;
    EXPECT_EQ(tok.decode(tok.encode(text, false, false)), text) << "decode(encode(text)) differs";
    ++checked;
  }
  EXPECT_GE(checked, 32);
  // The end of a reply: LLaMA 3's <|eot_id|> is found by its text, as llama.cpp does.
  EXPECT_EQ(tok.eos_id(), tok.token_id(f.eos));
  Ids stops;
  for (const auto& s : f.stops) stops.push_back(tok.token_id(s));
  EXPECT_EQ(tok.stop_ids(), stops);
}

INSTANTIATE_TEST_SUITE_P(
    Families, GgufGoldenTest,
    ::testing::Values(Family{"llama3", "gpt2", "llama-bpe", "<|eot_id|>", {"<|end_of_text|>", "<|eot_id|>"}},
                      Family{"qwen3", "gpt2", "qwen2", "<|im_end|>", {"<|im_end|>"}},
                      Family{"llama2", "llama", "", "</s>", {"</s>"}},
                      Family{"gemma3", "llama", "", "<end_of_turn>", {"<end_of_turn>"}},
                      Family{"gpt2", "gpt2", "gpt-2", "<|endoftext|>", {"<|endoftext|>"}}),
    [](const auto& info) { return info.param.name; });

// A SentencePiece vocabulary: <unk> <s> </s>, 256 byte tokens, then
//   259 ▁  260 a  261 b  262 c  263 ab  264 bc  265 ▁a  266 abc  267 aa
//   268 <tool> (user-defined)  269 <|eot_id|> (control)  270 [UNUSED] (unused)
GgufVocab spm_vocab() {
  GgufVocab v;
  v.source = "small-spm.gguf";
  v.model = "llama";
  auto add = [&](const std::string& text, GgufTokenType type, float score) {
    v.tokens.push_back(text);
    v.token_types.push_back(int32_t(type));
    v.scores.push_back(score);
  };
  add("<unk>", GgufTokenType::unknown, 0);
  add("<s>", GgufTokenType::control, 0);
  add("</s>", GgufTokenType::control, 0);
  for (int b = 0; b < 256; ++b) add(fmt::format("<0x{:02X}>", b), GgufTokenType::byte, 0);
  add(kSpace, GgufTokenType::normal, -1);
  add("a", GgufTokenType::normal, -1);
  add("b", GgufTokenType::normal, -1);
  add("c", GgufTokenType::normal, -1);
  add("ab", GgufTokenType::normal, -5);
  add("bc", GgufTokenType::normal, -3);
  add(std::string(kSpace) + "a", GgufTokenType::normal, -2);
  add("abc", GgufTokenType::normal, -4);
  add("aa", GgufTokenType::normal, -6);
  add("<tool>", GgufTokenType::user_defined, 0);
  add("<|eot_id|>", GgufTokenType::control, 0);
  add("[UNUSED]", GgufTokenType::unused, 0);
  return v;
}

constexpr int32_t kUnk = 0, kBos = 1, kEos = 2, kSp = 259, kA = 260, kB = 261, kBC = 264, kSpA = 265, kABC = 266,
                  kAA = 267, kTool = 268, kEot = 269, kUnused = 270;
constexpr int32_t byte_id(int b) { return 3 + b; }

TEST(GgufTokenizerTest, SentencePieceMergesByScoreWithSpacePrefixAndByteFallback) {
  const BpeTokenizer tok = BpeTokenizer::from_gguf(spm_vocab());
  // "▁abc": ▁a (-2) beats bc (-3) and ab (-5); then bc; "▁abc" is no token.
  EXPECT_EQ(tok.encode("abc", false), (Ids{kSpA, kBC}));
  EXPECT_EQ(tok.encode("abc"), (Ids{kBos, kSpA, kBC}));  // add_bos defaults to true
  EXPECT_EQ(tok.encode("\u00e9", false), (Ids{kSp, byte_id(0xc3), byte_id(0xa9)}));
  GgufVocab v = spm_vocab();
  v.add_space_prefix = false;  // as Gemma files say
  v.add_bos = false;
  v.add_eos = true;
  const BpeTokenizer plain = BpeTokenizer::from_gguf(v);
  EXPECT_EQ(plain.encode("abc"), (Ids{kABC, kEos}));  // bc (-3), then abc (-4)
  EXPECT_EQ(plain.encode("aaa", false), (Ids{kAA, kA}));  // equal scores: leftmost first
  EXPECT_EQ(plain.decode({kSpA}), " a");  // no prefix was added, so none is dropped
}

TEST(GgufTokenizerTest, SpecialTokensUserDefinedTokensAndDecode) {
  const BpeTokenizer tok = BpeTokenizer::from_gguf(spm_vocab());
  // After a special token the text gets its space prefix again (llama.cpp's is_prev_special).
  EXPECT_EQ(tok.encode("<s>a", false, true), (Ids{kBos, kSpA}));
  EXPECT_EQ(tok.encode("<s>a", false, false), (Ids{kSp, byte_id('<'), byte_id('s'), byte_id('>'), kA}));
  // User-defined tokens are split out even without parse_special.
  EXPECT_EQ(tok.encode("a<tool>b", false, false), (Ids{kSpA, kTool, kSp, kB}));
  for (const std::string text : {"abc", " abc", "a  b ", "\u00e9a", "", "bad \xff byte"})
    EXPECT_EQ(tok.decode(tok.encode(text, false, false)), text);
  // Text after a user-defined or special token got a space prefix; decode keeps
  // it (llama.cpp, like LLaMA 2's legacy Hugging Face tokenizer).
  EXPECT_EQ(tok.decode(tok.encode("x<tool>y", false, false)), "x<tool> y");
  EXPECT_EQ(tok.decode({kBos, kSpA}), "<s> a");  // the space after a special token stays
  EXPECT_EQ(tok.decode({kSpA, kSpA}), "a a");
  EXPECT_EQ(tok.decode_token(kSpA), " a");
  EXPECT_EQ(tok.decode({kA, kUnused, byte_id('A'), kUnk}), "aA<unk>");
  // eos_id prefers the end-of-turn token (found by its text); the stop set has both.
  EXPECT_EQ(tok.eos_id(), kEot);
  EXPECT_EQ(tok.stop_ids(), (Ids{kEos, kEot}));
  EXPECT_EQ(tok.bos_id(), kBos);
  GgufVocab v = spm_vocab();
  v.eot = kEos;
  EXPECT_EQ(BpeTokenizer::from_gguf(v).eos_id(), kEos);
  EXPECT_EQ(BpeTokenizer::from_gguf(v).stop_ids(), Ids{kEos});
}

// A byte-level vocabulary: the 256 GPT-2 byte characters (ids 0..255 in byte
// order), then ab Ġa abc, <|end|> (control), <x> (user-defined), <|eot_id|>
// (control); merges "Ġ a", "a b" (abc is reachable only whole).
std::string byte_char(int b) {
  const bool printable = (b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  int cp = b;
  if (!printable) {
    int k = 0;
    for (int x = 0; x < b; ++x)
      if (!((x >= '!' && x <= '~') || (x >= 0xa1 && x <= 0xac) || (x >= 0xae && x <= 0xff))) ++k;
    cp = 256 + k;
  }
  std::string s;
  utf8::append(s, char32_t(cp));
  return s;
}

GgufVocab bpe_vocab(const std::string& pre) {
  GgufVocab v;
  v.source = "small-bpe.gguf";
  v.model = "gpt2";
  v.pre = pre;
  for (int b = 0; b < 256; ++b) v.tokens.push_back(byte_char(b));
  v.token_types.assign(256, int32_t(GgufTokenType::normal));
  for (const char* t : {"ab", "\u0120a", "abc"}) {
    v.tokens.push_back(t);
    v.token_types.push_back(int32_t(GgufTokenType::normal));
  }
  for (auto [t, type] : {std::pair{"<|end|>", GgufTokenType::control}, std::pair{"<x>", GgufTokenType::user_defined},
                         std::pair{"<|eot_id|>", GgufTokenType::control}}) {
    v.tokens.push_back(t);
    v.token_types.push_back(int32_t(type));
  }
  v.merges = {"\u0120 a", "a b"};
  v.bos = 259;
  return v;
}

constexpr int32_t kAb = 256, kGa = 257, kAbc = 258, kEnd = 259, kX = 260, kEotId = 261;

TEST(GgufTokenizerTest, ByteLevelMergesByRankWithThePreTokenizerOfItsName) {
  const BpeTokenizer gpt2 = BpeTokenizer::from_gguf(bpe_vocab("gpt-2"));
  EXPECT_EQ(gpt2.encode("ab ab"), (Ids{kAb, kGa, 'b'}));  // no BOS by default for "gpt2"
  EXPECT_EQ(gpt2.encode("abc", false), (Ids{kAb, 'c'}));
  // llama-bpe: LLaMA 3's regex, ignore_merges (abc is a token, so it stays whole), BOS added.
  const BpeTokenizer llama3 = BpeTokenizer::from_gguf(bpe_vocab("llama-bpe"));
  EXPECT_EQ(llama3.encode("abc"), (Ids{kEnd, kAbc}));
  GgufVocab v = bpe_vocab("llama-bpe");
  v.add_bos = false;
  EXPECT_EQ(BpeTokenizer::from_gguf(v).encode("abc"), (Ids{kAbc}));
  // Control tokens need parse_special, user-defined ones do not.
  EXPECT_EQ(gpt2.encode("a<|end|>", false, true), (Ids{'a', kEnd}));
  EXPECT_GT(gpt2.encode("a<|end|>", false, false).size(), 3u);
  EXPECT_EQ(gpt2.encode("a<x>", false, false), (Ids{'a', kX}));
  for (const std::string text : {"ab ab", "a<|end|> b<x>", "  tabs\t\tand\nlines\r\n", "caf\u00e9 \xff\xfe", ""}) {
    EXPECT_EQ(gpt2.decode(gpt2.encode(text, false, false)), text);
    EXPECT_EQ(gpt2.decode(gpt2.encode(text, true, true)), text);
  }
  EXPECT_EQ(gpt2.eos_id(), kEotId);
  EXPECT_EQ(gpt2.stop_ids(), Ids{kEotId});
}

// Every pre-tokenizer name in the table compiles and splits text that decodes back.
TEST(GgufTokenizerTest, EveryPreTokenizerNameWorks) {
  const std::string names = gguf_pretokenizer_names();
  int count = 0;
  for (size_t begin = 0; begin <= names.size();) {
    size_t end = names.find(", ", begin);
    if (end == std::string::npos) end = names.size();
    std::string name = names.substr(begin, end - begin);
    if (name == "\"\"") name.clear();
    ASSERT_NE(find_gguf_pretokenizer(name), nullptr) << name;
    const BpeTokenizer tok = BpeTokenizer::from_gguf(bpe_vocab(name));
    const std::string text = "Hello, World! It's 12345 caf\u00e9 \u65e5\u672c\u8a9e  \n\t x+=1;";
    EXPECT_EQ(tok.decode(tok.encode(text, false)), text) << name;
    ++count;
    begin = end + 2;
  }
  EXPECT_GE(count, 60);
  EXPECT_EQ(find_gguf_pretokenizer("not-a-pre-tokenizer"), nullptr);
}

// A byte-level vocabulary without a token for some byte loads; a text that
// needs the byte is an error naming the file and the character.
TEST(GgufTokenizerTest, MissingByteCharacterIsAnErrorWhenUsed) {
  GgufVocab v = bpe_vocab("gpt-2");
  v.tokens[65] = "AA";
  const BpeTokenizer t = BpeTokenizer::from_gguf(v);
  EXPECT_FALSE(t.encode("ab").empty());
  try {
    t.encode("A");
    ADD_FAILURE() << "encoded a byte without a token";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind(v.source + ": ", 0), 0u) << msg;
    EXPECT_NE(msg.find("'A'"), std::string::npos) << msg;
  }
}

TEST(GgufTokenizerTest, MalformedMetadataIsRefusedWithFileKeyAndExpectation) {
  struct Case {
    const char* what;
    std::function<void(GgufVocab&)> edit;
    bool spm;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"unknown model", [](GgufVocab& v) { v.model = "t5"; }, true, "tokenizer.ggml.model is \"t5\", expected"},
      {"no tokens", [](GgufVocab& v) { v.tokens.clear(), v.scores.clear(), v.token_types.clear(); }, true,
       "tokenizer.ggml.tokens is empty"},
      {"scores too short", [](GgufVocab& v) { v.scores.pop_back(); }, true,
       "tokenizer.ggml.scores has 270 values, expected 271"},
      {"scores missing", [](GgufVocab& v) { v.scores.clear(); }, true, "tokenizer.ggml.scores is missing, expected"},
      {"NaN score", [](GgufVocab& v) { v.scores[260] = std::nanf(""); }, true, "tokenizer.ggml.scores[260] is NaN"},
      {"types too long", [](GgufVocab& v) { v.token_types.push_back(1); }, true,
       "tokenizer.ggml.token_type has 272 values, expected 271"},
      {"type out of range", [](GgufVocab& v) { v.token_types[3] = 7; }, true,
       "tokenizer.ggml.token_type[3] is 7, expected 0..6"},
      {"byte type on text", [](GgufVocab& v) { v.token_types[260] = 6; }, true,
       "tokenizer.ggml.token_type[260] is 6 (byte) but the token is 'a', expected <0xXX>"},
      {"byte token not typed byte", [](GgufVocab& v) { v.token_types[3 + 0x41] = 1; }, true,
       "tokenizer.ggml.token_type[68] is 1 for <0x41>, expected 6"},
      {"missing byte token", [](GgufVocab& v) { v.tokens[3 + 0x41] = "<0x41 gone>", v.token_types[3 + 0x41] = 1; },
       true, "byte token <0x41> is missing, expected all 256"},
      {"duplicate token", [](GgufVocab& v) { v.tokens[261] = "a"; }, true,
       "tokenizer.ggml.tokens[261] 'a' repeats tokenizer.ggml.tokens[260], expected distinct"},
      {"bos out of range", [](GgufVocab& v) { v.bos = 40000; }, true,
       "tokenizer.ggml.bos_token_id is 40000, expected an id in [0, 271)"},
      {"eot negative", [](GgufVocab& v) { v.eot = -3; }, true, "tokenizer.ggml.eot_token_id is -3, expected"},
      {"too few tokens for byte fallback",
       [](GgufVocab& v) { v.tokens.resize(2), v.scores.resize(2), v.token_types.resize(2); },
       true, "byte token <0x00> is missing"},
      {"unknown pre", [](GgufVocab& v) { v.pre = "mystery"; }, false,
       "tokenizer.ggml.pre \"mystery\" is not supported, expected one of: \"\", default, llama3"},
      {"merges missing", [](GgufVocab& v) { v.merges.clear(); }, false, "tokenizer.ggml.merges is missing, expected"},
      {"merge without space", [](GgufVocab& v) { v.merges.push_back("ab"); }, false,
       "tokenizer.ggml.merges[2] is 'ab', expected \"left right\""},
      {"merge of an unknown token", [](GgufVocab& v) { v.merges.push_back("a zz"); }, false,
       "tokenizer.ggml.merges[2] 'a zz' names 'zz', expected a token of tokenizer.ggml.tokens"},
      {"merge result unknown", [](GgufVocab& v) { v.merges.push_back("b a"); }, false,
       "tokenizer.ggml.merges[2] 'b a' names 'ba', expected a token"},
      {"add_bos without bos", [](GgufVocab& v) { v.bos.reset(), v.add_bos = true; }, false,
       "tokenizer.ggml.add_bos_token is true, expected tokenizer.ggml.bos_token_id to be set"},
      {"add_eos without eos", [](GgufVocab& v) { v.add_eos = true; }, false,
       "tokenizer.ggml.add_eos_token is true, expected tokenizer.ggml.eos_token_id to be set"},
  };
  for (const auto& c : cases) {
    GgufVocab v = c.spm ? spm_vocab() : bpe_vocab("gpt-2");
    c.edit(v);
    try {
      BpeTokenizer::from_gguf(v);
      ADD_FAILURE() << "accepted: " << c.what;
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(c.expected), std::string::npos) << c.what << ": " << msg;
      EXPECT_EQ(msg.rfind(v.source + ": ", 0), 0u) << c.what << ": " << msg;
    }
  }
}

}  // namespace
}  // namespace tpp::test
