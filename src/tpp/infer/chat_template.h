// Chat templates as Hugging Face models ship them: tokenizer_config.json's
// "chat_template" (a Jinja string, or a list of {name, template} where the one
// named "default" is used), rendered the way transformers' apply_chat_template
// does (jinja.h: trim_blocks, lstrip_blocks, raise_exception, strftime_now).
//
// Verified against an independent implementation (@huggingface/jinja, the
// Jinja port transformers.js uses) on the real templates of LLaMA 3 / 3.1 /
// 3.2, Qwen2.5, Qwen3, Gemma 2 / 3, Mistral v0.1 / v0.2 / v0.3 and LLaMA 2 /
// TinyLlama: tests/golden/chat/, tools/golden/gen_chat.mjs.
#pragma once

#include <cstdint>
#include <ctime>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "tpp/jinja/jinja.h"

namespace tpp {

struct ChatMessage {
  std::string role;     // "system", "user", "assistant", ...
  std::string content;
};

class ChatTemplate {
 public:
  // Parses `source`; `origin` names it in errors (e.g. "model/tokenizer_config.json: chat_template").
  // A syntax error, unknown tag, filter or test is a tpp::Error with line and column.
  ChatTemplate(std::string_view source, std::string origin);

  // Renders with the given variables (messages, add_generation_prompt,
  // bos_token, eos_token, tools, ...). A raise_exception in the template is a
  // jinja::RaisedError (a tpp::Error) whose message() is the template's text.
  // The ordered_json overload keeps the caller's key order, which tojson shows;
  // nlohmann::json sorts keys.
  std::string render(const nlohmann::json& context) const;
  std::string render(const nlohmann::ordered_json& context) const;

  // What transformers' apply_chat_template(messages, add_generation_prompt)
  // renders: the variables messages, add_generation_prompt, tools = none,
  // documents = none, and bos_token / eos_token (left undefined when empty, as
  // a model without that token has it).
  std::string apply(std::span<const ChatMessage> messages, bool add_generation_prompt,
                    const std::string& bos_token, const std::string& eos_token) const;

  // strftime_now's clock (the current local time, broken down); tests fix it.
  void set_clock(std::function<std::tm()> now) { options_.now = std::move(now); }
  const std::string& origin() const { return template_.origin(); }

  ChatTemplate(ChatTemplate&&) noexcept;
  ChatTemplate& operator=(ChatTemplate&&) noexcept;
  ~ChatTemplate();

 private:
  jinja::Template template_;
  jinja::RenderOptions options_;
};

// Reads dir/tokenizer_config.json's chat_template (a string, or a list with
// name "default"; when the key is absent, dir/chat_template.jinja as newer
// transformers save it), and its bos_token / eos_token (a string or an
// AddedToken object {"content": ...}; "" when absent or null). Returns
// std::nullopt when tokenizer_config.json or the template is absent; malformed
// values are a tpp::Error naming the file and the key.
struct ChatTemplateConfig {
  std::string source, bos_token, eos_token;
  std::string origin;  // "<file>: chat_template", for ChatTemplate's errors
};
std::optional<ChatTemplateConfig> load_chat_template_config(const std::string& model_dir);

// generation_config.json's eos_token_id (an int or a list of ints): the ids
// generation stops on. Empty when the file or the key is absent (or null);
// anything else malformed is a tpp::Error naming the file and the key.
std::vector<int32_t> load_generation_eos_ids(const std::string& model_dir);

}  // namespace tpp
