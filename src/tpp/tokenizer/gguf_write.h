// A Hugging Face tokenizer.json written into GGUF metadata as llama.cpp's
// converter writes it (convert_hf_to_gguf.py: _set_vocab_gpt2, and
// _set_vocab_llama_hf for a directory with tokenizer.json but no
// tokenizer.model; gguf-py's SpecialVocab), and the check that a written file
// carries the same tokenizer.
//
// Byte-level BPE (GPT-2, LLaMA 3, Qwen2/3, SmolLM) is written as
// tokenizer.ggml.model "gpt2" with its merges. SentencePiece-style BPE with byte
// fallback (LLaMA 2, Mistral 7B v0.1, TinyLlama) is written as "llama",
// which has no merges: llama.cpp merges the adjacent pair whose concatenation is
// the token of highest score (leftmost on ties). The converter's LlamaHfVocab
// writes -1000 for every score, which makes llama.cpp merge leftmost-first and
// tokenize differently from the tokenizer.json; here each token's score is
// minus the rank of the first merge that makes it, after checking that this
// reproduces the ranks (see metadata(); Gemma 3's ranks fail and are refused).
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
  // Reads and validates the files (BpeTokenizer::load). Refused by name: a
  // model other than BPE (Unigram), a SentencePiece-style file without byte
  // fallback, with NFC, or with a Metaspace pre-tokenizer that prepends ▁ or
  // splits at it (llama.cpp prepends a space to every stretch of text, even one
  // that starts with a space, and merges across ▁), and template tokens other
  // than one BOS before and one EOS after the text.
  explicit GgufTokenizerSource(const std::string& dir);
  GgufTokenizerSource(GgufTokenizerSource&&) noexcept;
  ~GgufTokenizerSource();

  // The tokenizer keys for a model of `vocab_size` tokens:
  //   tokenizer.ggml.model      "gpt2" (byte-level) or "llama" (SentencePiece-style)
  //   tokenizer.ggml.pre        "gpt2": the llama.cpp name whose regexes are the
  //                             pre-tokenizer's (gguf_pretokenizer_for); "llama": "default"
  //   tokenizer.ggml.tokens     [vocab_size] strings in id order; ids the
  //                             tokenizer leaves free are "[PAD<id>]", as the
  //                             converter pads to the model's vocabulary
  //   tokenizer.ggml.token_type [vocab_size] i32: 1 normal, 3 control (special
  //                             added tokens), 4 user-defined (other added
  //                             tokens), 5 unused (the padding), 6 byte (<0xXX>, "llama")
  //   tokenizer.ggml.merges     "gpt2": "left right" strings in rank order
  //   tokenizer.ggml.scores     "llama": [vocab_size] f32, minus the rank of the
  //                             first merge that makes the token, -1e9 for tokens
  //                             no merge makes
  //   tokenizer.ggml.add_space_prefix  "llama": whether the normalizer prepends ▁
  //   tokenizer.ggml.bos_token_id / eos_token_id / padding_token_id (u32), and
  //                             for "llama" unknown_token_id: tokenizer_config.json's
  //                             bos_token / eos_token / pad_token / unk_token; bos and
  //                             eos default to the token the post-processor adds
  //   tokenizer.ggml.add_bos_token / add_eos_token (bool): as the tokenizer adds them
  //   tokenizer.chat_template   tokenizer_config.json's chat_template (the one
  //                             named "default" of a list), or chat_template.jinja
  // Refused by name: a pre-tokenizer whose regexes no llama.cpp name has, a
  // merge whose parts hold a space, more token ids than `vocab_size`; for
  // "llama", merges that one score per token cannot order (two merges making a
  // token with a merge making another token of the same characters between
  // them), a token llama.cpp could merge from two pieces that model.merges never
  // merges, a merge of byte tokens, missing <0xXX> tokens.
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
