#include "tpp/serve/openai.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "tpp/serve/json_grammar.h"

namespace tpp::serve {

using nlohmann::json;

json ApiError::body() const {
  return {{"error",
           {{"message", message},
            {"type", type},
            {"param", param.empty() ? json(nullptr) : json(param)},
            {"code", code.empty() ? json(nullptr) : json(code)}}}};
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::vector<int32_t> TextCodec::encode(const std::string& s, bool add_special) const {
  if (text_.tokenizer) return text_.tokenizer->encode(s, add_special);
  return bytes_.encode(s, false);
}

std::string TextCodec::token_bytes(int32_t id) const {
  return text_.tokenizer ? text_.tokenizer->decode_token(id) : bytes_.decode_one(id);
}

std::string TextCodec::decode(const std::vector<int32_t>& ids) const {
  return text_.tokenizer ? text_.tokenizer->decode(ids) : bytes_.decode(ids);
}

std::vector<int32_t> TextCodec::chat_prompt(const std::vector<ChatMessage>& messages) const {
  if (!text_.tokenizer || !text_.chat_template)
    throw ApiError{400,
                   fmt::format("this model has no {}, so it serves /v1/completions only",
                               !text_.tokenizer ? "tokenizer" : "chat template"),
                   "messages"};
  try {
    return text_.chat_prompt(messages);
  } catch (const Error& e) {
    throw ApiError{400, fmt::format("the chat template failed on these messages: {}", e.what()), "messages"};
  }
}

std::vector<int32_t> TextCodec::stop_ids(int32_t vocab_size) const {
  if (text_.tokenizer) return text_.stop_ids;
  if (vocab_size > ByteTokenizer::kEos) return {ByteTokenizer::kEos};
  return {};
}

namespace {

[[noreturn]] void bad(const std::string& param, const std::string& message) { throw ApiError{400, message, param}; }

// A field's value when present and not null.
const json* field(const json& body, const char* name) {
  auto it = body.find(name);
  return it == body.end() || it->is_null() ? nullptr : &*it;
}

double number(const json& body, const char* name, double fallback, double lo, double hi) {
  const json* v = field(body, name);
  if (!v) return fallback;
  if (!v->is_number()) bad(name, fmt::format("'{}' must be a number, got {}", name, v->type_name()));
  const double x = v->get<double>();
  if (!(x >= lo && x <= hi)) bad(name, fmt::format("'{}' is {}, expected a number in [{}, {}]", name, x, lo, hi));
  return x;
}

int64_t integer(const json& body, const char* name, int64_t fallback, int64_t lo, int64_t hi) {
  const json* v = field(body, name);
  if (!v) return fallback;
  if (!v->is_number_integer()) bad(name, fmt::format("'{}' must be an integer, got {}", name, v->type_name()));
  const int64_t x = v->is_number_unsigned() && v->get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max())
                        ? std::numeric_limits<int64_t>::max()
                        : v->get<int64_t>();
  if (x < lo || x > hi) bad(name, fmt::format("'{}' is {}, expected an integer in [{}, {}]", name, x, lo, hi));
  return x;
}

bool boolean(const json& body, const char* name, bool fallback) {
  const json* v = field(body, name);
  if (!v) return fallback;
  if (!v->is_boolean()) bad(name, fmt::format("'{}' must be a boolean, got {}", name, v->type_name()));
  return v->get<bool>();
}

std::vector<int32_t> token_ids(const json& a, const std::string& param) {
  std::vector<int32_t> ids;
  for (const auto& t : a) {
    if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() > std::numeric_limits<int32_t>::max())
      bad(param, fmt::format("'{}' must hold non-negative integer token ids", param));
    ids.push_back(int32_t(t.get<int64_t>()));
  }
  return ids;
}

// The prompts of a completions request: a string, a list of strings, a list
// of token ids, or a list of lists of token ids.
std::vector<std::vector<int32_t>> prompts(const json& body, const TextCodec& codec) {
  const json* p = field(body, "prompt");
  if (!p) bad("prompt", "'prompt' is required");
  std::vector<std::vector<int32_t>> out;
  if (p->is_string()) {
    out.push_back(codec.encode(p->get<std::string>(), true));
  } else if (p->is_array() && !p->empty() && (*p)[0].is_number()) {
    out.push_back(token_ids(*p, "prompt"));
  } else if (p->is_array() && !p->empty()) {
    for (const auto& item : *p) {
      if (item.is_string()) out.push_back(codec.encode(item.get<std::string>(), true));
      else if (item.is_array()) out.push_back(token_ids(item, "prompt"));
      else bad("prompt", "'prompt' must be a string, a list of strings, or token ids");
    }
  } else {
    bad("prompt", "'prompt' must be a non-empty string, list of strings, or list of token ids");
  }
  for (const auto& ids : out)
    if (ids.empty()) bad("prompt", "a prompt is empty (it must give at least one token)");
  return out;
}

std::vector<ChatMessage> messages(const json& body) {
  const json* m = field(body, "messages");
  if (!m || !m->is_array() || m->empty()) bad("messages", "'messages' must be a non-empty array");
  std::vector<ChatMessage> out;
  for (size_t i = 0; i < m->size(); ++i) {
    const json& msg = (*m)[i];
    const std::string where = fmt::format("messages[{}]", i);
    if (!msg.is_object()) bad(where, where + " must be an object");
    for (auto it = msg.begin(); it != msg.end(); ++it)
      if (it.key() != "role" && it.key() != "content" && it.key() != "name")
        bad(where + "." + it.key(), fmt::format("{}.{} is not supported", where, it.key()));
    const json* role = field(msg, "role");
    if (!role || !role->is_string()) bad(where + ".role", where + ".role must be a string");
    const std::string r = role->get<std::string>();
    if (r != "system" && r != "user" && r != "assistant" && r != "developer")
      bad(where + ".role", fmt::format("{}.role '{}' is not one of system, developer, user, assistant", where, r));
    const json* content = field(msg, "content");
    std::string text;
    if (!content) {
      bad(where + ".content", where + ".content is required");
    } else if (content->is_string()) {
      text = content->get<std::string>();
    } else if (content->is_array()) {
      for (const auto& part : *content) {
        if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") || !part["text"].is_string())
          bad(where + ".content", where + ".content parts must be {\"type\": \"text\", \"text\": ...}; only text is supported");
        text += part["text"].get<std::string>();
      }
    } else {
      bad(where + ".content", where + ".content must be a string or an array of text parts");
    }
    out.push_back({r == "developer" ? "system" : r, text});
  }
  return out;
}

std::vector<std::string> stops(const json& body) {
  const json* s = field(body, "stop");
  if (!s) return {};
  std::vector<std::string> out;
  if (s->is_string()) {
    out.push_back(s->get<std::string>());
  } else if (s->is_array() && s->size() <= 16) {
    for (const auto& x : *s) {
      if (!x.is_string()) bad("stop", "'stop' must be a string or an array of strings");
      out.push_back(x.get<std::string>());
    }
  } else {
    bad("stop", "'stop' must be a string or an array of at most 16 strings");
  }
  return out;
}

}  // namespace

ApiRequest parse_request(const json& body, bool chat, const std::string& model_id, const TextCodec& codec, int64_t ctx,
                         uint64_t default_seed) {
  if (!body.is_object()) throw ApiError{400, "the request body must be a JSON object"};
  static const std::set<std::string> common = {
      "model",     "max_tokens", "temperature",       "top_p",         "top_k", "min_p", "repetition_penalty",
      "presence_penalty", "frequency_penalty", "seed", "stop", "n", "logprobs", "stream", "stream_options",
      "logit_bias", "user", "response_format"};
  static const std::set<std::string> chat_only = {"messages", "max_completion_tokens", "top_logprobs", "store"};
  static const std::set<std::string> completions_only = {"prompt", "echo", "best_of", "suffix"};
  for (auto it = body.begin(); it != body.end(); ++it) {
    const std::string& k = it.key();
    if (common.count(k) || (chat ? chat_only : completions_only).count(k)) continue;
    bad(k, fmt::format("'{}' is not supported by this server{}", k,
                       k == "tools" || k == "tool_choice" || k == "functions" || k == "function_call"
                           ? " (no tool calling)"
                           : ""));
  }
  if (const json* m = field(body, "model")) {
    if (!m->is_string()) bad("model", "'model' must be a string");
    if (m->get<std::string>() != model_id)
      throw ApiError{404, fmt::format("The model '{}' does not exist; this server serves '{}'", m->get<std::string>(),
                                      model_id),
                     "model", "invalid_request_error", "model_not_found"};
  }
  std::shared_ptr<const JsonGrammar> grammar;
  if (const json* f = field(body, "response_format")) {
    if (!f->is_object() || !f->contains("type") || !(*f)["type"].is_string())
      bad("response_format", "'response_format' must be an object with a 'type'");
    const std::string t = (*f)["type"].get<std::string>();
    if (t == "json_object") {
      grammar = JsonGrammar::any_object();
    } else if (t == "json_schema") {
      const json* js = field(*f, "json_schema");
      if (!js || !js->is_object() || !js->contains("schema"))
        bad("response_format", "response_format.json_schema must be an object with a 'schema'");
      try {
        grammar = JsonGrammar::from_schema((*js)["schema"]);
      } catch (const SchemaError& e) {
        bad("response_format", fmt::format("response_format.json_schema.{}", e.what()));
      }
    } else if (t != "text") {
      bad("response_format", fmt::format("response_format type '{}' is not one of text, json_object, json_schema", t));
    }
  }
  if (!chat) {
    if (boolean(body, "echo", false)) bad("echo", "'echo' is not supported");
    if (field(body, "suffix")) bad("suffix", "'suffix' is not supported");
  }
  if (chat && field(body, "store") && boolean(body, "store", false)) bad("store", "'store' is not supported");

  ApiRequest r;
  r.chat = chat;
  r.stream = boolean(body, "stream", false);
  if (const json* so = field(body, "stream_options")) {
    if (!so->is_object()) bad("stream_options", "'stream_options' must be an object");
    if (!r.stream) bad("stream_options", "'stream_options' is only allowed with 'stream': true");
    for (auto it = so->begin(); it != so->end(); ++it)
      if (it.key() != "include_usage") bad("stream_options." + it.key(), "stream_options." + it.key() + " is not supported");
    r.include_usage = boolean(*so, "include_usage", false);
  }
  r.n = int(integer(body, "n", 1, 1, 16));
  if (!chat && field(body, "best_of") && integer(body, "best_of", 1, 1, 16) != r.n)
    bad("best_of", "'best_of' other than n is not supported");

  SequenceSpec spec;
  spec.sampling.temperature = float(number(body, "temperature", 1.0, 0.0, 2.0));
  spec.sampling.top_p = float(number(body, "top_p", 1.0, 0.0, 1.0));
  if (spec.sampling.top_p == 0) bad("top_p", "'top_p' must be greater than 0");
  spec.sampling.top_k = int(integer(body, "top_k", 0, 0, std::numeric_limits<int32_t>::max()));
  spec.sampling.min_p = float(number(body, "min_p", 0.0, 0.0, 0.999999));
  spec.sampling.repeat_penalty = float(number(body, "repetition_penalty", 1.0, 1e-3, 100.0));
  spec.presence_penalty = float(number(body, "presence_penalty", 0.0, -2.0, 2.0));
  spec.frequency_penalty = float(number(body, "frequency_penalty", 0.0, -2.0, 2.0));
  const uint64_t seed = field(body, "seed")
                            ? uint64_t(integer(body, "seed", 0, std::numeric_limits<int64_t>::min(),
                                               std::numeric_limits<int64_t>::max()))
                            : default_seed;
  spec.stop = stops(body);
  spec.grammar = grammar;
  if (const json* lb = field(body, "logit_bias")) {
    if (!lb->is_object()) bad("logit_bias", "'logit_bias' must map token ids to numbers");
    for (auto it = lb->begin(); it != lb->end(); ++it) {
      size_t used = 0;
      long long id = -1;
      try {
        id = std::stoll(it.key(), &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used == 0 || used != it.key().size() || id < 0 || id > std::numeric_limits<int32_t>::max())
        bad("logit_bias", fmt::format("logit_bias key '{}' is not a token id", it.key()));
      if (!it->is_number() || !(it->get<double>() >= -100 && it->get<double>() <= 100))
        bad("logit_bias", fmt::format("logit_bias['{}'] must be a number in [-100, 100]", it.key()));
      spec.logit_bias.emplace_back(int32_t(id), it->get<float>());
    }
  }
  if (chat) {
    r.logprobs = boolean(body, "logprobs", false);
    const int top = int(integer(body, "top_logprobs", 0, 0, 20));
    if (field(body, "top_logprobs") && !r.logprobs) bad("top_logprobs", "'top_logprobs' needs 'logprobs': true");
    spec.logprobs = r.logprobs ? top : -1;
  } else {
    spec.logprobs = int(integer(body, "logprobs", -1, 0, 20));
    r.logprobs = spec.logprobs >= 0;
  }
  const char* max_name = chat && field(body, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
  if (chat && field(body, "max_completion_tokens") && field(body, "max_tokens"))
    bad("max_tokens", "give 'max_tokens' or 'max_completion_tokens', not both");
  const int64_t max_tokens = integer(body, max_name, chat ? -1 : 16, 1, std::numeric_limits<int32_t>::max());

  std::vector<std::vector<int32_t>> ps;
  if (chat) ps.push_back(codec.chat_prompt(messages(body)));
  else ps = prompts(body, codec);
  r.prompts = int(ps.size());
  if (r.prompts * r.n > 64) bad("n", fmt::format("{} prompts x n = {} choices; at most 64", r.prompts, r.n));
  for (size_t p = 0; p < ps.size(); ++p) {
    const int64_t len = int64_t(ps[p].size());
    if (len >= ctx)
      throw ApiError{400,
                     fmt::format("the prompt is {} tokens; this server's context is {} tokens", len, ctx),
                     chat ? "messages" : "prompt", "invalid_request_error", "context_length_exceeded"};
    const int64_t room = ctx - len;
    if (max_tokens > room)
      throw ApiError{400,
                     fmt::format("the prompt ({} tokens) and {} = {} exceed this server's context of {} tokens", len,
                                 max_name, max_tokens, ctx),
                     max_name, "invalid_request_error", "context_length_exceeded"};
    for (int i = 0; i < r.n; ++i) {
      SequenceSpec s = spec;
      s.prompt = ps[p];
      s.max_tokens = int(max_tokens > 0 ? max_tokens : room);
      // Choice i of a seeded request draws from seed + i: choice 0 is what
      // `tpp generate --seed S` gives.
      s.sampling.seed = seed + uint64_t(p) * uint64_t(r.n) + uint64_t(i);
      r.sequences.push_back(std::move(s));
    }
  }
  return r;
}

namespace {

json bytes_json(const std::string& s) {
  json b = json::array();
  for (unsigned char c : s) b.push_back(int(c));
  return b;
}

json logprobs_json(const ApiRequest& r, const std::vector<TokenLogprob>& lps, size_t text_offset,
                   const TextCodec& codec) {
  if (r.chat) {
    json content = json::array();
    for (const auto& lp : lps) {
      const std::string t = codec.token_bytes(lp.token);
      json top = json::array();
      for (const auto& [id, p] : lp.top) {
        const std::string s = codec.token_bytes(id);
        top.push_back({{"token", s}, {"logprob", p}, {"bytes", bytes_json(s)}});
      }
      content.push_back({{"token", t}, {"logprob", lp.logprob}, {"bytes", bytes_json(t)}, {"top_logprobs", top}});
    }
    return {{"content", content}};
  }
  json tokens = json::array(), token_logprobs = json::array(), top = json::array(), offsets = json::array();
  size_t at = text_offset;
  for (const auto& lp : lps) {
    const std::string t = codec.token_bytes(lp.token);
    tokens.push_back(t);
    token_logprobs.push_back(lp.logprob);
    json alts = json::object();
    for (const auto& [id, p] : lp.top) alts[codec.token_bytes(id)] = p;
    top.push_back(alts);
    offsets.push_back(at);
    at += t.size();
  }
  return {{"tokens", tokens}, {"token_logprobs", token_logprobs}, {"top_logprobs", top}, {"text_offset", offsets}};
}

json finish(const std::string& reason) { return reason.empty() ? json(nullptr) : json(reason); }

}  // namespace

json usage_json(const ApiRequest& r, const std::vector<ChoiceResult>& choices) {
  int64_t prompt = 0, completion = 0, cached = 0;
  for (size_t i = 0; i < choices.size(); ++i) {
    completion += choices[i].completion_tokens;
    // The prompt once per prompt, as OpenAI counts it; its cached share from
    // the choice that reused the most.
    if (i % size_t(r.n) == 0) {
      prompt += choices[i].prompt_tokens;
      int best = 0;
      for (size_t j = i; j < i + size_t(r.n) && j < choices.size(); ++j) best = std::max(best, choices[j].cached_tokens);
      cached += best;
    }
  }
  return {{"prompt_tokens", prompt},
          {"completion_tokens", completion},
          {"total_tokens", prompt + completion},
          {"prompt_tokens_details", {{"cached_tokens", cached}}}};
}

json response_json(const ApiRequest& r, const std::vector<ChoiceResult>& choices, const std::string& id,
                   int64_t created, const std::string& model_id, const TextCodec& codec) {
  json cs = json::array();
  for (size_t i = 0; i < choices.size(); ++i) {
    const ChoiceResult& c = choices[i];
    json lp = r.logprobs ? logprobs_json(r, c.logprobs, 0, codec) : json(nullptr);
    if (r.chat)
      cs.push_back({{"index", i},
                    {"message", {{"role", "assistant"}, {"content", c.text}}},
                    {"logprobs", lp},
                    {"finish_reason", finish(c.finish_reason)}});
    else
      cs.push_back({{"index", i}, {"text", c.text}, {"logprobs", lp}, {"finish_reason", finish(c.finish_reason)}});
  }
  return {{"id", id},
          {"object", r.chat ? "chat.completion" : "text_completion"},
          {"created", created},
          {"model", model_id},
          {"choices", cs},
          {"usage", usage_json(r, choices)}};
}

json chunk_json(const ApiRequest& r, const Event& e, size_t text_offset, const std::string& id, int64_t created,
                const std::string& model_id, const TextCodec& codec) {
  json lp = r.logprobs && !e.logprobs.empty() ? logprobs_json(r, e.logprobs, text_offset, codec) : json(nullptr);
  json choice;
  if (r.chat) {
    json delta = json::object();
    if (!e.text.empty()) delta["content"] = e.text;
    choice = {{"index", e.index}, {"delta", delta}, {"logprobs", lp}, {"finish_reason", finish(e.finish_reason)}};
  } else {
    choice = {{"index", e.index}, {"text", e.text}, {"logprobs", lp}, {"finish_reason", finish(e.finish_reason)}};
  }
  json out = {{"id", id},
              {"object", r.chat ? "chat.completion.chunk" : "text_completion"},
              {"created", created},
              {"model", model_id},
              {"choices", json::array({choice})}};
  if (r.include_usage) out["usage"] = nullptr;
  return out;
}

json role_chunk_json(int index, const std::string& id, int64_t created, const std::string& model_id) {
  return {{"id", id},
          {"object", "chat.completion.chunk"},
          {"created", created},
          {"model", model_id},
          {"choices",
           json::array({{{"index", index},
                         {"delta", {{"role", "assistant"}, {"content", ""}}},
                         {"logprobs", nullptr},
                         {"finish_reason", nullptr}}})}};
}

}  // namespace tpp::serve
