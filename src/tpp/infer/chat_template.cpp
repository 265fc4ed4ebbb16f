// Chat templates from a model directory, rendered as transformers'
// apply_chat_template renders them.
#include "tpp/infer/chat_template.h"

#include <filesystem>

#include <fmt/format.h>

#include "tpp/core/error.h"
#include "tpp/io/json_file.h"
#include "tpp/io/mapped_file.h"

namespace tpp {

ChatTemplate::ChatTemplate(std::string_view source, std::string origin) : template_(source, std::move(origin)) {}

std::string ChatTemplate::render(const nlohmann::ordered_json& context) const {
  return template_.render(context, options_);
}

std::string ChatTemplate::render(const nlohmann::json& context) const {
  return template_.render(nlohmann::ordered_json(context), options_);
}

std::string ChatTemplate::apply(std::span<const ChatMessage> messages, bool add_generation_prompt,
                                const std::string& bos_token, const std::string& eos_token) const {
  nlohmann::ordered_json ctx = nlohmann::ordered_json::object();
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (const ChatMessage& m : messages) list.push_back({{"role", m.role}, {"content", m.content}});
  ctx["messages"] = std::move(list);
  ctx["tools"] = nullptr;
  ctx["documents"] = nullptr;
  ctx["add_generation_prompt"] = add_generation_prompt;
  if (!bos_token.empty()) ctx["bos_token"] = bos_token;
  if (!eos_token.empty()) ctx["eos_token"] = eos_token;
  return render(ctx);
}

ChatTemplate::ChatTemplate(ChatTemplate&&) noexcept = default;
ChatTemplate& ChatTemplate::operator=(ChatTemplate&&) noexcept = default;
ChatTemplate::~ChatTemplate() = default;

namespace {

// A special token in tokenizer_config.json: "text", {"content": "text", ...}
// (an AddedToken), or null / absent.
std::string special_token(const nlohmann::json& config, const std::string& key, const std::string& path) {
  const auto it = config.find(key);
  if (it == config.end() || it->is_null()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object()) {
    const auto c = it->find("content");
    if (c != it->end() && c->is_string()) return c->get<std::string>();
  }
  fail("{}: {}: expected a string or an object with a string \"content\", got {}", path, key, it->dump());
}

}  // namespace

std::optional<ChatTemplateConfig> load_chat_template_config(const std::string& model_dir) {
  const std::string path = model_dir + "/tokenizer_config.json";
  if (!std::filesystem::exists(path)) return std::nullopt;
  const nlohmann::json config = io::read_json_file(path);
  if (!config.is_object()) fail("{}: expected a JSON object, got {}", path, config.type_name());
  ChatTemplateConfig out;
  out.origin = path + ": chat_template";
  const auto it = config.find("chat_template");
  if (it == config.end() || it->is_null()) {
    const std::string jinja_path = model_dir + "/chat_template.jinja";
    if (!std::filesystem::exists(jinja_path)) return std::nullopt;
    out.source = io::read_text_file(jinja_path);
    out.origin = jinja_path;
  } else if (it->is_string()) {
    out.source = it->get<std::string>();
  } else if (it->is_array()) {
    // transformers: {t["name"]: t["template"]}, and "default" unless a name is asked for.
    bool found = false;
    for (const auto& t : *it) {
      if (!t.is_object() || !t.contains("name") || !t["name"].is_string() || !t.contains("template") ||
          !t["template"].is_string())
        fail("{}: chat_template: expected list items {{\"name\": string, \"template\": string}}, got {}", path,
             t.dump());
      if (t["name"] == "default") {
        out.source = t["template"].get<std::string>();
        found = true;
      }
    }
    if (!found) fail("{}: chat_template: a list of templates with none named \"default\"", path);
    out.origin = path + ": chat_template \"default\"";
  } else {
    fail("{}: chat_template: expected a string or a list of {{name, template}}, got {}", path, it->type_name());
  }
  out.bos_token = special_token(config, "bos_token", path);
  out.eos_token = special_token(config, "eos_token", path);
  return out;
}

std::vector<int32_t> load_generation_eos_ids(const std::string& model_dir) {
  const std::string path = model_dir + "/generation_config.json";
  if (!std::filesystem::exists(path)) return {};
  const nlohmann::json config = io::read_json_file(path);
  if (!config.is_object()) fail("{}: expected a JSON object, got {}", path, config.type_name());
  const auto it = config.find("eos_token_id");
  if (it == config.end() || it->is_null()) return {};
  auto id = [&](const nlohmann::json& j) {
    if (!j.is_number_integer() || j.get<int64_t>() < 0 || j.get<int64_t>() > INT32_MAX)
      fail("{}: eos_token_id: expected a token id (a non-negative integer), got {}", path, j.dump());
    return int32_t(j.get<int64_t>());
  };
  std::vector<int32_t> ids;
  if (it->is_array()) {
    for (const auto& j : *it) ids.push_back(id(j));
  } else {
    ids.push_back(id(*it));
  }
  return ids;
}

}  // namespace tpp
