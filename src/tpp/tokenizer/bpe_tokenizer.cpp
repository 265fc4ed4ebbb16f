#include "tpp/tokenizer/bpe_tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <filesystem>
#include <functional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tpp/core/error.h"
#include "tpp/io/json_file.h"

namespace tpp {
namespace {

using json = nlohmann::json;

// GPT-2's pre-tokenizer regex (ByteLevel with use_regex).
constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xc0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3f));
  } else {
    out += char(0xe0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3f));
    out += char(0x80 | (cp & 0x3f));
  }
}

// Length of the UTF-8 sequence starting with byte c (1 for invalid bytes).
size_t utf8_len(unsigned char c) { return c < 0xc0 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4; }

uint32_t decode_utf8(std::string_view s, size_t* i) {
  const unsigned char c = static_cast<unsigned char>(s[*i]);
  const size_t n = std::min(utf8_len(c), s.size() - *i);
  uint32_t cp = n == 1 ? c : c & (0xff >> (n + 1));
  for (size_t k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[*i + k]) & 0x3f);
  *i += n;
  return cp;
}

// Unicode NFC via ICU (the NFC normalizer of Qwen2/3's tokenizer.json).
std::string nfc(std::string_view text) {
  UErrorCode err = U_ZERO_ERROR;
  const UNormalizer2* n = unorm2_getNFCInstance(&err);
  if (U_FAILURE(err)) fail("tokenizer: ICU NFC is unavailable: {}", u_errorName(err));
  int32_t len16 = 0;
  err = U_ZERO_ERROR;
  u_strFromUTF8WithSub(nullptr, 0, &len16, text.data(), int32_t(text.size()), 0xfffd, nullptr, &err);
  std::u16string in(size_t(len16), u'\0');
  err = U_ZERO_ERROR;
  u_strFromUTF8WithSub(reinterpret_cast<UChar*>(in.data()), len16, nullptr, text.data(), int32_t(text.size()),
                       0xfffd, nullptr, &err);
  err = U_ZERO_ERROR;
  const int32_t out_len = unorm2_normalize(n, reinterpret_cast<const UChar*>(in.data()), len16, nullptr, 0, &err);
  std::u16string out(size_t(out_len), u'\0');
  err = U_ZERO_ERROR;
  unorm2_normalize(n, reinterpret_cast<const UChar*>(in.data()), len16, reinterpret_cast<UChar*>(out.data()),
                   out_len, &err);
  if (U_FAILURE(err)) fail("tokenizer: NFC normalisation failed: {}", u_errorName(err));
  int32_t len8 = 0;
  err = U_ZERO_ERROR;
  u_strToUTF8(nullptr, 0, &len8, reinterpret_cast<const UChar*>(out.data()), out_len, &err);
  std::string result(size_t(len8), '\0');
  err = U_ZERO_ERROR;
  u_strToUTF8(result.data(), len8, nullptr, reinterpret_cast<const UChar*>(out.data()), out_len, &err);
  return result;
}

const json& field(const json& j, const char* key, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end()) fail("{}: missing key '{}'", where, key);
  return *it;
}

}  // namespace

struct BpeTokenizer::Regex {
  pcre2_code* code = nullptr;
  ~Regex() {
    if (code) pcre2_code_free(code);
  }
};

BpeTokenizer::BpeTokenizer() = default;
BpeTokenizer::BpeTokenizer(BpeTokenizer&&) noexcept = default;
BpeTokenizer& BpeTokenizer::operator=(BpeTokenizer&&) noexcept = default;
BpeTokenizer::~BpeTokenizer() = default;

BpeTokenizer BpeTokenizer::load(const std::string& path_in) {
  namespace fs = std::filesystem;
  const std::string path = fs::is_directory(path_in) ? (fs::path(path_in) / "tokenizer.json").string() : path_in;
  const json j = io::read_json_file(path);
  BpeTokenizer t;
  t.path_ = path;
  if (!j.is_object()) fail("{}: expected a JSON object", path);

  // GPT-2's byte <-> printable character map.
  {
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
      const uint32_t cp = printable ? uint32_t(b) : uint32_t(256 + n++);
      append_utf8(t.byte_to_char_[b], cp);
      t.char_to_byte_[cp] = uint8_t(b);
    }
  }

  const json& model = field(j, "model", path);
  const std::string model_type = model.value("type", "");
  if (model_type != "BPE") fail("{}: model.type is \"{}\", expected \"BPE\"", path, model_type);
  t.ignore_merges_ = model.value("ignore_merges", false);
  const json& vocab = field(model, "vocab", path + ": model");
  if (!vocab.is_object()) fail("{}: model.vocab must be an object of token -> id", path);
  int32_t max_id = -1;
  for (const auto& [tok, id] : vocab.items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX)
      fail("{}: model.vocab['{}']: expected a non-negative id, got {}", path, tok, id.dump());
    t.vocab_[tok] = id.get<int32_t>();
    max_id = std::max(max_id, id.get<int32_t>());
  }
  const json& merges = field(model, "merges", path + ": model");
  if (!merges.is_array()) fail("{}: model.merges must be an array", path);
  int rank = 0;
  for (const auto& m : merges) {
    std::string key;
    if (m.is_string()) key = m.get<std::string>();
    else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string())
      key = m[0].get<std::string>() + " " + m[1].get<std::string>();
    else fail("{}: model.merges[{}]: expected \"a b\" or [\"a\", \"b\"], got {}", path, rank, m.dump());
    t.merge_rank_.emplace(std::move(key), rank++);
  }
  if (auto it = j.find("added_tokens"); it != j.end() && !it->is_null()) {
    for (const auto& a : *it) {
      const std::string content = field(a, "content", path + ": added_tokens").get<std::string>();
      const int32_t id = field(a, "id", path + ": added_tokens").get<int32_t>();
      t.added_.push_back({content, id, a.value("special", false)});
      t.vocab_[content] = id;
      max_id = std::max(max_id, id);
    }
    std::stable_sort(t.added_.begin(), t.added_.end(),
                     [](const Added& a, const Added& b) { return a.content.size() > b.content.size(); });
  }
  t.id_to_token_.resize(size_t(max_id + 1));
  for (const auto& [tok, id] : t.vocab_) t.id_to_token_[size_t(id)] = tok;

  if (auto n = j.find("normalizer"); n != j.end() && !n->is_null()) {
    std::vector<json> steps;
    const std::string type = n->is_object() ? n->value("type", "?") : "?";
    if (type == "Sequence") steps = field(*n, "normalizers", path + ": normalizer").get<std::vector<json>>();
    else steps.push_back(*n);
    for (const auto& step : steps) {
      const std::string st = step.is_object() ? step.value("type", "?") : "?";
      if (st == "NFC") {
        t.nfc_ = true;
      } else if (st == "Replace" && step.contains("pattern") && step["pattern"].value("String", "") == " " &&
                 step.value("content", "") == "\u2581") {
        t.metaspace_ = true;
      } else if (st == "Prepend" && step.value("prepend", "") == "\u2581") {
        t.prepend_ = "\u2581";
      } else {
        fail("{}: normalizer {} is not supported (expected NFC, or Replace \" \" -> \"\u2581\")", path, st);
      }
    }
  }
  if (model.value("byte_fallback", false)) {
    if (!t.metaspace_) fail("{}: model.byte_fallback without the metaspace normalizer is not supported", path);
    for (int b = 0; b < 256; ++b) {
      const int32_t id = t.token_id(fmt::format("<0x{:02X}>", b));
      if (id < 0) fail("{}: byte_fallback is set but token <0x{:02X}> is missing", path, b);
      t.byte_token_[b] = id;
    }
    t.byte_fallback_ = true;
  }

  // Pre-tokenizer: the regex that splits text before BPE.
  std::string pattern;
  const json& pre = field(j, "pre_tokenizer", path);
  auto byte_level = [&](const json& p) {
    if (p.value("add_prefix_space", false))
      fail("{}: pre_tokenizer ByteLevel with add_prefix_space is not supported", path);
    if (p.value("use_regex", true)) {
      if (!pattern.empty()) fail("{}: pre_tokenizer has two regexes", path);
      pattern = kGpt2Pattern;
    }
  };
  const std::string pre_type = pre.is_object() ? pre.value("type", "") : "";
  if (t.metaspace_) {
    // After the normalizer there are no spaces left, so splitting on them is a no-op.
    const bool split_on_space = pre_type == "Split" && pre["pattern"].value("String", "") == " " &&
                                pre.value("behavior", "") == "MergedWithPrevious";
    if (!pre.is_null() && !split_on_space)
      fail("{}: pre_tokenizer {} is not supported with the metaspace normalizer", path, pre_type);
  } else if (pre_type == "ByteLevel") {
    byte_level(pre);
  } else if (pre_type == "Sequence") {
    for (const auto& p : field(pre, "pretokenizers", path + ": pre_tokenizer")) {
      const std::string type = p.value("type", "");
      if (type == "ByteLevel") {
        byte_level(p);
      } else if (type == "Split") {
        const json& pat = field(p, "pattern", path + ": Split");
        if (!pat.contains("Regex") || p.value("behavior", "") != "Isolated" || p.value("invert", false))
          fail("{}: pre_tokenizer Split: only a Regex pattern with behavior Isolated is supported", path);
        if (!pattern.empty()) fail("{}: pre_tokenizer has two regexes", path);
        pattern = pat["Regex"].get<std::string>();
      } else {
        fail("{}: pre_tokenizer {} is not supported", path, type);
      }
    }
  } else {
    fail("{}: pre_tokenizer type \"{}\" is not supported (expected ByteLevel or Sequence)", path, pre_type);
  }
  if (!pattern.empty()) {
    int err = 0;
    PCRE2_SIZE offset = 0;
    t.regex_ = std::make_unique<Regex>();
    t.regex_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.c_str()), pattern.size(),
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK, &err, &offset, nullptr);
    if (!t.regex_->code) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof msg);
      fail("{}: pre_tokenizer regex does not compile at offset {}: {}", path, offset, reinterpret_cast<char*>(msg));
    }
    pcre2_jit_compile(t.regex_->code, PCRE2_JIT_COMPLETE);  // best effort
  }

  // Post-processor: the special tokens add_special adds around the text.
  std::function<void(const json&)> post = [&](const json& p) {
    if (p.is_null()) return;
    const std::string type = p.value("type", "");
    if (type == "ByteLevel") return;
    if (type == "Sequence") {
      for (const auto& q : field(p, "processors", path + ": post_processor")) post(q);
      return;
    }
    if (type != "TemplateProcessing") fail("{}: post_processor {} is not supported", path, type);
    bool before = true;
    for (const auto& item : field(p, "single", path + ": post_processor")) {
      if (item.contains("Sequence")) {
        before = false;
      } else if (item.contains("SpecialToken")) {
        const std::string name = item["SpecialToken"].value("id", "");
        auto it = t.vocab_.find(name);
        if (it == t.vocab_.end()) fail("{}: post_processor names token '{}', which is not in the vocabulary", path, name);
        (before ? t.prefix_ : t.suffix_).push_back(it->second);
      }
    }
  };
  post(j.value("post_processor", json()));

  const fs::path config = fs::path(path).parent_path() / "tokenizer_config.json";
  if (fs::exists(config)) {
    const json c = io::read_json_file(config.string());
    if (auto it = c.find("eos_token"); it != c.end() && !it->is_null()) {
      const std::string eos = it->is_string() ? it->get<std::string>() : it->value("content", "");
      t.eos_ = t.token_id(eos);
      if (t.eos_ < 0) fail("{}: eos_token '{}' is not in the vocabulary of {}", config.string(), eos, path);
    }
  }
  return t;
}

int32_t BpeTokenizer::token_id(const std::string& text) const {
  auto it = vocab_.find(text);
  return it == vocab_.end() ? -1 : it->second;
}

const std::string& BpeTokenizer::piece(int32_t id) const {
  TPP_CHECK(id >= 0 && id < vocab_size(), "tokenizer: id {} outside [0, {})", id, vocab_size());
  return id_to_token_[size_t(id)];
}

std::vector<std::string> BpeTokenizer::merge(std::vector<std::string> sym) const {
  std::string key;
  while (sym.size() > 1) {
    int best = INT32_MAX;
    size_t at = 0;
    for (size_t i = 0; i + 1 < sym.size(); ++i) {
      key.assign(sym[i]).append(" ").append(sym[i + 1]);
      if (auto it = merge_rank_.find(key); it != merge_rank_.end() && it->second < best) {
        best = it->second;
        at = i;
      }
    }
    if (best == INT32_MAX) break;
    sym[at] += sym[at + 1];
    sym.erase(sym.begin() + long(at) + 1);
  }
  return sym;
}

// BPE over one pre-tokenized piece: its characters (byte-level: its bytes as
// GPT-2 characters) merged pair by pair in rank order.
void BpeTokenizer::encode_piece(std::string_view piece, std::vector<int32_t>& out) const {
  std::string mapped;
  if (metaspace_) mapped.assign(piece);
  else
    for (unsigned char c : piece) mapped += byte_to_char_[c];
  if (ignore_merges_)
    if (auto it = vocab_.find(mapped); it != vocab_.end()) {
      out.push_back(it->second);
      return;
    }
  std::vector<std::string> sym;
  for (size_t i = 0; i < mapped.size();) {
    const size_t n = std::min(utf8_len(static_cast<unsigned char>(mapped[i])), mapped.size() - i);
    sym.emplace_back(mapped.substr(i, n));
    i += n;
  }
  for (const auto& s : merge(std::move(sym))) {
    auto it = vocab_.find(s);
    if (it != vocab_.end()) {
      out.push_back(it->second);
    } else if (byte_fallback_) {
      for (unsigned char c : s) out.push_back(byte_token_[c]);  // byte fallback
    } else {
      fail("{}: no token for '{}' after merging (the vocabulary lacks it and has no byte fallback)", path_, s);
    }
  }
}

void BpeTokenizer::encode_ordinary(std::string_view text_in, std::vector<int32_t>& out) const {
  if (text_in.empty()) return;
  std::string normalized;
  if (nfc_) normalized = nfc(text_in);
  if (metaspace_) {
    // SentencePiece style: the whole segment is one piece, spaces as U+2581.
    std::string sp = prepend_;
    for (char ch : nfc_ ? std::string_view(normalized) : text_in) {
      if (ch == ' ') sp += "\u2581";
      else sp += ch;
    }
    return encode_piece(sp, out);
  }
  const std::string_view text = nfc_ ? std::string_view(normalized) : text_in;
  if (!regex_) return encode_piece(text, out);
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(regex_->code, nullptr);
  size_t pos = 0, last = 0;
  while (pos <= text.size()) {
    const int rc = pcre2_match(regex_->code, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), pos,
                               PCRE2_NO_UTF_CHECK, md, nullptr);
    if (rc < 0) break;
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    if (ov[1] == ov[0]) {  // empty match: step one character
      pos = ov[0] + (ov[0] < text.size() ? utf8_len(static_cast<unsigned char>(text[ov[0]])) : 1);
      continue;
    }
    if (ov[0] > last) encode_piece(text.substr(last, ov[0] - last), out);  // Isolated: gaps are pieces too
    encode_piece(text.substr(ov[0], ov[1] - ov[0]), out);
    last = pos = ov[1];
  }
  pcre2_match_data_free(md);
  if (last < text.size()) encode_piece(text.substr(last), out);
}

std::vector<int32_t> BpeTokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
  std::vector<int32_t> out;
  if (add_special) out = prefix_;
  size_t start = 0;
  if (parse_special && !added_.empty()) {
    for (size_t i = 0; i < text.size();) {
      const Added* hit = nullptr;
      for (const auto& a : added_)
        if (!a.content.empty() && text.compare(i, a.content.size(), a.content) == 0) {
          hit = &a;
          break;
        }
      if (!hit) {
        ++i;
        continue;
      }
      encode_ordinary(text.substr(start, i - start), out);
      out.push_back(hit->id);
      i += hit->content.size();
      start = i;
    }
  }
  encode_ordinary(text.substr(start), out);
  if (add_special) out.insert(out.end(), suffix_.begin(), suffix_.end());
  return out;
}

std::string BpeTokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string out;
  for (int32_t id : ids) {
    const std::string& p = piece(id);
    // Added tokens are raw text; in SentencePiece style only the special ones
    // stay verbatim (Gemma's runs of ▁ and tabs are added, non-special tokens).
    const auto added = std::find_if(added_.begin(), added_.end(), [&](const Added& a) { return a.id == id; });
    if (added != added_.end() && (!metaspace_ || added->special)) {
      out += p;
      continue;
    }
    if (metaspace_) {
      unsigned byte = 0;
      if (p.size() == 6 && p.compare(0, 3, "<0x") == 0 && p[5] == '>' && std::sscanf(p.c_str() + 3, "%2X", &byte) == 1) {
        out += char(byte);
        continue;
      }
      for (size_t i = 0; i < p.size();) {
        if (p.compare(i, 3, "\u2581") == 0) {
          out += ' ';
          i += 3;
        } else {
          out += p[i++];
        }
      }
      continue;
    }
    for (size_t i = 0; i < p.size();) {
      const uint32_t cp = decode_utf8(p, &i);
      auto it = char_to_byte_.find(cp);
      if (it != char_to_byte_.end()) out += char(it->second);
    }
  }
  return out;
}

}  // namespace tpp
