// BPE tokenizers, from a Hugging Face tokenizer.json or from GGUF metadata.
//
// Two ways of turning text into symbols:
//  - byte-level (GPT-2, LLaMA 3, Qwen2/3): the pre-tokenizer's regexes split
//    the text (PCRE2 with Unicode properties), each piece's bytes become GPT-2's
//    printable characters, merged by rank;
//  - SentencePiece-style (LLaMA 2, Gemma): spaces become the
//    metaspace ▁ (and a ▁ is prepended where the file says so), characters are
//    merged, and a symbol missing from the vocabulary is spelled as its UTF-8
//    bytes <0xXX> (byte fallback) or, without byte fallback, as <unk>.
// Merges are applied by rank (tokenizer.json merges, GGUF "gpt2") or, as
// SentencePiece and llama.cpp's SPM tokenizer do, by the score of the merged
// token (GGUF "llama"). Either way a heap keeps a piece O(n log n) in its length.
// Added tokens are split out first (leftmost-longest); special ones only with
// parse_special. The post-processor's tokens (e.g. a BOS) are added with add_special.
//
// tokenizer.json shapes accepted (anything else is refused by name):
//   model BPE: merges as "a b" strings or pairs, ignore_merges, byte_fallback,
//     unk_token with fuse_unk;
//   normalizer: none, NFC, Replace " " -> "▁", Prepend "▁" (LLaMA 2's legacy
//     Sequence[Prepend, Replace]), or a Sequence of these;
//   pre_tokenizer: ByteLevel (with or without its regex), a Sequence of
//     Split(Regex, Isolated) and ByteLevel, Metaspace (replacement ▁,
//     prepend_scheme first / always / never or the older add_prefix_space,
//     split true / false), or none / Split(" ", MergedWithPrevious) after the
//     metaspace normalizer;
//   decoder: ByteLevel; or, SentencePiece-style, Replace "▁" -> " " or
//     Metaspace, then optionally ByteFallback, Fuse and Strip(" ", start, stop);
//   post_processor: ByteLevel / TemplateProcessing / a Sequence of those,
//     overridden by tokenizer_config.json's add_bos_token / add_eos_token when
//     set (as transformers does).
// GGUF: see from_gguf.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "tpp/tokenizer/gguf_vocab.h"

namespace tpp {

class BpeTokenizer {
 public:
  // `path`: a tokenizer.json file or a directory holding one (and, optionally,
  // tokenizer_config.json for eos_token, bos_token, add_bos_token, add_eos_token).
  static BpeTokenizer load(const std::string& path);
  // The same from the parsed contents `j` of the tokenizer.json file `path`
  // (its tokenizer_config.json is still read from beside it).
  static BpeTokenizer from_json(const std::string& path, const nlohmann::json& j);

  // The tokenizer llama.cpp builds from a GGUF file's tokenizer.ggml.* keys:
  //  - model "gpt2": byte-level BPE over tokens + merges, split by the regexes
  //    llama.cpp ties to tokenizer.ggml.pre (gguf_pretokenizers.h; an unknown
  //    name is refused);
  //  - model "llama": SentencePiece; the adjacent pair whose concatenation is a
  //    token with the highest score merges first (leftmost on ties), symbols
  //    left outside the vocabulary become <0xXX> byte tokens, a space is
  //    prepended to each stretch of text when add_space_prefix (default true;
  //    Gemma files say false), spaces become ▁; decode turns ▁ back into spaces
  //    and drops the leading one that was added.
  // Control (3) and unknown (2) tokens are split out of the text with
  // parse_special, user-defined (4) tokens always. BOS / EOS are added per
  // add_bos / add_eos, defaulting as llama.cpp does (add_bos: true for "llama"
  // and the LLaMA-3 and Tekken pre-tokenizers, false for other "gpt2").
  // Malformed input throws tpp::Error naming v.source, the key and what was expected.
  static BpeTokenizer from_gguf(const GgufVocab& v);

  // parse_special: special-token text in the input becomes that token (llama.cpp's
  // parse_special; non-special added tokens are always split out, as in both
  // Hugging Face tokenizers and llama.cpp); add_special: the template tokens are added.
  std::vector<int32_t> encode(std::string_view text, bool add_special = true, bool parse_special = true) const;
  // The text of a whole sequence, as Hugging Face's decode (skip_special_tokens
  // false) or llama.cpp's detokenize define it: special tokens as their text,
  // the leading space that encoding added dropped (Strip / Metaspace decoders,
  // GGUF add_space_prefix). Byte tokens give raw bytes, which may be invalid UTF-8.
  std::string decode(const std::vector<int32_t>& ids) const;
  // One token's bytes for streaming output: like decode({id}) but never drops a
  // leading space (a token in the middle of a reply keeps its space). Ids
  // outside the vocabulary decode to nothing, here and in decode().
  std::string decode_token(int32_t id) const;
  // The token's text as stored in the vocabulary (byte-level characters, ▁).
  const std::string& piece(int32_t id) const;
  int32_t vocab_size() const { return int32_t(id_to_token_.size()); }
  // The id of a token's text (e.g. "<|eot_id|>"), or -1.
  int32_t token_id(const std::string& text) const;
  // The token that ends a reply, or -1 when there is none: tokenizer_config.json's
  // eos_token next to a tokenizer.json; for GGUF the end-of-turn token when the
  // file has one (tokenizer.ggml.eot_token_id, or found by its text as llama.cpp
  // does: <|eot_id|>, <|im_end|>, <end_of_turn>, ...) and tokenizer.ggml.eos_token_id
  // otherwise, because chat models end a turn with eot and eos ends the document.
  int32_t eos_id() const { return eos_; }
  // Every token that ends generation: eos, eot and eom where present, no duplicates.
  const std::vector<int32_t>& stop_ids() const { return stop_; }
  // The beginning-of-sequence token, or -1.
  int32_t bos_id() const { return bos_; }
  // The template tokens encode(add_special) puts before and after the text.
  const std::vector<int32_t>& prefix_ids() const { return prefix_; }
  const std::vector<int32_t>& suffix_ids() const { return suffix_; }

  BpeTokenizer(BpeTokenizer&&) noexcept;
  BpeTokenizer& operator=(BpeTokenizer&&) noexcept;
  ~BpeTokenizer();

 private:
  BpeTokenizer();
  static BpeTokenizer load_json(const std::string& path, const nlohmann::json& j);

  // How a token turns back into bytes.
  enum class Kind : uint8_t {
    normal,    // byte-level characters, or text with ▁ for spaces
    byte,      // <0xXX>: one raw byte
    verbatim,  // special / added / user-defined tokens: their text as is
    hidden,    // GGUF unused / undefined tokens: nothing (as llama.cpp)
  };
  enum class Prepend : uint8_t { never, first, always };

  void init_byte_map();
  void add_regex(const std::string& pattern, const std::string& where);
  void set_added(std::vector<std::pair<int32_t, bool>> added);  // (id, special)
  void set_byte_tokens(const std::string& where);
  void finish_stop_ids();

  void encode_segment(std::string_view text, bool at_start, std::vector<int32_t>& out) const;
  void split_and_merge(std::string_view text, size_t regex, std::vector<int32_t>& out) const;
  void merge_piece(std::string_view piece, std::vector<int32_t>& out) const;
  std::string token_text(int32_t id, bool first) const;

  struct StrHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  struct StrEq {
    using is_transparent = void;
    bool operator()(std::string_view a, std::string_view b) const noexcept { return a == b; }
  };
  int32_t find(std::string_view text) const {
    auto it = vocab_.find(text);
    return it == vocab_.end() ? -1 : it->second;
  }

  struct Regex;
  std::vector<std::unique_ptr<Regex>> regexes_;  // split in order, each within the pieces of the last
  std::string path_;                             // the file, for error messages
  std::unordered_map<std::string, int32_t, StrHash, StrEq> vocab_;
  std::vector<std::string> id_to_token_;
  std::vector<Kind> kind_;  // [vocab_size]
  // Rank merges: (left id << 32 | right id) -> (rank, merged id).
  std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> merges_;
  std::vector<float> scores_;  // score merges (GGUF "llama"): [vocab_size]; empty for rank merges
  bool ignore_merges_ = false;
  bool nfc_ = false;         // normalizer NFC (Qwen2/3)
  bool metaspace_ = false;   // SentencePiece-style: ▁ for spaces, no byte-level characters
  bool prepend_each_ = false;  // ▁ before every stretch of text (Prepend normalizer, GGUF add_space_prefix)
  Prepend metaspace_prepend_ = Prepend::never;  // Metaspace pre-tokenizer: ▁ unless the text starts with one
  bool metaspace_split_ = false;  // Metaspace split: a new piece at every ▁
  bool byte_fallback_ = false;
  int32_t byte_token_[256] = {};  // <0xXX> ids (byte fallback)
  int32_t unk_ = -1;
  bool fuse_unk_ = false;
  // Decoding: drop every ▁ of the first token (Hugging Face's Metaspace decoder
  // does exactly this), strip up to `first_lstrip_` spaces from the first token
  // (llama.cpp), strip up to strip_start_ / strip_stop_ spaces from the whole
  // text (Strip decoder after Fuse).
  bool first_drop_metaspace_ = false;
  int first_lstrip_ = 0;
  int strip_start_ = 0, strip_stop_ = 0;
  // Added tokens, split out first: a byte trie, leftmost-longest.
  struct AddedNode {
    int32_t id = -1;
    bool special = false;
  };
  std::vector<AddedNode> trie_;                         // node 0 is the root
  std::unordered_map<uint64_t, int32_t> trie_children_;  // (node << 8 | byte) -> node
  std::vector<int32_t> prefix_, suffix_;                 // template tokens
  int32_t eos_ = -1, bos_ = -1;
  std::vector<int32_t> stop_;
  std::string byte_to_char_[256];
  std::unordered_map<uint32_t, uint8_t> char_to_byte_;
};

}  // namespace tpp
