// Real chat templates against an independent implementation: every case of
// tests/golden/chat/<family>.json (rendered by @huggingface/jinja with
// tools/golden/gen_chat.mjs, and agreeing with Python Jinja2) must come out
// byte for byte, or be rejected with the same raise_exception message. Also the
// model-directory loaders: tokenizer_config.json's template and special
// tokens, generation_config.json's eos ids, and their errors.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/test_util.h"
#include "tpp/core/error.h"
#include "tpp/infer/chat_template.h"
#include "tpp/io/mapped_file.h"

namespace tpp::test {
namespace {

using Json = nlohmann::ordered_json;

const char* const kFamilies[] = {"llama3", "llama3_instruct", "llama3_1", "llama3_2", "qwen2_5", "qwen3", "gemma2",
                                 "gemma3", "mistral_v1", "mistral_v1_system", "mistral_v3", "llama2", "tinyllama"};

Json read_golden(const std::string& family) {
  return Json::parse(io::read_text_file(source_path("tests/golden/chat/" + family + ".json")));
}

std::tm golden_clock(const Json& g) {
  std::tm tm{};
  tm.tm_year = g["clock"]["year"].get<int>() - 1900;
  tm.tm_mon = g["clock"]["month"].get<int>() - 1;
  tm.tm_mday = g["clock"]["day"].get<int>();
  tm.tm_hour = g["clock"]["hour"].get<int>();
  tm.tm_min = g["clock"]["minute"].get<int>();
  return tm;
}

// The context gen_chat.mjs renders with: what apply_chat_template passes, then `extra`.
Json context_of(const Json& g, const Json& c) {
  Json ctx = {{"messages", c["messages"]}, {"tools", nullptr}, {"documents", nullptr},
              {"add_generation_prompt", c["add_generation_prompt"]}};
  if (!g["bos_token"].is_null()) ctx["bos_token"] = g["bos_token"];
  if (!g["eos_token"].is_null()) ctx["eos_token"] = g["eos_token"];
  if (c.contains("extra"))
    for (auto it = c["extra"].begin(); it != c["extra"].end(); ++it) ctx[it.key()] = it.value();
  return ctx;
}

// The messages as ChatMessages when they are plain {role, content: string}.
bool plain_messages(const Json& c, std::vector<ChatMessage>* out) {
  if (c.contains("extra")) return false;
  for (const auto& m : c["messages"]) {
    if (m.size() != 2 || !m.contains("role") || !m.contains("content") || !m["content"].is_string()) return false;
    out->push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
  }
  return true;
}

class ChatGoldenTest : public ::testing::TestWithParam<const char*> {};

TEST_P(ChatGoldenTest, RendersLikeTheReference) {
  const Json g = read_golden(GetParam());
  ChatTemplate tpl(g["template"].get<std::string>(), std::string(GetParam()) + ".json: template");
  tpl.set_clock([&] { return golden_clock(g); });
  const std::string bos = g["bos_token"].is_null() ? "" : g["bos_token"].get<std::string>();
  const std::string eos = g["eos_token"].is_null() ? "" : g["eos_token"].get<std::string>();
  int rendered = 0, rejected = 0, applied = 0;
  for (const auto& c : g["cases"]) {
    const std::string name = c["name"].get<std::string>();
    const Json ctx = context_of(g, c);
    std::vector<ChatMessage> messages;
    const bool plain = plain_messages(c, &messages);
    if (c.contains("expected")) {
      const std::string expected = c["expected"].get<std::string>();
      try {
        EXPECT_EQ(tpl.render(ctx), expected) << "case " << name;
        if (plain) {
          EXPECT_EQ(tpl.apply(messages, c["add_generation_prompt"].get<bool>(), bos, eos), expected) << "case " << name;
          ++applied;
        }
      } catch (const Error& e) {
        ADD_FAILURE() << "case " << name << " threw: " << e.what();
      }
      ++rendered;
    } else {
      const std::string expected = c["expected_error"].get<std::string>();
      try {
        tpl.render(ctx);
        ADD_FAILURE() << "case " << name << ": no error, expected: " << expected;
      } catch (const jinja::RaisedError& e) {
        EXPECT_EQ(e.message(), expected) << "case " << name;
        EXPECT_EQ(std::string(e.what()).rfind(tpl.origin() + ":", 0), 0u) << e.what();
      }
      ++rejected;
    }
  }
  EXPECT_GE(rendered + rejected, 18);
  EXPECT_GE(applied, 8);
}

TEST_P(ChatGoldenTest, APerturbedConversationRendersDifferently) {
  // The comparison above can fail: one changed character in the last user or
  // assistant message changes the rendering of every case that renders.
  const Json g = read_golden(GetParam());
  ChatTemplate tpl(g["template"].get<std::string>(), GetParam());
  tpl.set_clock([&] { return golden_clock(g); });
  int checked = 0;
  for (const auto& c : g["cases"]) {
    if (!c.contains("expected") || c["messages"].back()["role"] == "system" ||
        !c["messages"].back()["content"].is_string() ||
        c["messages"].back()["content"].get<std::string>().find_first_not_of(" \n\t") == std::string::npos)
      continue;
    Json ctx = context_of(g, c);
    ctx["messages"].back()["content"] = c["messages"].back()["content"].get<std::string>() + "X";
    EXPECT_NE(tpl.render(ctx), c["expected"].get<std::string>()) << "case " << c["name"];
    ++checked;
  }
  EXPECT_GE(checked, 5);
}

INSTANTIATE_TEST_SUITE_P(Families, ChatGoldenTest, ::testing::ValuesIn(kFamilies));

TEST(ChatTemplateTest, RealTokenizerConfigsLoadTheGoldenTemplates) {
  for (const char* family : {"llama3", "qwen3", "gemma3"}) {
    const std::string dir = source_path(std::string("data/tokenizers/") + family);
    if (!std::filesystem::exists(dir + "/tokenizer_config.json"))
      GTEST_SKIP() << dir << "/tokenizer_config.json is absent: run scripts/get_tokenizers.sh";
    const auto cfg = load_chat_template_config(dir);
    ASSERT_TRUE(cfg.has_value()) << family;
    const Json g = read_golden(family);
    EXPECT_EQ(cfg->source, g["template"].get<std::string>()) << family;
    EXPECT_EQ(cfg->bos_token, g["bos_token"].is_null() ? "" : g["bos_token"].get<std::string>()) << family;
    EXPECT_EQ(cfg->eos_token, g["eos_token"].get<std::string>()) << family;
    const ChatTemplate tpl(cfg->source, cfg->origin);
    const ChatMessage msgs[] = {{"user", "Hello!"}};
    EXPECT_EQ(tpl.apply(msgs, true, cfg->bos_token, cfg->eos_token), g["cases"][2]["expected"].get<std::string>());
  }
}

TEST(ChatTemplateTest, BuiltinToolsLikePythonJinja) {
  // LLaMA 3.1 with builtin_tools uses the reject filter, which the JS
  // reference lacks; this is what Python Jinja2 3.1.6 renders.
  const Json g = read_golden("llama3_1");
  const ChatTemplate tpl(g["template"].get<std::string>(), "llama3_1");
  const Json ctx = {
      {"messages",
       {{{"role", "user"}, {"content", "Search the news."}},
        {{"role", "assistant"},
         {"tool_calls",
          {{{"type", "function"},
            {"function", {{"name", "brave_search"}, {"arguments", {{"query", "news today"}, {"count", "3"}}}}}}}}},
        {{"role", "ipython"}, {"content", "results..."}}}},
      {"tools", nullptr},
      {"documents", nullptr},
      {"add_generation_prompt", true},
      {"bos_token", "<|begin_of_text|>"},
      {"eos_token", "<|eot_id|>"},
      {"builtin_tools", {"brave_search", "code_interpreter", "wolfram_alpha"}}};
  EXPECT_EQ(tpl.render(ctx),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nEnvironment: ipython\n"
            "Tools: brave_search, wolfram_alpha\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n"
            "<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nSearch the news.<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n<|python_tag|>brave_search.call(query=\"news today\", "
            "count=\"3\")<|eom_id|><|start_header_id|>ipython<|end_header_id|>\n\n\"results...\"<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatTemplateTest, JsonContextSortsKeysOrderedJsonKeepsThem) {
  const ChatTemplate tpl("{{ t | tojson }}", "inline");
  EXPECT_EQ(tpl.render(nlohmann::json{{"t", {{"b", 1}, {"a", 2}}}}), "{\"a\": 2, \"b\": 1}");
  EXPECT_EQ(tpl.render(Json{{"t", {{"b", 1}, {"a", 2}}}}), "{\"b\": 1, \"a\": 2}");
  EXPECT_THROW(tpl.render(nlohmann::json::array()), Error);
}

TEST(ChatTemplateTest, ApplyLeavesAnEmptyTokenUndefined) {
  const ChatTemplate tpl("{{ bos_token is defined }}|{{ eos_token }}|{{ tools is none }}|{{ messages | length }}",
                         "inline");
  const ChatMessage msgs[] = {{"user", "a"}, {"assistant", "b"}};
  EXPECT_EQ(tpl.apply(msgs, false, "", "</s>"), "False|</s>|True|2");
}

class ChatTemplateDirTest : public ::testing::Test {
 protected:
  void write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ + "/" + name) << text;
  }
  std::string error_of_config() {
    try {
      load_chat_template_config(dir_);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  }
  std::string dir_ = temp_dir("chat_template_model_dir");
};

TEST_F(ChatTemplateDirTest, ChatTemplateConfigForms) {
  EXPECT_FALSE(load_chat_template_config(dir_).has_value());  // no tokenizer_config.json
  write("tokenizer_config.json", R"({"bos_token": "<s>"})");
  EXPECT_FALSE(load_chat_template_config(dir_).has_value());  // no chat_template
  write("chat_template.jinja", "{{ messages[0].content }}\n");
  auto cfg = load_chat_template_config(dir_);
  ASSERT_TRUE(cfg.has_value());
  EXPECT_EQ(cfg->source, "{{ messages[0].content }}\n");
  EXPECT_EQ(cfg->origin, dir_ + "/chat_template.jinja");
  std::filesystem::remove(dir_ + "/chat_template.jinja");

  write("tokenizer_config.json",
        R"({"chat_template": "T", "bos_token": {"content": "<bos>", "lstrip": false}, "eos_token": null})");
  cfg = load_chat_template_config(dir_);
  ASSERT_TRUE(cfg.has_value());
  EXPECT_EQ(cfg->source, "T");
  EXPECT_EQ(cfg->bos_token, "<bos>");
  EXPECT_EQ(cfg->eos_token, "");
  EXPECT_EQ(cfg->origin, dir_ + "/tokenizer_config.json: chat_template");

  write("tokenizer_config.json",
        R"({"chat_template": [{"name": "tool_use", "template": "A"}, {"name": "default", "template": "B"}],
            "eos_token": "</s>"})");
  cfg = load_chat_template_config(dir_);
  ASSERT_TRUE(cfg.has_value());
  EXPECT_EQ(cfg->source, "B");
  EXPECT_EQ(cfg->eos_token, "</s>");
}

TEST_F(ChatTemplateDirTest, MalformedChatTemplateConfigsNameTheFileAndKey) {
  const std::string file = dir_ + "/tokenizer_config.json";
  write("tokenizer_config.json", R"({"chat_template": [{"name": "rag", "template": "A"}]})");
  EXPECT_EQ(error_of_config(), file + ": chat_template: a list of templates with none named \"default\"");
  write("tokenizer_config.json", R"({"chat_template": 42})");
  EXPECT_EQ(error_of_config(), file + ": chat_template: expected a string or a list of {name, template}, got number");
  write("tokenizer_config.json", R"({"chat_template": [{"name": "default"}]})");
  EXPECT_EQ(error_of_config(),
            file + ": chat_template: expected list items {\"name\": string, \"template\": string}, got "
                   "{\"name\":\"default\"}");
  write("tokenizer_config.json", R"({"chat_template": "T", "eos_token": 7})");
  EXPECT_EQ(error_of_config(), file + ": eos_token: expected a string or an object with a string \"content\", got 7");
  write("tokenizer_config.json", R"({"chat_template": "T",)");
  EXPECT_NE(error_of_config().find(file + ": malformed JSON"), std::string::npos);
  write("tokenizer_config.json", R"({"chat_template": "{% if %}"})");
  const auto cfg = load_chat_template_config(dir_);
  ASSERT_TRUE(cfg.has_value());
  try {
    ChatTemplate(cfg->source, cfg->origin);
    FAIL() << "no syntax error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), file + ": chat_template:1:7: expected an expression, found '%}'");
  }
}

TEST_F(ChatTemplateDirTest, GenerationEosIds) {
  EXPECT_TRUE(load_generation_eos_ids(dir_).empty());
  write("generation_config.json", R"({"bos_token_id": 1})");
  EXPECT_TRUE(load_generation_eos_ids(dir_).empty());
  write("generation_config.json", R"({"eos_token_id": null})");
  EXPECT_TRUE(load_generation_eos_ids(dir_).empty());
  write("generation_config.json", R"({"eos_token_id": 128009})");
  EXPECT_EQ(load_generation_eos_ids(dir_), (std::vector<int32_t>{128009}));
  write("generation_config.json", R"({"eos_token_id": [128001, 128008, 128009]})");
  EXPECT_EQ(load_generation_eos_ids(dir_), (std::vector<int32_t>{128001, 128008, 128009}));
  const std::string file = dir_ + "/generation_config.json";
  for (const char* bad : {R"({"eos_token_id": "2"})", R"({"eos_token_id": [1, -2]})", R"({"eos_token_id": 1.5})"}) {
    write("generation_config.json", bad);
    try {
      load_generation_eos_ids(dir_);
      ADD_FAILURE() << "no error for " << bad;
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()).rfind(file + ": eos_token_id: expected a token id", 0), 0u) << e.what();
    }
  }
}

}  // namespace
}  // namespace tpp::test
