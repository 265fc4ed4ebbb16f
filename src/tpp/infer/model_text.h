// The text side of a model: its tokenizer, chat template and the tokens that
// end a reply, from whatever the model path holds:
//   - a GGUF file: tokenizer.ggml.* and tokenizer.chat_template;
//   - a model directory: tokenizer.json, tokenizer_config.json (chat template,
//     bos/eos text) and generation_config.json (eos_token_id: the ids that end
//     generation, e.g. LLaMA 3's <|eot_id|> and <|end_of_text|>).
// A directory without tokenizer.json has no tokenizer (tpp's byte-level models).
#pragma once

#include <optional>
#include <span>
#include <string>
#include <vector>

#include "tpp/infer/chat_template.h"
#include "tpp/tokenizer/bpe_tokenizer.h"

namespace tpp {

struct ModelText {
  std::optional<BpeTokenizer> tokenizer;
  std::optional<ChatTemplate> chat_template;
  std::string bos_token, eos_token;  // their text, for the template
  std::vector<int32_t> stop_ids;     // generation ends on any of these

  // The prompt of a conversation as the template renders it (ending with the
  // assistant's turn opened), tokenized with special-token text parsed and no
  // template tokens added (the template writes BOS itself). Throws when the
  // model has no tokenizer or no chat template.
  std::vector<int32_t> chat_prompt(std::span<const ChatMessage> messages) const;
};

ModelText load_model_text(const std::string& model_path);

}  // namespace tpp
