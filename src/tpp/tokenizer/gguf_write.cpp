#include "tpp/tokenizer/gguf_write.h"

#include <algorithm>
#include <filesystem>
#include <optional>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "tpp/core/error.h"
#include "tpp/io/json_file.h"
#include "tpp/io/mapped_file.h"
#include "tpp/tokenizer/bpe_tokenizer.h"
#include "tpp/tokenizer/gguf_pretokenizers.h"
#include "tpp/tokenizer/gguf_read.h"

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

}  // namespace

// Everything the writer and the check share, read from the directory.
struct GgufTokenizerSource::Impl {
  std::string path;  // tokenizer.json
  json j;
  json config;  // tokenizer_config.json, or an empty object
  BpeTokenizer tokenizer;
  int32_t bos = -1, eos = -1;  // as written: the config's, else the token the template adds
  std::string chat_template;
};

GgufTokenizerSource::GgufTokenizerSource(const std::string& dir) {
  const std::string path = (fs::path(dir) / "tokenizer.json").string();
  json j = io::read_json_file(path);
  BpeTokenizer tokenizer = BpeTokenizer::from_json(path, j);
  impl_ = std::make_unique<Impl>(Impl{path, std::move(j), json::object(), std::move(tokenizer), -1, -1, {}});
  Impl& s = *impl_;
  const fs::path config = fs::path(dir) / "tokenizer_config.json";
  if (fs::exists(config)) s.config = io::read_json_file(config.string());
  if (!s.config.is_object()) fail("{}: expected a JSON object", config.string());
  if (type_of(s.j["decoder"]) != "ByteLevel")
    fail("{}: a SentencePiece-style tokenizer.json cannot be written to GGUF yet (GGUF's \"llama\" tokenizer needs "
         "per-token scores, and tokenizer.json has merge ranks); expected a byte-level BPE tokenizer (decoder "
         "ByteLevel)",
         path);
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
  const std::vector<std::string> regexes = pre_regexes(s.j.at("pre_tokenizer"));
  const auto pre = gguf_pretokenizer_for(regexes, ignore_merges);
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
  if (const auto it = s.j.find("added_tokens"); it != s.j.end() && it->is_array())
    for (const auto& a : *it) types[size_t(a.at("id").get<int64_t>())] = flag(a, "special") ? 3 : 4;

  std::vector<std::string> merges;
  for (const auto& m : model.at("merges")) {
    if (m.is_string()) {
      merges.push_back(m.get<std::string>());
      continue;
    }
    const std::string a = m[0].get<std::string>(), b = m[1].get<std::string>();
    if (a.find(' ') != std::string::npos || b.find(' ') != std::string::npos)
      fail("{}: model.merges[{}] [\"{}\", \"{}\"] holds a space, which GGUF's \"left right\" merges cannot", s.path,
           merges.size(), a, b);
    merges.push_back(a + " " + b);
  }

  GgufMetadata m;
  m.emplace_back("tokenizer.ggml.model", io::gguf_string("gpt2"));
  m.emplace_back("tokenizer.ggml.pre", io::gguf_string(std::string(*pre)));
  m.emplace_back("tokenizer.ggml.tokens", io::gguf_strings(std::move(tokens)));
  m.emplace_back("tokenizer.ggml.token_type", io::gguf_i32s(types));
  m.emplace_back("tokenizer.ggml.merges", io::gguf_strings(std::move(merges)));
  if (s.bos >= 0) m.emplace_back("tokenizer.ggml.bos_token_id", io::gguf_u32(uint32_t(s.bos)));
  if (s.eos >= 0) m.emplace_back("tokenizer.ggml.eos_token_id", io::gguf_u32(uint32_t(s.eos)));
  if (const int32_t pad = t.token_id(config_token(s.config, "pad_token")); pad >= 0)
    m.emplace_back("tokenizer.ggml.padding_token_id", io::gguf_u32(uint32_t(pad)));
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
