// The tokenizer's run-time half: splitting out added tokens, normalising,
// pre-tokenizing, merging and decoding. The loaders are bpe_tokenizer_json.cpp
// (tokenizer.json) and bpe_tokenizer_gguf.cpp (GGUF metadata).
#include "tpp/tokenizer/bpe_tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>

#include <algorithm>
#include <memory>
#include <new>

#include <fmt/format.h>

#include "tpp/core/error.h"
#include "tpp/core/utf8.h"
#include "tpp/tokenizer/text_util.h"

namespace tpp {

using tok::kMetaspace;

namespace {

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

// GPT-2's byte <-> printable character map: printable Latin-1 bytes stand for
// themselves, the others for U+0100 onwards in byte order.
void BpeTokenizer::init_byte_map() {
  int n = 0;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    const uint32_t cp = printable ? uint32_t(b) : uint32_t(256 + n++);
    utf8::append(byte_to_char_[b], cp);
    char_to_byte_[cp] = uint8_t(b);
  }
}

void BpeTokenizer::add_regex(const std::string& pattern, const std::string& where) {
  int err = 0;
  PCRE2_SIZE offset = 0;
  auto re = std::make_unique<Regex>();
  re->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.c_str()), pattern.size(), PCRE2_UTF | PCRE2_UCP,
                           &err, &offset, nullptr);
  if (!re->code) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    fail("{}: {} regex does not compile at offset {}: {}", path_, where, offset, reinterpret_cast<char*>(msg));
  }
  pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE);  // best effort: the interpreter is the fallback
  regexes_.push_back(std::move(re));
}

// Builds the byte trie of added tokens. Longest-first matching at each position
// gives Hugging Face's leftmost-longest split.
void BpeTokenizer::set_added(std::vector<std::pair<int32_t, bool>> added) {
  trie_.assign(1, AddedNode{});
  trie_children_.clear();
  for (const auto& [id, special] : added) {
    const std::string& text = id_to_token_[size_t(id)];
    if (text.empty()) continue;
    int32_t node = 0;
    for (unsigned char c : text) {
      auto [it, inserted] = trie_children_.try_emplace(uint64_t(node) << 8 | c, int32_t(trie_.size()));
      if (inserted) trie_.push_back(AddedNode{});
      node = it->second;
    }
    trie_[size_t(node)] = AddedNode{id, special};
  }
}

// The 256 <0xXX> tokens of byte fallback.
void BpeTokenizer::set_byte_tokens(const std::string& where) {
  for (int b = 0; b < 256; ++b) {
    const std::string name = fmt::format("<0x{:02X}>", b);
    const int32_t id = find(name);
    if (id < 0) fail("{}: {}: byte token {} is missing, expected all 256 <0x00>..<0xFF> for byte fallback", path_,
                     where, name);
    byte_token_[b] = id;
  }
  byte_fallback_ = true;
}

void BpeTokenizer::finish_stop_ids() {
  stop_.erase(std::remove(stop_.begin(), stop_.end(), -1), stop_.end());
  std::vector<int32_t> unique;
  for (int32_t id : stop_)
    if (std::find(unique.begin(), unique.end(), id) == unique.end()) unique.push_back(id);
  stop_ = std::move(unique);
}

int32_t BpeTokenizer::token_id(const std::string& text) const { return find(text); }

const std::string& BpeTokenizer::piece(int32_t id) const {
  TPP_CHECK(id >= 0 && id < vocab_size(), "tokenizer: id {} outside [0, {})", id, vocab_size());
  return id_to_token_[size_t(id)];
}

// BPE over one piece (byte-level characters, or text with ▁ for spaces). Each
// symbol is a span of the piece; a min-heap holds the candidate pairs ordered
// by (rank, or minus the merged token's score; then position), so a piece of n
// characters costs O(n log n). A popped pair is stale when either side has
// changed since it was pushed: symbols only grow, so equal lengths mean equal text.
void BpeTokenizer::merge_piece(std::string_view piece, std::vector<int32_t>& out) const {
  if (piece.empty()) return;
  if (ignore_merges_)
    if (const int32_t id = find(piece); id >= 0) {
      out.push_back(id);
      return;
    }
  const bool by_score = !scores_.empty();
  struct Sym {
    int32_t id;
    uint32_t begin, end;
    int32_t prev, next;
  };
  std::vector<Sym> sym;
  sym.reserve(piece.size());
  for (size_t i = 0; i < piece.size();) {
    // One character; a byte that does not start a valid UTF-8 sequence is a symbol of its own.
    const utf8::Decoded ch = utf8::decode(piece, i);
    const size_t n = ch.ok() ? ch.len : 1;
    int32_t id = find(piece.substr(i, n));
    // Rank merges (Hugging Face): a character outside the vocabulary becomes its
    // byte tokens, or <unk> (runs of them fused), before merging. Score merges
    // (llama.cpp SPM) keep it as a symbol that may still merge; its bytes are
    // spelled out at the end if it never becomes a token.
    if (id < 0 && !by_score) {
      if (byte_fallback_) {
        for (size_t k = i; k < i + n; ++k)
          sym.push_back({byte_token_[static_cast<unsigned char>(piece[k])], uint32_t(k), uint32_t(k + 1), 0, 0});
        i += n;
        continue;
      }
      if (unk_ < 0)
        fail("{}: no token for '{}' (the vocabulary lacks it and has neither byte fallback nor an unk_token)",
             path_, piece.substr(i, n));
      if (fuse_unk_ && !sym.empty() && sym.back().id == unk_) {
        sym.back().end = uint32_t(i + n);
        i += n;
        continue;
      }
      id = unk_;
    }
    sym.push_back({id, uint32_t(i), uint32_t(i + n), 0, 0});
    i += n;
  }
  for (size_t k = 0; k < sym.size(); ++k) {
    sym[k].prev = int32_t(k) - 1;
    sym[k].next = k + 1 < sym.size() ? int32_t(k + 1) : -1;
  }

  struct Cand {
    double key;  // lower merges first
    int32_t left, right;
    uint32_t len_left, len_right;
    int32_t id;  // the merged token
  };
  auto later = [](const Cand& a, const Cand& b) { return a.key != b.key ? a.key > b.key : a.left > b.left; };
  std::vector<Cand> heap;
  auto consider = [&](int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    const Sym& a = sym[size_t(l)];
    const Sym& b = sym[size_t(r)];
    Cand c{0.0, l, r, a.end - a.begin, b.end - b.begin, -1};
    if (by_score) {
      c.id = find(piece.substr(a.begin, b.end - a.begin));
      if (c.id < 0) return;
      c.key = -double(scores_[size_t(c.id)]);
    } else {
      if (a.id < 0 || b.id < 0) return;
      auto it = merges_.find(uint64_t(uint32_t(a.id)) << 32 | uint32_t(b.id));
      if (it == merges_.end()) return;
      c.key = it->second.first;
      c.id = it->second.second;
    }
    heap.push_back(c);
    std::push_heap(heap.begin(), heap.end(), later);
  };
  for (size_t k = 0; k + 1 < sym.size(); ++k) consider(int32_t(k), int32_t(k + 1));
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), later);
    const Cand c = heap.back();
    heap.pop_back();
    Sym& a = sym[size_t(c.left)];
    Sym& b = sym[size_t(c.right)];
    if (a.next != c.right || a.end - a.begin != c.len_left || b.end - b.begin != c.len_right) continue;
    a.end = b.end;
    a.id = c.id;
    a.next = b.next;
    if (b.next >= 0) sym[size_t(b.next)].prev = c.left;
    b.end = b.begin;  // merged away: length 0 never matches a candidate
    consider(a.prev, c.left);
    consider(c.left, a.next);
  }
  for (int32_t k = 0; k >= 0; k = sym[size_t(k)].next) {
    const Sym& s = sym[size_t(k)];
    if (s.id >= 0) {
      out.push_back(s.id);
    } else {  // score merges: a character that never became a token
      for (uint32_t i = s.begin; i < s.end; ++i) out.push_back(byte_token_[static_cast<unsigned char>(piece[i])]);
    }
  }
}

// Byte-level pre-tokenization (the text is valid UTF-8): regex `r` splits the text into its matches and
// the text between them (Isolated); the next regex splits each of those; the
// last level maps bytes to GPT-2 characters and merges.
void BpeTokenizer::split_and_merge(std::string_view text, size_t r, std::vector<int32_t>& out) const {
  if (text.empty()) return;
  if (r == regexes_.size()) {
    std::string mapped;
    mapped.reserve(text.size() * 2);
    for (unsigned char c : text) mapped += byte_to_char_[c];
    return merge_piece(mapped, out);
  }
  pcre2_code* code = regexes_[r]->code;
  // Freed however the loop ends (merging may throw).
  const std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> md(
      pcre2_match_data_create_from_pattern(code, nullptr), &pcre2_match_data_free);
  if (!md) throw std::bad_alloc();
  size_t pos = 0, last = 0;
  while (pos <= text.size()) {
    const int rc = pcre2_match(code, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), pos,
                               PCRE2_NO_UTF_CHECK, md.get(), nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(rc, msg, sizeof msg);
      fail("tokenizer: pre-tokenizer regex {} failed on a piece of {} bytes: {}", r, text.size(),
           reinterpret_cast<const char*>(msg));
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
    if (ov[1] == ov[0]) {  // empty match: step one character
      pos = ov[0] + (ov[0] < text.size() ? utf8::decode(text, ov[0]).len : 1);
      continue;
    }
    if (ov[0] > last) split_and_merge(text.substr(last, ov[0] - last), r + 1, out);
    split_and_merge(text.substr(ov[0], ov[1] - ov[0]), r + 1, out);
    last = pos = ov[1];
  }
  if (last < text.size()) split_and_merge(text.substr(last), r + 1, out);
}

// One stretch of text between added tokens; `at_start`: it begins the input
// (Metaspace prepend_scheme "first").
void BpeTokenizer::encode_segment(std::string_view text, bool at_start, std::vector<int32_t>& out) const {
  if (text.empty()) return;
  std::string normalized;
  if (nfc_) {
    normalized = nfc(text);
    text = normalized;
  }
  if (!metaspace_) {
    // The regexes see valid UTF-8 only (checked once here, not by PCRE2 on every
    // match, which would be quadratic); a stray byte is a piece of its own.
    while (!text.empty()) {
      const size_t n = utf8::valid_prefix(text);
      split_and_merge(text.substr(0, n), 0, out);
      if (n < text.size()) split_and_merge(text.substr(n, 1), regexes_.size(), out);
      text.remove_prefix(std::min(n + 1, text.size()));
    }
    return;
  }
  std::string s;
  s.reserve(text.size() + 16);
  if (prepend_each_) s += kMetaspace;
  for (char ch : text) {
    if (ch == ' ') s += kMetaspace;
    else s += ch;
  }
  const bool prepend = metaspace_prepend_ == Prepend::always || (metaspace_prepend_ == Prepend::first && at_start);
  if (prepend && s.compare(0, kMetaspace.size(), kMetaspace) != 0) s.insert(0, kMetaspace);
  if (!metaspace_split_) return merge_piece(s, out);
  // Metaspace split (MergedWithNext): every ▁ starts a new piece.
  const std::string_view all = s;
  size_t begin = 0;
  for (size_t at = all.find(kMetaspace, 1); at != std::string_view::npos; at = all.find(kMetaspace, at + 1)) {
    merge_piece(all.substr(begin, at - begin), out);
    begin = at;
  }
  merge_piece(all.substr(begin), out);
}

std::vector<int32_t> BpeTokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
  std::vector<int32_t> out;
  if (add_special) out = prefix_;
  size_t start = 0;
  if (trie_.size() > 1) {
    for (size_t i = 0; i < text.size();) {
      int32_t best = -1;
      size_t best_len = 0;
      int32_t node = 0;
      for (size_t k = i; k < text.size(); ++k) {
        auto it = trie_children_.find(uint64_t(node) << 8 | static_cast<unsigned char>(text[k]));
        if (it == trie_children_.end()) break;
        node = it->second;
        const AddedNode& a = trie_[size_t(node)];
        if (a.id >= 0 && (parse_special || !a.special)) {
          best = a.id;
          best_len = k + 1 - i;
        }
      }
      if (best < 0) {
        ++i;
        continue;
      }
      encode_segment(text.substr(start, i - start), start == 0, out);
      out.push_back(best);
      i += best_len;
      start = i;
    }
  }
  encode_segment(text.substr(start), start == 0, out);
  if (add_special) out.insert(out.end(), suffix_.begin(), suffix_.end());
  return out;
}

std::string BpeTokenizer::token_text(int32_t id, bool first) const {
  // A model may have more embedding rows than the tokenizer has tokens (Qwen2.5
  // pads its 151,665 to 151,936); such ids decode to nothing, as in Hugging Face.
  if (id < 0 || id >= vocab_size()) return {};
  const std::string& p = piece(id);
  switch (kind_[size_t(id)]) {
    case Kind::verbatim:
      return p;
    case Kind::hidden:
      return {};
    case Kind::byte:
      return std::string(1, char(tok::byte_token_value(p)));
    case Kind::normal:
      break;
  }
  std::string out;
  if (metaspace_) {
    const std::string_view space = first && first_drop_metaspace_ ? "" : " ";
    for (size_t i = 0; i < p.size();) {
      if (p.compare(i, kMetaspace.size(), kMetaspace) == 0) {
        out += space;
        i += kMetaspace.size();
      } else {
        out += p[i++];
      }
    }
    return out;
  }
  // Byte-level: each character is a byte; a token with a character outside the
  // map is kept as its text (Hugging Face's ByteLevel decoder does the same).
  for (size_t i = 0; i < p.size();) {
    const utf8::Decoded ch = utf8::decode(p, i);
    const auto it = ch.ok() ? char_to_byte_.find(ch.cp) : char_to_byte_.end();
    if (it == char_to_byte_.end()) return p;
    out += char(it->second);
    i += ch.len;
  }
  return out;
}

std::string BpeTokenizer::decode_token(int32_t id) const { return token_text(id, false); }

std::string BpeTokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string out;
  for (size_t i = 0; i < ids.size(); ++i) {
    std::string t = token_text(ids[i], i == 0);
    if (i == 0) {
      size_t n = 0;
      while (n < size_t(first_lstrip_) && n < t.size() && t[n] == ' ') ++n;
      t.erase(0, n);
    }
    out += t;
  }
  size_t lead = 0, trail = 0;
  while (lead < size_t(strip_start_) && lead < out.size() && out[lead] == ' ') ++lead;
  out.erase(0, lead);
  while (trail < size_t(strip_stop_) && trail < out.size() && out[out.size() - 1 - trail] == ' ') ++trail;
  out.resize(out.size() - trail);
  return out;
}

}  // namespace tpp
