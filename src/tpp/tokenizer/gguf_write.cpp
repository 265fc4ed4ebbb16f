#include "tpp/tokenizer/gguf_write.h"

#include <algorithm>
#include <filesystem>
#include <numeric>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "tpp/core/error.h"
#include "tpp/core/utf8.h"
#include "tpp/io/json_file.h"
#include "tpp/io/mapped_file.h"
#include "tpp/tokenizer/bpe_tokenizer.h"
#include "tpp/tokenizer/gguf_pretokenizers.h"
#include "tpp/tokenizer/gguf_read.h"
#include "tpp/tokenizer/text_util.h"

namespace tpp {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// The check's sample: English, digits, punctuation, runs of spaces, tabs and
// newlines, code, accented Latin (in NFC, which Qwen's normalizer keeps), CJK,
// Korean, Cyrillic, Arabic and emoji (a skin tone, a flag, a ZWJ sequence).
constexpr const char* kSamples[] = {
    "Hello, World! It's 2026-12-07: 3.14159 x 42 = 131.94678; isn't THAT'S we'VE fine?",
    "  leading spaces,\ttabs\t\tand   runs   of    spaces   \n\n\nnewlines\r\nCRLF \n trailing  ",
    "    def f(x):\n        return x**2  # 1234567890 00 000 0000\n\n{\"key\": [1, 2.5e-3, null]}",
    "caf\u00e9 na\u00efve \u00dcber stra\u00dfe \u00e7a \u00e0 \u00e9t\u00e9, \u041f\u0440\u0438\u0432\u0435\u0442 \u043c\u0438\u0440, "
    "\u0645\u0631\u062d\u0628\u0627",
    "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8\u3068\u4e2d\u6587\u6587\u672c\uff0c\ud55c\uad6d\uc5b4 "
    "\ud14d\uc2a4\ud2b8\u3002\u4f60\u597d\uff0c\u4e16\u754c\uff01",
    "Emoji: \U0001F600\U0001F44D\U0001F3FD \U0001F1EB\U0001F1F7 \U0001F468\u200D\U0001F469\u200D\U0001F467 "
    "\u2014 \u2764\uFE0F!!!",
};

std::string type_of(const json& j) {
  return j.is_object() && j.contains("type") && j["type"].is_string() ? j["type"].get<std::string>() : "";
}

bool flag(const json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_boolean() && it->get<bool>();
}

// A token named in tokenizer_config.json: "text" or {"content": "text", ...}.
std::string config_token(const json& c, const char* key) {
  const auto it = c.find(key);
  if (it == c.end() || it->is_null()) return {};
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) return (*it)["content"];
  return {};
}

// The chat template as transformers reads it: tokenizer_config.json's
// chat_template (a string, or the one named "default" of a list), else
// chat_template.jinja beside it; "" when there is none.
std::string read_chat_template(const std::string& dir, const json& config) {
  const std::string where = (fs::path(dir) / "tokenizer_config.json").string();
  const auto it = config.find("chat_template");
  if (it == config.end() || it->is_null()) {
    const fs::path jinja = fs::path(dir) / "chat_template.jinja";
    return fs::exists(jinja) ? io::read_text_file(jinja.string()) : std::string();
  }
  if (it->is_string()) return it->get<std::string>();
  if (it->is_array())
    for (const auto& t : *it)
      if (t.is_object() && t.value("name", json()) == "default" && t.contains("template") && t["template"].is_string())
        return t["template"].get<std::string>();
  fail("{}: chat_template: expected a string or a list with an entry named \"default\", got {}", where,
       it->dump().substr(0, 200));
}

// The regexes the byte-level pre-tokenizer splits with, in order (its shape
// was checked by BpeTokenizer::load).
std::vector<std::string> pre_regexes(const json& pre) {
  std::vector<json> steps;
  if (type_of(pre) == "Sequence") steps = pre.at("pretokenizers").get<std::vector<json>>();
  else steps.push_back(pre);
  std::vector<std::string> out;
  for (const auto& p : steps) {
    if (type_of(p) == "ByteLevel" && p.value("use_regex", true))
      out.emplace_back(find_gguf_pretokenizer("gpt-2")->regexes.front());  // GPT-2's regex
    else if (type_of(p) == "Split")
      out.push_back(p.at("pattern").at("Regex").get<std::string>());
  }
  return out;
}

// The start of a sample for a message: control characters escaped, cut at a
// character boundary.
std::string preview(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (out.size() >= 40 && (uint8_t(text[i]) & 0xc0) != 0x80) return out + "...";
    const char c = text[i];
    out += c == '\n' ? std::string("\\n") : c == '\t' ? std::string("\\t") : c == '\r' ? std::string("\\r")
                                                                                        : std::string(1, c);
  }
  return out;
}

std::string ids_near(const std::vector<int32_t>& ids, size_t at) {
  const size_t from = std::min(at, ids.size()), end = std::min(ids.size(), at + 4);
  const std::vector<int32_t> part(ids.begin() + std::ptrdiff_t(from), ids.begin() + std::ptrdiff_t(end));
  return fmt::format("[{}{}]", fmt::join(part, ", "), end < ids.size() ? ", ..." : "");
}


// A merge's parts as written: "a b" or ["a", "b"].
std::pair<std::string, std::string> merge_parts(const json& m) {
  if (m.is_string()) {
    const std::string s = m.get<std::string>();
    const size_t space = s.find(' ', 1);
    return {s.substr(0, space), s.substr(space + 1)};
  }
  return {m[0].get<std::string>(), m[1].get<std::string>()};
}

// SentencePiece-style: whether GGUF's "llama" tokenizer must prepend a space
// (add_space_prefix) to reproduce the file, or a refusal naming what it cannot
// express. llama.cpp turns spaces into ▁ and prepends one to every stretch of
// text between added tokens (Hugging Face's Prepend normalizer, which LLaMA 2,
// Mistral 7B v0.1 and TinyLlama have) or to none (Gemma); it never normalizes.
bool spm_space_prefix(const std::string& path, const json& j) {
  const json& model = j.at("model");
  if (!flag(model, "byte_fallback"))
    fail("{}: a SentencePiece-style tokenizer.json without model.byte_fallback cannot be written to GGUF: "
         "llama.cpp's \"llama\" tokenizer spells characters outside the vocabulary as <0xXX> byte tokens, "
         "where this file gives its unk_token",
         path);
  if (flag(model, "ignore_merges"))
    fail("{}: a SentencePiece-style tokenizer.json with model.ignore_merges cannot be written to GGUF: it takes a "
         "piece found whole in the vocabulary before merging, llama.cpp's \"llama\" tokenizer always merges",
         path);
  bool prepend = false;
  if (const auto n = j.find("normalizer"); n != j.end() && !n->is_null()) {
    const std::vector<json> steps =
        type_of(*n) == "Sequence" ? n->at("normalizers").get<std::vector<json>>() : std::vector<json>{*n};
    for (const auto& step : steps) {
      if (type_of(step) == "NFC")
        fail("{}: a SentencePiece-style tokenizer.json with the NFC normalizer cannot be written to GGUF: "
             "llama.cpp's \"llama\" tokenizer does not normalize",
             path);
      prepend = prepend || type_of(step) == "Prepend";
    }
  }
  const json& pre = j.at("pre_tokenizer");
  if (type_of(pre) == "Metaspace") {
    const std::string scheme = pre.contains("prepend_scheme") ? pre.value("prepend_scheme", "?")
                               : pre.value("add_prefix_space", true) ? "always"
                                                                     : "never";
    if (scheme != "never")
      fail("{}: pre_tokenizer Metaspace with prepend_scheme \"{}\" cannot be written to GGUF: it prepends \u2581 "
           "only where a stretch of text does not start with one{}, llama.cpp's \"llama\" tokenizer prepends a "
           "space to every stretch or to none",
           path, scheme, scheme == "first" ? " and only to the first stretch" : "");
    if (pre.value("split", true))
      fail("{}: pre_tokenizer Metaspace with split true cannot be written to GGUF: it never merges across a "
           "\u2581, llama.cpp's \"llama\" tokenizer does",
           path);
  }
  return prepend;
}

// Scores under which llama.cpp's "llama" tokenizer (the adjacent pair whose
// concatenation is the token of highest score merges first, leftmost on ties;
// a character never merged into a token is spelled as bytes) merges as the
// tokenizer.json's ranks do: a token's score is minus the rank of the first
// merge that makes it. That reproduces the ranks when
//  - every pair llama.cpp could merge is a merge: for each token and each way
//    of cutting it in two where both halves can be symbols (a character, or a
//    token some merge makes), the tokenizer.json has that merge;
//  - the merges that make one token are consecutive among the merges over the
//    same characters. Tokens whose characters never meet in one token (Gemma's
//    runs of newlines, tabs and ▁) never compete, so their merges may interleave;
//  - no merge joins byte tokens (the tokenizer.json may merge its byte
//    fallback's pieces; llama.cpp spells bytes only after merging).
// Tokens holding a character that never reaches the merges are left out: a
// one-character added token that is not special is split out of the text
// first, by the tokenizer.json and llama.cpp alike (Gemma's newline and tab),
// and the normalizer makes no character but ▁.
// Different pairs that make the same token remain: the tokenizer.json takes the
// lower rank, llama.cpp the leftmost; the read-back check covers those.
std::vector<float> spm_scores(const std::string& path, const json& j, const BpeTokenizer& t,
                              const std::vector<std::string>& tokens) {
  const json& merges = j.at("model").at("merges");
  const size_t n = tokens.size();
  std::vector<int32_t> first(n, -1), last(n, -1);
  std::unordered_set<uint64_t> pairs;
  struct Merge {
    int32_t left, right, made;
  };
  std::vector<Merge> ms;
  ms.reserve(merges.size());
  for (const auto& m : merges) {
    const auto [a, b] = merge_parts(m);
    const Merge x{t.token_id(a), t.token_id(b), t.token_id(a + b)};
    const int32_t r = int32_t(ms.size());
    if (tok::byte_token_value(a) >= 0 || tok::byte_token_value(b) >= 0)
      fail("{}: model.merges[{}] [\"{}\", \"{}\"] joins byte tokens, which llama.cpp's \"llama\" tokenizer never "
           "merges",
           path, r, a, b);
    if (r >= (1 << 24))
      fail("{}: model.merges has more than 2^24 entries, which f32 scores cannot rank exactly", path);
    pairs.insert(uint64_t(uint32_t(x.left)) << 32 | uint32_t(x.right));
    if (first[size_t(x.made)] < 0) first[size_t(x.made)] = r;
    ms.push_back(x);
  }

  // The characters of one token belong together (union-find over code points;
  // a byte that is not UTF-8 counts as a character of its own).
  auto chars = [](std::string_view s) {
    std::vector<uint32_t> out;
    for (size_t i = 0; i < s.size();) {
      const utf8::Decoded d = utf8::decode(s, i);
      out.push_back(d.ok() ? uint32_t(d.cp) : 0x110000u + uint8_t(s[i]));
      i += d.ok() ? d.len : 1;
    }
    return out;
  };
  std::unordered_set<uint32_t> split_out;
  if (const auto it = j.find("added_tokens"); it != j.end() && it->is_array())
    for (const auto& a : *it)
      if (const std::vector<uint32_t> cs = chars(a.at("content").get<std::string>());
          !flag(a, "special") && cs.size() == 1 && a.at("content").get<std::string>() != tok::kMetaspace)
        split_out.insert(cs[0]);
  std::vector<char> live(n, 1);  // no character of the token is split out
  for (size_t i = 0; i < n; ++i)
    for (uint32_t cp : chars(tokens[i])) live[i] = live[i] && !split_out.count(cp);

  std::unordered_map<uint32_t, int32_t> index;
  std::vector<int32_t> parent;
  auto root = [&](uint32_t cp) {
    auto [it, added] = index.try_emplace(cp, int32_t(parent.size()));
    if (added) parent.push_back(it->second);
    int32_t x = it->second;
    while (parent[size_t(x)] != x) x = parent[size_t(x)] = parent[size_t(parent[size_t(x)])];
    return x;
  };
  for (size_t i = 0; i < n; ++i)
    if (first[i] >= 0 && live[i]) {
      const std::vector<uint32_t> cs = chars(t.piece(int32_t(i)));
      for (uint32_t cp : cs) parent[size_t(root(cp))] = root(cs[0]);
    }
  std::vector<int32_t> group(n, -1);
  for (size_t i = 0; i < n; ++i)
    if (first[i] >= 0) group[i] = root(chars(t.piece(int32_t(i)))[0]);

  // Consecutive per group of characters: `open[g]` is the token group g's
  // merges make now; a token whose run has ended must not come back.
  std::unordered_map<int32_t, int32_t> open;
  std::vector<int32_t> ended_by(n, -1);  // the rank that ended a token's run
  for (int32_t r = 0; r < int32_t(ms.size()); ++r) {
    const int32_t made = ms[size_t(r)].made;
    if (!live[size_t(made)]) continue;
    auto [it, added] = open.try_emplace(group[size_t(made)], made);
    if (!added && it->second != made) {
      ended_by[size_t(it->second)] = r;
      it->second = made;
    }
    if (const int32_t e = ended_by[size_t(made)]; e >= 0)
      fail("{}: model.merges[{}] and model.merges[{}] make '{}', and model.merges[{}] between them makes '{}': "
           "GGUF's \"llama\" tokenizer orders merges by one score per token, so no scores reproduce these ranks",
           path, last[size_t(made)], r, t.piece(made), e, t.piece(ms[size_t(e)].made));
    last[size_t(made)] = r;
  }

  // Every pair llama.cpp could merge is a merge.
  auto symbol = [&](std::string_view s) {
    if (utf8::decode(s, 0).len == s.size()) return true;  // one character
    const int32_t id = t.token_id(std::string(s));
    return id >= 0 && first[size_t(id)] >= 0;
  };
  for (size_t i = 0; i < n; ++i) {
    const std::string& text = tokens[i];
    if (!live[i]) continue;
    for (size_t cut = 0; cut < text.size();) {
      const utf8::Decoded d = utf8::decode(text, cut);
      cut += d.ok() ? d.len : 1;
      if (cut >= text.size()) break;
      const std::string_view a = std::string_view(text).substr(0, cut), b = std::string_view(text).substr(cut);
      if (!symbol(a) || !symbol(b)) continue;
      const int32_t ia = t.token_id(std::string(a)), ib = t.token_id(std::string(b));
      if (ia < 0 || ib < 0 || !pairs.count(uint64_t(uint32_t(ia)) << 32 | uint32_t(ib)))
        fail("{}: token {} '{}' is '{}' + '{}', which llama.cpp's \"llama\" tokenizer would merge but model.merges "
             "never merges, so no scores reproduce the tokenizer.json",
             path, i, text, a, b);
    }
  }

  std::vector<float> scores(n, -1e9f);
  for (size_t i = 0; i < n; ++i)
    if (first[i] >= 0) scores[i] = -float(first[i]);
  return scores;
}
}  // namespace

// Everything the writer and the check share, read from the directory.
struct GgufTokenizerSource::Impl {
  std::string path;  // tokenizer.json
  json j;
  json config;  // tokenizer_config.json, or an empty object
  BpeTokenizer tokenizer;
  int32_t bos = -1, eos = -1;  // as written: the config's, else the token the template adds
  std::string chat_template;
  bool spm = false;           // SentencePiece-style: written as "llama"
  bool space_prefix = false;  // "llama": add_space_prefix
};

GgufTokenizerSource::GgufTokenizerSource(const std::string& dir) {
  const std::string path = (fs::path(dir) / "tokenizer.json").string();
  json j = io::read_json_file(path);
  if (const std::string type = j.is_object() ? type_of(j.value("model", json())) : ""; type != "BPE")
    fail("{}: a tokenizer.json with model.type \"{}\" cannot be written to GGUF: tpp writes BPE tokenizers only "
         "(\"gpt2\" for byte-level BPE, \"llama\" for SentencePiece-style BPE with byte fallback)",
         path, type);
  BpeTokenizer tokenizer = BpeTokenizer::from_json(path, j);
  impl_ = std::make_unique<Impl>(Impl{path, std::move(j), json::object(), std::move(tokenizer), -1, -1, {}});
  Impl& s = *impl_;
  const fs::path config = fs::path(dir) / "tokenizer_config.json";
  if (fs::exists(config)) s.config = io::read_json_file(config.string());
  if (!s.config.is_object()) fail("{}: expected a JSON object", config.string());
  // Byte-level BPE decodes with ByteLevel; anything else that BpeTokenizer
  // reads is SentencePiece-style.
  s.spm = type_of(s.j["decoder"]) != "ByteLevel";
  if (s.spm) s.space_prefix = spm_space_prefix(path, s.j);
  const BpeTokenizer& t = s.tokenizer;
  // GGUF adds at most tokenizer.ggml.bos_token_id before the text and
  // tokenizer.ggml.eos_token_id after it.
  auto one = [&](const std::vector<int32_t>& ids, int32_t named, const char* where, const char* key) {
    if (ids.empty()) return named;
    if (ids.size() > 1 || (named >= 0 && ids[0] != named))
      fail("{}: the tokenizer adds [{}] {} the text, which GGUF cannot express: expected at most "
           "tokenizer_config.json's {} ({})",
           path, fmt::join(ids, ", "), where, key, named);
    return ids[0];
  };
  s.bos = one(t.prefix_ids(), t.bos_id(), "before", "bos_token");
  s.eos = one(t.suffix_ids(), t.eos_id(), "after", "eos_token");
  s.chat_template = read_chat_template(dir, s.config);
}

GgufTokenizerSource::GgufTokenizerSource(GgufTokenizerSource&&) noexcept = default;
GgufTokenizerSource::~GgufTokenizerSource() = default;

GgufMetadata GgufTokenizerSource::metadata(int64_t vocab_size) const try {
  const Impl& s = *impl_;
  const BpeTokenizer& t = s.tokenizer;
  const json& model = s.j.at("model");
  const bool ignore_merges = flag(model, "ignore_merges");
  std::optional<std::string_view> pre = "default";
  std::vector<std::string> regexes;
  if (!s.spm) {
    regexes = pre_regexes(s.j.at("pre_tokenizer"));
    pre = gguf_pretokenizer_for(regexes, ignore_merges);
  }
  if (!pre)
    fail("{}: pre_tokenizer regexes [{}] with ignore_merges {} are not those of any llama.cpp pre-tokenizer "
         "(tokenizer.ggml.pre) that tpp knows ({}), so the file could not say how to split text",
         s.path, fmt::join(regexes, ", "), ignore_merges, gguf_pretokenizer_names());

  // Tokens in id order, padded to the model's vocabulary as the converter pads.
  const int64_t n = t.vocab_size();
  if (n > vocab_size)
    fail("{}: token ids run to {}, but the model's vocab_size is {}: expected the tokenizer's ids below it", s.path,
         n - 1, vocab_size);
  std::vector<std::string> tokens(static_cast<size_t>(vocab_size));
  std::vector<int32_t> types(static_cast<size_t>(vocab_size), 1);
  for (int64_t i = 0; i < vocab_size; ++i) {
    if (i < n && !t.piece(int32_t(i)).empty()) {
      tokens[size_t(i)] = t.piece(int32_t(i));
    } else {
      tokens[size_t(i)] = fmt::format("[PAD{}]", i);
      types[size_t(i)] = 5;  // unused
    }
  }
  if (s.spm)  // <0xXX> model tokens are bytes (LlamaHfVocab); added tokens below override
    for (int64_t i = 0; i < n; ++i)
      if (types[size_t(i)] == 1 && tok::byte_token_value(tokens[size_t(i)]) >= 0) types[size_t(i)] = 6;
  if (const auto it = s.j.find("added_tokens"); it != s.j.end() && it->is_array())
    for (const auto& a : *it) types[size_t(a.at("id").get<int64_t>())] = flag(a, "special") ? 3 : 4;

  GgufMetadata m;
  m.emplace_back("tokenizer.ggml.model", io::gguf_string(s.spm ? "llama" : "gpt2"));
  m.emplace_back("tokenizer.ggml.pre", io::gguf_string(std::string(*pre)));
  if (s.spm) {
    for (int b = 0; b < 256; ++b)
      if (t.token_id(fmt::format("<0x{:02X}>", b)) < 0)
        fail("{}: model.vocab has no <0x{:02X}>, which llama.cpp's \"llama\" tokenizer needs for byte fallback",
             s.path, b);
    std::vector<float> scores = spm_scores(s.path, s.j, t, tokens);
    m.emplace_back("tokenizer.ggml.tokens", io::gguf_strings(std::move(tokens)));
    m.emplace_back("tokenizer.ggml.scores", io::gguf_f32s(scores));
    m.emplace_back("tokenizer.ggml.token_type", io::gguf_i32s(types));
    m.emplace_back("tokenizer.ggml.add_space_prefix", io::gguf_bool(s.space_prefix));
  } else {
    std::vector<std::string> merges;
    for (const auto& mj : model.at("merges")) {
      if (mj.is_string()) {
        merges.push_back(mj.get<std::string>());
        continue;
      }
      const auto [a, b] = merge_parts(mj);
      if (a.find(' ') != std::string::npos || b.find(' ') != std::string::npos)
        fail("{}: model.merges[{}] [\"{}\", \"{}\"] holds a space, which GGUF's \"left right\" merges cannot",
             s.path, merges.size(), a, b);
      merges.push_back(a + " " + b);
    }
    m.emplace_back("tokenizer.ggml.tokens", io::gguf_strings(std::move(tokens)));
    m.emplace_back("tokenizer.ggml.token_type", io::gguf_i32s(types));
    m.emplace_back("tokenizer.ggml.merges", io::gguf_strings(std::move(merges)));
  }
  if (s.bos >= 0) m.emplace_back("tokenizer.ggml.bos_token_id", io::gguf_u32(uint32_t(s.bos)));
  if (s.eos >= 0) m.emplace_back("tokenizer.ggml.eos_token_id", io::gguf_u32(uint32_t(s.eos)));
  if (const int32_t pad = t.token_id(config_token(s.config, "pad_token")); pad >= 0)
    m.emplace_back("tokenizer.ggml.padding_token_id", io::gguf_u32(uint32_t(pad)));
  if (const int32_t unk = t.token_id(config_token(s.config, "unk_token")); s.spm && unk >= 0)
    m.emplace_back("tokenizer.ggml.unknown_token_id", io::gguf_u32(uint32_t(unk)));
  m.emplace_back("tokenizer.ggml.add_bos_token", io::gguf_bool(!t.prefix_ids().empty()));
  m.emplace_back("tokenizer.ggml.add_eos_token", io::gguf_bool(!t.suffix_ids().empty()));
  if (!s.chat_template.empty()) m.emplace_back("tokenizer.chat_template", io::gguf_string(s.chat_template));
  return m;
} catch (const json::exception& e) {
  fail("{}: unexpected JSON structure: {}", impl_->path, e.what());
}

void GgufTokenizerSource::check(const io::GgufFile& f) const {
  const Impl& s = *impl_;
  const BpeTokenizer& want = s.tokenizer;
  const GgufVocab v = read_gguf_vocab(f);
  const BpeTokenizer got = BpeTokenizer::from_gguf(v);
  const std::string what = fmt::format("{}: the tokenizer read back from {}", s.path, f.path());

  // The sample, and the text of every added token between words: special
  // tokens become themselves only when special text is parsed, the others always.
  std::vector<std::string> samples(std::begin(kSamples), std::end(kSamples));
  std::string added = "Hi";
  for (size_t i = 0; i < v.token_types.size(); ++i)
    if (v.token_types[i] == 3 || v.token_types[i] == 4) added += v.tokens[i] + (i % 2 ? " there" : "x\n");
  samples.push_back(added);
  for (size_t i = 0; i < samples.size(); ++i)
    for (bool special : {true, false}) {
      const auto a = want.encode(samples[i], special, special), b = got.encode(samples[i], special, special);
      if (a != b) {
        const size_t at = size_t(std::mismatch(a.begin(), a.end(), b.begin(), b.end()).first - a.begin());
        fail("{} encodes sample {} (\"{}\", {} special tokens) differently: from token {} it gives {}, the "
             "tokenizer.json gives {} ({} and {} tokens)",
             what, i, preview(samples[i]), special ? "with" : "without", at, ids_near(b, at), ids_near(a, at),
             b.size(), a.size());
      }
      if (want.decode(a) != got.decode(a))
        fail("{} decodes the ids of sample {} (\"{}\") to \"{}\", the tokenizer.json to \"{}\"", what, i,
             preview(samples[i]), preview(got.decode(a)), preview(want.decode(a)));
    }
  if (got.bos_id() != s.bos) fail("{} has BOS id {}, expected {}", what, got.bos_id(), s.bos);
  if (v.eos.value_or(-1) != s.eos) fail("{} has EOS id {}, expected {}", what, v.eos.value_or(-1), s.eos);
  for (int32_t id : want.stop_ids())
    if (std::find(got.stop_ids().begin(), got.stop_ids().end(), id) == got.stop_ids().end())
      fail("{} does not stop generation at id {} ('{}'): it stops at [{}]", what, id, want.piece(id),
           fmt::join(got.stop_ids(), ", "));
  if (v.chat_template != s.chat_template)
    fail("{} has a chat template of {} bytes, expected the {} bytes of tokenizer_config.json's", what,
         v.chat_template.size(), s.chat_template.size());
}

}  // namespace tpp
