#include "tpp/tokenizer/gguf_read.h"

#include "tpp/core/error.h"

namespace tpp {

GgufVocab read_gguf_vocab(const io::GgufFile& f) {
  GgufVocab v;
  v.source = f.path();
  const auto model = f.get_string("tokenizer.ggml.model");
  if (!model) fail("{}: missing metadata key 'tokenizer.ggml.model': the file carries no tokenizer", f.path());
  v.model = *model;
  v.pre = f.get_string("tokenizer.ggml.pre").value_or("");
  auto tokens = f.get_strings("tokenizer.ggml.tokens");
  if (!tokens || tokens->empty())
    fail("{}: missing or empty metadata key 'tokenizer.ggml.tokens' (the vocabulary)", f.path());
  v.tokens = std::move(*tokens);
  if (const auto scores = f.get_floats("tokenizer.ggml.scores"))
    for (double s : *scores) v.scores.push_back(float(s));
  if (const auto types = f.get_ints("tokenizer.ggml.token_type"))
    for (int64_t t : *types) {
      if (t < INT32_MIN || t > INT32_MAX)
        fail("{}: metadata key 'tokenizer.ggml.token_type': {} is out of range", f.path(), t);
      v.token_types.push_back(int32_t(t));
    }
  if (auto merges = f.get_strings("tokenizer.ggml.merges")) v.merges = std::move(*merges);
  const int64_t n = int64_t(v.tokens.size());
  auto id = [&](const char* key) -> std::optional<int32_t> {
    const auto value = f.get_int(key);
    if (!value) return std::nullopt;
    // llama.cpp writes -1 (as u32 0xffffffff or i32 -1) for "none".
    if (*value == -1 || *value == 0xffffffffll) return std::nullopt;
    if (*value < 0 || *value >= n)
      fail("{}: metadata key '{}': {}, expected a token id below the vocabulary size {}", f.path(), key, *value, n);
    return int32_t(*value);
  };
  v.bos = id("tokenizer.ggml.bos_token_id");
  v.eos = id("tokenizer.ggml.eos_token_id");
  v.eot = id("tokenizer.ggml.eot_token_id");
  v.eom = id("tokenizer.ggml.eom_token_id");
  v.unk = id("tokenizer.ggml.unknown_token_id");
  v.pad = id("tokenizer.ggml.padding_token_id");
  v.add_bos = f.get_bool("tokenizer.ggml.add_bos_token");
  v.add_eos = f.get_bool("tokenizer.ggml.add_eos_token");
  v.add_space_prefix = f.get_bool("tokenizer.ggml.add_space_prefix");
  v.chat_template = f.get_string("tokenizer.chat_template").value_or("");
  return v;
}

}  // namespace tpp
