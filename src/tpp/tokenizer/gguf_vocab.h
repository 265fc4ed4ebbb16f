// A tokenizer as a GGUF file stores it: llama.cpp's tokenizer.ggml.* metadata
// keys, read by the GGUF loader and turned into a BpeTokenizer.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace tpp {

// llama.cpp's token types (tokenizer.ggml.token_type).
enum class GgufTokenType : int32_t {
  undefined = 0,
  normal = 1,
  unknown = 2,
  control = 3,
  user_defined = 4,
  unused = 5,
  byte = 6,
};

struct GgufVocab {
  std::string source;                // the file, for error messages
  std::string model;                 // tokenizer.ggml.model: "llama" (SentencePiece BPE) or "gpt2" (byte-level BPE)
  std::string pre;                   // tokenizer.ggml.pre ("" when absent): "default", "llama-bpe", "qwen2", "smollm", ...
  std::vector<std::string> tokens;   // tokenizer.ggml.tokens
  std::vector<float> scores;         // tokenizer.ggml.scores (empty when absent)
  std::vector<int32_t> token_types;  // tokenizer.ggml.token_type (empty when absent)
  std::vector<std::string> merges;   // tokenizer.ggml.merges, "left right" (byte-level BPE)
  std::optional<int32_t> bos, eos, eot, eom, unk, pad;  // tokenizer.ggml.*_token_id
  std::optional<bool> add_bos, add_eos, add_space_prefix;  // tokenizer.ggml.add_*
  std::string chat_template;         // tokenizer.chat_template ("" when absent)
};

}  // namespace tpp
