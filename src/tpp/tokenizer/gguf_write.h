// A Hugging Face tokenizer.json written into GGUF metadata as llama.cpp's
// converter writes it (convert_hf_to_gguf.py, _set_vocab_gpt2 and gguf-py's
// SpecialVocab), and the check that a written file carries the same tokenizer.
//
// Only byte-level BPE (GPT-2, LLaMA 3, Qwen2/3, SmolLM) is written, as
// tokenizer.ggml.model "gpt2". A SentencePiece-style tokenizer.json (LLaMA 2,
// Gemma) would need model "llama" with per-token scores, which a
// tokenizer.json does not hold (its merges have ranks), so it is refused.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tpp/io/gguf.h"

namespace tpp {

using GgufMetadata = std::vector<std::pair<std::string, io::GgufValue>>;

// A model directory's tokenizer.json (and tokenizer_config.json,
// chat_template.jinja), read once for writing and for checking a written file.
class GgufTokenizerSource {
 public:
  // Reads and validates the files (BpeTokenizer::load); a SentencePiece-style
  // tokenizer.json, or template tokens other than one BOS before and one EOS
  // after the text, are refused by name.
  explicit GgufTokenizerSource(const std::string& dir);
  GgufTokenizerSource(GgufTokenizerSource&&) noexcept;
  ~GgufTokenizerSource();

  // The tokenizer keys for a model of `vocab_size` tokens:
  //   tokenizer.ggml.model      "gpt2"
  //   tokenizer.ggml.pre        the llama.cpp name whose regexes are the
  //                             pre-tokenizer's (gguf_pretokenizer_for)
  //   tokenizer.ggml.tokens     [vocab_size] strings in id order; ids the
  //                             tokenizer leaves free are "[PAD<id>]", as the
  //                             converter pads to the model's vocabulary
  //   tokenizer.ggml.token_type [vocab_size] i32: 1 normal, 3 control (special
  //                             added tokens), 4 user-defined (other added
  //                             tokens), 5 unused (the padding)
  //   tokenizer.ggml.merges     "left right" strings in rank order
  //   tokenizer.ggml.bos_token_id / eos_token_id / padding_token_id (u32):
  //                             tokenizer_config.json's bos_token / eos_token /
  //                             pad_token; bos and eos default to the token the
  //                             post-processor adds
  //   tokenizer.ggml.add_bos_token / add_eos_token (bool): as the tokenizer adds them
  //   tokenizer.chat_template   tokenizer_config.json's chat_template (the one
  //                             named "default" of a list), or chat_template.jinja
  // Refused by name: a pre-tokenizer whose regexes no llama.cpp name has, a
  // merge whose parts hold a space, more token ids than `vocab_size`.
  GgufMetadata metadata(int64_t vocab_size) const;

  // Checks that `f`'s tokenizer is this one: a fixed multilingual sample
  // (English, digits, punctuation, runs of spaces, tabs and newlines, code,
  // CJK, emoji, every added token's text) encodes to the same ids with and
  // without special tokens and decodes alike, the BOS and EOS ids agree, every
  // id that ends generation for the tokenizer.json ends it for the file, and
  // the chat template is the same text. Throws tpp::Error naming the sample,
  // the position and the ids that differ, or the id or key that does.
  void check(const io::GgufFile& f) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tpp
