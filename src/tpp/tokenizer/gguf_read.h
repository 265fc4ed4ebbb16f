// The tokenizer a GGUF file carries (tokenizer.ggml.* and
// tokenizer.chat_template), read into a GgufVocab. Types are checked key by
// key: a wrong type or an id outside the vocabulary is a tpp::Error naming
// the file and the key.
#pragma once

#include "tpp/io/gguf.h"
#include "tpp/tokenizer/gguf_vocab.h"

namespace tpp {

// Throws when the file has no tokenizer.ggml.model / tokenizer.ggml.tokens.
GgufVocab read_gguf_vocab(const io::GgufFile& f);

}  // namespace tpp
