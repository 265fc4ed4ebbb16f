// BPE from a Hugging Face tokenizer.json, in its two kinds:
//  - byte-level (GPT-2, LLaMA 3, Qwen2/3): added tokens split out first, then
//    the pre-tokenizer's regex (PCRE2 with Unicode properties), each piece's
//    bytes mapped to GPT-2's printable characters, merged by rank;
//  - SentencePiece-style (Gemma): spaces replaced by the metaspace ▁ (and a
//    ▁ prepended where the normalizer says so), characters merged by rank,
//    and a symbol missing from the vocabulary spelled as its UTF-8 bytes
//    <0xXX> (byte_fallback).
// The post-processor's template (e.g. a BOS token) is added when add_special
// is set.
//
// Supported tokenizer.json shapes: model BPE (merges as "a b" strings or
// pairs, ignore_merges, byte_fallback); normalizer none, NFC, or Replace " "
// -> "▁" (optionally after Prepend "▁"); pre_tokenizer ByteLevel (with or
// without its regex), a Sequence of Split(Regex, Isolated) and ByteLevel, or
// (SentencePiece-style) none or Split(" ", MergedWithPrevious); post_processor
// ByteLevel / TemplateProcessing / Sequence of those. Anything else is refused
// by name.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace tpp {

class BpeTokenizer {
 public:
  // `path`: a tokenizer.json file or a directory holding one.
  static BpeTokenizer load(const std::string& path);

  // parse_special: added-token text in the input becomes that token (llama.cpp's
  // parse_special); add_special: the post-processor's template tokens are added.
  std::vector<int32_t> encode(std::string_view text, bool add_special = true, bool parse_special = true) const;
  std::string decode(const std::vector<int32_t>& ids) const;
  // The token's text as stored in the vocabulary (byte-level characters).
  const std::string& piece(int32_t id) const;
  int32_t vocab_size() const { return int32_t(id_to_token_.size()); }
  // The id of a token's text (e.g. "<|eot_id|>"), or -1.
  int32_t token_id(const std::string& text) const;
  // The end-of-sequence token named by tokenizer_config.json's eos_token next
  // to the tokenizer.json, or -1 when there is none.
  int32_t eos_id() const { return eos_; }

  BpeTokenizer(BpeTokenizer&&) noexcept;
  BpeTokenizer& operator=(BpeTokenizer&&) noexcept;
  ~BpeTokenizer();

 private:
  BpeTokenizer();
  void encode_piece(std::string_view piece, std::vector<int32_t>& out) const;
  void encode_ordinary(std::string_view text, std::vector<int32_t>& out) const;
  // Merges by rank over symbols; returns the final symbols.
  std::vector<std::string> merge(std::vector<std::string> sym) const;

  struct Regex;
  std::unique_ptr<Regex> regex_;  // null: no regex split
  std::string path_;
  std::unordered_map<std::string, int32_t> vocab_;
  std::vector<std::string> id_to_token_;
  std::unordered_map<std::string, int> merge_rank_;  // "left right" -> rank
  bool ignore_merges_ = false;
  bool nfc_ = false;  // normalizer NFC (Qwen2/3)
  bool metaspace_ = false;  // SentencePiece-style: ▁ for spaces, byte fallback
  std::string prepend_;     // prepended to the text ("▁" for LLaMA 2 style)
  bool byte_fallback_ = false;
  int32_t byte_token_[256] = {};  // <0xXX> ids (byte fallback)
  struct Added {
    std::string content;
    int32_t id;
    bool special;
  };
  std::vector<Added> added_;  // longest first
  std::vector<int32_t> prefix_, suffix_;  // post-processor template
  int32_t eos_ = -1;
  std::string byte_to_char_[256];
  std::unordered_map<uint32_t, uint8_t> char_to_byte_;
};

}  // namespace tpp
