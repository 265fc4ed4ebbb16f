// The pre-tokenizers llama.cpp ties to a GGUF file's tokenizer.ggml.pre name
// (llama-vocab.cpp, llama_vocab::impl::load and llm_tokenizer_bpe): which regexes
// split the text before byte-level BPE, and the flags that go with the name.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tpp {

struct GgufPreTokenizer {
  // Applied in order, each splitting the pieces the previous one left (matches
  // and the text between them are both pieces), as llama.cpp's unicode_regex_split does.
  std::vector<std::string_view> regexes;
  bool ignore_merges = false;  // a piece that is itself a token is not merged (LLaMA 3)
  bool add_bos = false;        // llama.cpp's default for tokenizer.ggml.add_bos_token
};

// The entry for a tokenizer.ggml.pre value ("" is llama.cpp's "default"), or
// nullptr when llama.cpp does not know the name or tpp does not support it.
const GgufPreTokenizer* find_gguf_pretokenizer(std::string_view pre);

// The supported names, comma separated, for error messages.
std::string gguf_pretokenizer_names();

// The name to write for a byte-level tokenizer whose pre-tokenizer splits with
// `regexes` in order (tokenizer.json spelling) and whose model ignores merges
// or not: the type whose regexes and flag are the same, by the name llama.cpp's
// converter writes for it ("llama-bpe", "qwen2", "gpt-2", ...); nullopt when no
// type matches. Hugging Face's case-insensitive (?i:'s|'t|'re|'ve|'m|'ll|'d)
// equals llama.cpp's (?:'[sS]|...) spelling, and a trailing |\s+ after
// \s+(?!\S) splits the same (whitespace left between matches is a piece too).
std::optional<std::string_view> gguf_pretokenizer_for(const std::vector<std::string>& regexes, bool ignore_merges);

}  // namespace tpp
