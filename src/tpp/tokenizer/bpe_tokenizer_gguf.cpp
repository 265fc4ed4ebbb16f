// BpeTokenizer::from_gguf: the tokenizer that llama.cpp's llama_vocab builds
// from a GGUF file's tokenizer.ggml.* metadata (llama-vocab.cpp), for the
// models "gpt2" (byte-level BPE) and "llama" (SentencePiece). Every key is
// validated before use; a bad one is reported with the file, the key and what
// was expected.
#include <cmath>

#include <fmt/format.h>

#include "tpp/core/error.h"
#include "tpp/tokenizer/bpe_tokenizer.h"
#include "tpp/tokenizer/gguf_pretokenizers.h"
#include "tpp/tokenizer/text_util.h"

namespace tpp {
namespace {

// Tokens llama.cpp takes for the end of a turn when tokenizer.ggml.eot_token_id
// is absent, in the order we look for them.
constexpr const char* kEotTexts[] = {"<|eot_id|>",    "<|im_end|>", "<|end|>", "<end_of_turn>",
                                     "<|endoftext|>", "<|end_of_text|>", "<EOT>"};

}  // namespace

BpeTokenizer BpeTokenizer::from_gguf(const GgufVocab& v) {
  BpeTokenizer t;
  const std::string src = v.source.empty() ? std::string("GGUF vocabulary") : v.source;
  t.path_ = src;
  t.init_byte_map();
  const bool spm = v.model == "llama";
  if (!spm && v.model != "gpt2")
    fail("{}: tokenizer.ggml.model is \"{}\", expected \"llama\" (SentencePiece) or \"gpt2\" (byte-level BPE)", src,
         v.model);

  // Sizes first: every per-token array has one entry per token.
  const size_t n = v.tokens.size();
  if (n == 0) fail("{}: tokenizer.ggml.tokens is empty, expected the vocabulary", src);
  if (n >= size_t(INT32_MAX)) fail("{}: tokenizer.ggml.tokens has {} entries, expected fewer than 2^31", src, n);
  if (!v.scores.empty() && v.scores.size() != n)
    fail("{}: tokenizer.ggml.scores has {} values, expected {} (one per entry of tokenizer.ggml.tokens)", src,
         v.scores.size(), n);
  if (!v.token_types.empty() && v.token_types.size() != n)
    fail("{}: tokenizer.ggml.token_type has {} values, expected {} (one per entry of tokenizer.ggml.tokens)", src,
         v.token_types.size(), n);
  if (spm && v.scores.empty())
    fail("{}: tokenizer.ggml.scores is missing, expected {} scores: model \"llama\" merges by score", src, n);

  // Tokens, their types and how each decodes.
  t.id_to_token_.resize(n);
  t.kind_.assign(n, Kind::normal);
  std::vector<std::pair<int32_t, bool>> added;  // (id, special)
  for (size_t i = 0; i < n; ++i) {
    std::string text = v.tokens[i];
    if (text.empty()) text = fmt::format("[EMPTY_{}]", i);  // as llama.cpp names empty tokens
    auto [it, inserted] = t.vocab_.try_emplace(text, int32_t(i));
    if (!inserted)
      fail("{}: tokenizer.ggml.tokens[{}] '{}' repeats tokenizer.ggml.tokens[{}], expected distinct tokens", src, i,
           text, it->second);
    t.id_to_token_[i] = std::move(text);
    if (!v.scores.empty() && std::isnan(v.scores[i]))
      fail("{}: tokenizer.ggml.scores[{}] is NaN, expected a number", src, i);
    const int32_t type = v.token_types.empty() ? int32_t(GgufTokenType::normal) : v.token_types[i];
    switch (type) {
      case int32_t(GgufTokenType::normal):
        break;
      case int32_t(GgufTokenType::unknown):
      case int32_t(GgufTokenType::control):
        t.kind_[i] = Kind::verbatim;
        added.emplace_back(int32_t(i), true);
        break;
      case int32_t(GgufTokenType::user_defined):
        t.kind_[i] = Kind::verbatim;
        added.emplace_back(int32_t(i), false);
        break;
      case int32_t(GgufTokenType::byte):
        if (tok::byte_token_value(t.id_to_token_[i]) < 0)
          fail("{}: tokenizer.ggml.token_type[{}] is 6 (byte) but the token is '{}', expected <0xXX>", src, i,
               t.id_to_token_[i]);
        t.kind_[i] = Kind::byte;
        break;
      case int32_t(GgufTokenType::undefined):
      case int32_t(GgufTokenType::unused):
        t.kind_[i] = Kind::hidden;  // llama.cpp's token_to_piece gives nothing for these
        break;
      default:
        fail("{}: tokenizer.ggml.token_type[{}] is {}, expected 0..6 (undefined, normal, unknown, control, "
             "user_defined, unused, byte)",
             src, i, type);
    }
  }

  // Special token ids: in range when given; llama.cpp's SentencePiece defaults
  // otherwise (bos 1, eos 2, unk 0). For "gpt2" llama.cpp defaults bos and eos
  // to 11, an arbitrary token; we leave them unset instead.
  auto id_key = [&](const std::optional<int32_t>& id, const char* key, int32_t fallback) -> int32_t {
    if (!id) return fallback >= 0 && size_t(fallback) < n ? fallback : -1;
    if (*id < 0 || size_t(*id) >= n)
      fail("{}: tokenizer.ggml.{} is {}, expected an id in [0, {})", src, key, *id, n);
    return *id;
  };
  t.bos_ = id_key(v.bos, "bos_token_id", spm ? 1 : -1);
  const int32_t eos = id_key(v.eos, "eos_token_id", spm ? 2 : -1);
  int32_t eot = id_key(v.eot, "eot_token_id", -1);
  int32_t eom = id_key(v.eom, "eom_token_id", -1);
  id_key(v.unk, "unknown_token_id", -1);
  id_key(v.pad, "padding_token_id", -1);
  for (const char* text : kEotTexts)
    if (eot < 0) eot = t.find(text);
  if (eom < 0) eom = t.find("<|eom_id|>");
  // A chat model ends its turn with eot; eos ends the document (base models).
  t.eos_ = eot >= 0 ? eot : eos;
  t.stop_ = {eos, eot, eom};
  t.finish_stop_ids();

  bool add_bos = false;
  if (spm) {
    // SentencePiece (llama.cpp's SPM): spaces as ▁, one prepended to each
    // stretch of text when add_space_prefix, merges by the merged token's score,
    // bytes for what is left outside the vocabulary.
    t.metaspace_ = true;
    t.prepend_each_ = v.add_space_prefix.value_or(true);
    t.first_lstrip_ = t.prepend_each_ ? 1 : 0;
    t.scores_ = v.scores;
    t.set_byte_tokens("tokenizer.ggml.tokens");
    for (int b = 0; b < 256; ++b)
      if (v.token_types.empty())
        t.kind_[size_t(t.byte_token_[b])] = Kind::byte;  // no types: the <0xXX> tokens still decode as bytes
      else if (t.kind_[size_t(t.byte_token_[b])] != Kind::byte)
        fail("{}: tokenizer.ggml.token_type[{}] is {} for {}, expected 6 (byte)", src, t.byte_token_[b],
               v.token_types[size_t(t.byte_token_[b])], t.id_to_token_[size_t(t.byte_token_[b])]);
    add_bos = true;
  } else {
    const GgufPreTokenizer* pre = find_gguf_pretokenizer(v.pre);
    if (!pre)
      fail("{}: tokenizer.ggml.pre \"{}\" is not supported, expected one of: {}", src, v.pre,
           gguf_pretokenizer_names());
    for (std::string_view re : pre->regexes) t.add_regex(std::string(re), "tokenizer.ggml.pre \"" + v.pre + "\"");
    t.ignore_merges_ = pre->ignore_merges;
    add_bos = pre->add_bos;
    // llama.cpp only uses add_space_prefix of a BPE vocabulary when decoding.
    t.first_lstrip_ = v.add_space_prefix.value_or(false) ? 1 : 0;
    // A byte whose GPT-2 character has no token is an error when a text needs
    // it (as in llama.cpp), not at load: small vocabularies may lack some.
    if (v.merges.empty())
      fail("{}: tokenizer.ggml.merges is missing, expected the merges of a \"gpt2\" vocabulary", src);
    for (size_t r = 0; r < v.merges.size(); ++r) {
      const std::string& m = v.merges[r];
      const size_t space = m.find(' ', 1);
      if (space == std::string::npos)
        fail("{}: tokenizer.ggml.merges[{}] is '{}', expected \"left right\"", src, r, m);
      const std::string_view left = std::string_view(m).substr(0, space), right = std::string_view(m).substr(space + 1);
      const int32_t a = t.find(left), b = t.find(right), ab = t.find(std::string(left) + std::string(right));
      if (a < 0 || b < 0 || ab < 0)
        fail("{}: tokenizer.ggml.merges[{}] '{}' names '{}', expected a token of tokenizer.ggml.tokens", src, r, m,
             a < 0 ? std::string(left) : b < 0 ? std::string(right) : std::string(left) + std::string(right));
      t.merges_.try_emplace(uint64_t(uint32_t(a)) << 32 | uint32_t(b), int32_t(r), ab);
    }
  }

  add_bos = v.add_bos.value_or(add_bos);
  const bool add_eos = v.add_eos.value_or(false);
  if (add_bos && t.bos_ < 0)
    fail("{}: tokenizer.ggml.add_bos_token is true, expected tokenizer.ggml.bos_token_id to be set", src);
  if (add_eos && eos < 0)
    fail("{}: tokenizer.ggml.add_eos_token is true, expected tokenizer.ggml.eos_token_id to be set", src);
  if (add_bos) t.prefix_ = {t.bos_};
  if (add_eos) t.suffix_ = {eos};
  t.set_added(std::move(added));
  return t;
}

}  // namespace tpp
