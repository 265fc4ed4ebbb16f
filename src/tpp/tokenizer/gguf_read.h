// The tokenizer a GGUF file carries (tokenizer.ggml.* and
// tokenizer.chat_template), read into a GgufVocab. Types are checked key by
// key: a wrong type or an id outside the vocabulary is a tpp::Error naming
// the file and the key.
#pragma once

#include "tpp/io/gguf.h"
#include "tpp/tokenizer/gguf_vocab.h"

namespace tpp {

// Whether the file carries a tokenizer: tokenizer.ggml.model is present and
// not one of llama.cpp's markers for a vocabulary-less model ("no_vocab",
// "none"), which tpp treats like a file without the key.
bool gguf_has_tokenizer(const io::GgufFile& f);

// Throws when the file has no tokenizer.ggml.model / tokenizer.ggml.tokens.
GgufVocab read_gguf_vocab(const io::GgufFile& f);

}  // namespace tpp
