// The pre-tokenizers llama.cpp ties to a GGUF file's tokenizer.ggml.pre name
// (llama-vocab.cpp, llama_vocab::impl::load and llm_tokenizer_bpe): which regexes
// split the text before byte-level BPE, and the flags that go with the name.
#pragma once

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

}  // namespace tpp
