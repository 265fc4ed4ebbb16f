// OpenAI's HTTP API over the engine: requests checked and turned into
// sequences, results turned into response and stream-chunk JSON.
//
// Every field a request may carry is checked by name and type; a field that
// would change the output and is not supported is refused with a 400 that
// names it (never silently ignored).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tpp/infer/model_text.h"
#include "tpp/serve/engine.h"
#include "tpp/tokenizer/byte_tokenizer.h"

namespace tpp::serve {

// An error answered as {"error": {"message", "type", "param", "code"}}.
struct ApiError {
  ApiError(int status_, std::string message_, std::string param_ = "", std::string type_ = "invalid_request_error",
           std::string code_ = "")
      : status(status_), message(std::move(message_)), param(std::move(param_)), type(std::move(type_)),
        code(std::move(code_)) {}
  int status = 400;
  std::string message;
  std::string param;                          // "" = null
  std::string type = "invalid_request_error";
  std::string code;                           // "" = null
  nlohmann::json body() const;
};

// A model's text side for the API: its tokenizer (or the byte-level one).
class TextCodec {
 public:
  explicit TextCodec(const ModelText& text) : text_(text) {}
  std::vector<int32_t> encode(const std::string& s, bool add_special) const;
  std::string token_bytes(int32_t id) const;
  std::string decode(const std::vector<int32_t>& ids) const;
  std::vector<int32_t> chat_prompt(const std::vector<ChatMessage>& messages) const;
  std::vector<int32_t> stop_ids(int32_t vocab_size) const;

 private:
  const ModelText& text_;
  ByteTokenizer bytes_;
};

// A checked request.
struct ApiRequest {
  bool chat = false;
  bool stream = false, include_usage = false;
  int n = 1;
  int prompts = 1;  // completions may carry several prompts: choice = prompt * n + i
  bool logprobs = false;
  std::vector<SequenceSpec> sequences;  // prompts x n
};

// Throws ApiError. ctx: the engine's tokens per sequence (bounds max_tokens).
ApiRequest parse_request(const nlohmann::json& body, bool chat, const std::string& model_id, const TextCodec& codec,
                         int64_t ctx, uint64_t default_seed);

// A choice's result, gathered from its events.
struct ChoiceResult {
  std::string text, finish_reason;
  std::vector<TokenLogprob> logprobs;
  int prompt_tokens = 0, completion_tokens = 0, cached_tokens = 0;
};

// The "usage" object over all choices (prompt tokens counted once per prompt).
nlohmann::json usage_json(const ApiRequest& r, const std::vector<ChoiceResult>& choices);

// The response of a finished request.
nlohmann::json response_json(const ApiRequest& r, const std::vector<ChoiceResult>& choices, const std::string& id,
                             int64_t created, const std::string& model_id, const TextCodec& codec);

// A stream chunk for one event of choice `e.index` (new text, logprobs and, at
// the end, the finish reason). text_offset: the choice's text length before
// this event (the completions logprobs format reports offsets).
nlohmann::json chunk_json(const ApiRequest& r, const Event& e, size_t text_offset, const std::string& id,
                          int64_t created, const std::string& model_id, const TextCodec& codec);
// A chat stream's first chunk for a choice: the assistant role, no content.
nlohmann::json role_chunk_json(int index, const std::string& id, int64_t created, const std::string& model_id);

// JSON text with invalid UTF-8 (a token can end inside a character) replaced.
std::string dump(const nlohmann::json& j);

}  // namespace tpp::serve
