// The HTTP server, in process on a free port, driven by an HTTP client:
// endpoints, OpenAI's response shapes, streaming, and errors.
#include "tpp/serve/server.h"

#include <httplib.h>

#include <thread>

#include <gtest/gtest.h>

#include "common/test_util.h"
#include "serve/serve_test_util.h"

namespace tpp::serve {
namespace {

using nlohmann::json;
using test::serve_model;

class ServerTest : public ::testing::Test {
 protected:
  void start(const std::string& api_key = "", size_t max_body = 1 << 20, int parallel = 2, int max_queue = 64) {
    ServerOptions o = test::test_server_options(parallel);
    o.api_key = api_key;
    o.max_body_bytes = max_body;
    o.engine.max_queue = max_queue;
    server_ = std::make_unique<test::TestServer>(o);
    client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
    client_->set_read_timeout(60);
    for (int i = 0; i < 100 && !client_->Get("/health"); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  // POST path with body; returns (status, parsed JSON or the raw text).
  std::pair<int, json> post(const std::string& path, const std::string& body, const httplib::Headers& h = {}) {
    auto res = client_->Post(path, h, body, "application/json");
    if (!res) return {0, nullptr};
    json j = json::parse(res->body, nullptr, false);
    return {res->status, j.is_discarded() ? json(res->body) : j};
  }
  // The events of a stream: each "data:" line's JSON, "[DONE]" as a string.
  std::vector<json> stream(const std::string& path, const json& body) {
    auto res = client_->Post(path, body.dump(), "application/json");
    EXPECT_TRUE(res);
    if (!res) return {};
    EXPECT_EQ(res->status, 200);
    EXPECT_EQ(res->get_header_value("Content-Type"), "text/event-stream");
    std::vector<json> out;
    size_t at = 0;
    while ((at = res->body.find("data: ", at)) != std::string::npos) {
      const size_t end = res->body.find("\n\n", at);
      const std::string d = res->body.substr(at + 6, end - at - 6);
      out.push_back(d == "[DONE]" ? json("[DONE]") : json::parse(d));
      at = end;
    }
    return out;
  }

  std::unique_ptr<test::TestServer> server_;
  std::unique_ptr<httplib::Client> client_;
};

SamplingParams seeded(float temperature, uint64_t seed) {
  SamplingParams p;
  p.temperature = temperature;
  p.top_k = 0;
  p.top_p = 1;
  p.min_p = 0;
  p.seed = seed;
  return p;
}

// The text of these tokens as a client reads it from the JSON (the random
// model's bytes need not be valid UTF-8; invalid bytes arrive replaced).
std::string text_of(const std::vector<int32_t>& ids) {
  return json::parse(dump(json(TextCodec(serve_model().text).decode(ids)))).get<std::string>();
}

TEST_F(ServerTest, HealthModelsTokenizeDetokenize) {
  start();
  auto h = client_->Get("/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(json::parse(h->body)["status"], "ok");
  auto m = client_->Get("/v1/models");
  ASSERT_TRUE(m);
  EXPECT_EQ(json::parse(m->body)["data"][0]["id"], "test-model");
  auto [s1, t] = post("/tokenize", R"({"content": "the cat"})");
  EXPECT_EQ(s1, 200);
  const auto ids = t["tokens"].get<std::vector<int32_t>>();
  EXPECT_EQ(ids, TextCodec(serve_model().text).encode("the cat", false));
  auto [s2, d] = post("/detokenize", json{{"tokens", ids}}.dump());
  EXPECT_EQ(s2, 200);
  EXPECT_EQ(d["content"], "the cat");
}

TEST_F(ServerTest, CompletionsMatchGenerateGreedyAndSeeded) {
  start();
  const TextCodec codec(serve_model().text);
  const std::string prompt = "the cat sat on the mat";
  const auto ids = codec.encode(prompt, true);
  auto [s, r] = post("/v1/completions",
                     json{{"model", "test-model"}, {"prompt", prompt}, {"max_tokens", 20}, {"temperature", 0}}.dump());
  ASSERT_EQ(s, 200) << r.dump();
  EXPECT_EQ(r["object"], "text_completion");
  const auto greedy = test::generate_alone(serve_model().model, ids, 20, seeded(0, 0));
  EXPECT_EQ(r["choices"][0]["text"], text_of(greedy));
  EXPECT_EQ(r["usage"]["prompt_tokens"], ids.size());
  // n = 2, seeded: choice i draws from seed + i.
  auto [s2, r2] = post("/v1/completions", json{{"prompt", ids}, {"max_tokens", 15}, {"seed", 42}, {"n", 2}}.dump());
  ASSERT_EQ(s2, 200) << r2.dump();
  ASSERT_EQ(r2["choices"].size(), 2u);
  int completion = 0;
  for (int i = 0; i < 2; ++i) {
    const auto alone = test::generate_alone(serve_model().model, ids, 15, seeded(1, uint64_t(42 + i)));
    EXPECT_EQ(r2["choices"][i]["text"], text_of(alone)) << "choice " << i;
    EXPECT_EQ(r2["choices"][i]["index"], i);
    completion += int(alone.size()) + (alone.size() < 15 ? 1 : 0);
  }
  EXPECT_EQ(r2["usage"]["completion_tokens"], completion);
  EXPECT_EQ(r2["usage"]["prompt_tokens"], ids.size()) << "one prompt, counted once";
  EXPECT_EQ(r2["usage"]["total_tokens"], completion + int(ids.size()));
}

TEST_F(ServerTest, ChatUsesTheTemplateAndStreamsTheSameText) {
  start();
  const json body = {{"model", "test-model"},
                     {"messages", {{{"role", "system"}, {"content", "be brief"}}, {{"role", "user"}, {"content", "hi"}}}},
                     {"max_tokens", 24},
                     {"seed", 7},
                     {"temperature", 0.8}};
  auto [s, r] = post("/v1/chat/completions", body.dump());
  ASSERT_EQ(s, 200) << r.dump();
  EXPECT_EQ(r["object"], "chat.completion");
  EXPECT_EQ(r["choices"][0]["message"]["role"], "assistant");
  const auto prompt = serve_model().text.chat_prompt(
      std::vector<ChatMessage>{{"system", "be brief"}, {"user", "hi"}});
  SamplingParams p = seeded(0.8f, 7);
  const auto alone = test::generate_alone(serve_model().model, prompt, 24, p);
  const std::string text = r["choices"][0]["message"]["content"];
  EXPECT_EQ(text, text_of(alone));
  json sb = body;
  sb["stream"] = true;
  sb["stream_options"] = {{"include_usage", true}};
  const auto events = stream("/v1/chat/completions", sb);
  ASSERT_GE(events.size(), 3u);
  EXPECT_EQ(events.front()["choices"][0]["delta"]["role"], "assistant");
  EXPECT_EQ(events.back(), "[DONE]");
  const json& usage = events[events.size() - 2];
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"], r["usage"]);
  std::string streamed, finish;
  for (size_t i = 0; i + 2 < events.size(); ++i) {
    EXPECT_EQ(events[i]["object"], "chat.completion.chunk");
    EXPECT_TRUE(events[i]["usage"].is_null());
    const json& c = events[i]["choices"][0];
    if (c["delta"].contains("content")) streamed += c["delta"]["content"].get<std::string>();
    if (!c["finish_reason"].is_null()) finish = c["finish_reason"];
  }
  EXPECT_EQ(streamed, text);
  EXPECT_EQ(finish, r["choices"][0]["finish_reason"]);
}

TEST_F(ServerTest, StopStringsEndTheReplyAndAreNotReturned) {
  start();
  const json base = {{"prompt", "the cat"}, {"max_tokens", 40}, {"temperature", 0}};
  auto [s, full] = post("/v1/completions", base.dump());
  ASSERT_EQ(s, 200);
  const std::string text = full["choices"][0]["text"];
  ASSERT_GE(text.size(), 12u) << "the greedy reply is too short for this test";
  const std::string stop = text.substr(6, 3);
  const size_t cut = text.find(stop);
  json b = base;
  b["stop"] = {stop, "never appears \x01"};
  auto [s2, r] = post("/v1/completions", b.dump());
  ASSERT_EQ(s2, 200);
  EXPECT_EQ(r["choices"][0]["text"], text.substr(0, cut));
  EXPECT_EQ(r["choices"][0]["finish_reason"], "stop");
  b["stream"] = true;
  std::string streamed;
  for (const auto& e : stream("/v1/completions", b))
    if (e.is_object()) streamed += e["choices"][0]["text"].get<std::string>();
  EXPECT_EQ(streamed, text.substr(0, cut));
}

TEST_F(ServerTest, LogprobsInBothFormats) {
  start();
  auto [s, r] = post("/v1/chat/completions",
                     json{{"messages", {{{"role", "user"}, {"content", "x"}}}},
                          {"max_tokens", 6},
                          {"temperature", 0},
                          {"logprobs", true},
                          {"top_logprobs", 3}}
                         .dump());
  ASSERT_EQ(s, 200) << r.dump();
  const json& content = r["choices"][0]["logprobs"]["content"];
  ASSERT_FALSE(content.empty());
  std::string joined;
  for (const auto& t : content) {
    ASSERT_EQ(t["top_logprobs"].size(), 3u);
    EXPECT_LE(t["logprob"].get<double>(), 0.0);
    // Greedy: the chosen token is the most likely one.
    EXPECT_EQ(t["top_logprobs"][0]["token"], t["token"]);
    EXPECT_DOUBLE_EQ(t["top_logprobs"][0]["logprob"].get<double>(), t["logprob"].get<double>());
    EXPECT_GE(t["top_logprobs"][0]["logprob"].get<double>(), t["top_logprobs"][1]["logprob"].get<double>());
    joined += t["token"].get<std::string>();
  }
  EXPECT_EQ(joined, r["choices"][0]["message"]["content"]);
  auto [s2, c] = post("/v1/completions", json{{"prompt", "x"}, {"max_tokens", 4}, {"logprobs", 2}}.dump());
  ASSERT_EQ(s2, 200) << c.dump();
  const json& lp = c["choices"][0]["logprobs"];
  EXPECT_EQ(lp["tokens"].size(), lp["token_logprobs"].size());
  EXPECT_EQ(lp["top_logprobs"][0].size(), 2u);
  EXPECT_EQ(lp["text_offset"][0], 0);
}

// Constrained decoding: even a random model's reply parses and follows the
// schema (it can only draw tokens that continue valid JSON).
TEST_F(ServerTest, JsonSchemaRepliesAlwaysParseAndValidate) {
  start();
  const json schema = json::parse(R"({"type": "object", "properties": {
      "color": {"enum": ["red", "green"]}, "n": {"type": "integer"}, "ok": {"type": "boolean"},
      "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "maxItems": 2},
      "inner": {"type": "object", "properties": {"w": {"const": 7}}, "required": ["w"]}},
    "required": ["color", "n", "ok", "inner"]})");
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    auto [s, r] = post("/v1/chat/completions",
                       json{{"messages", {{{"role", "user"}, {"content", "a json please"}}}},
                            {"max_tokens", 400},
                            {"seed", seed},
                            {"response_format",
                             {{"type", "json_schema"}, {"json_schema", {{"name", "t"}, {"schema", schema}, {"strict", true}}}}}}
                           .dump());
    ASSERT_EQ(s, 200) << r.dump();
    const std::string text = r["choices"][0]["message"]["content"];
    EXPECT_EQ(r["choices"][0]["finish_reason"], "stop") << text;
    const json j = json::parse(text, nullptr, false);
    ASSERT_TRUE(j.is_object()) << text;
    EXPECT_TRUE(j["color"] == "red" || j["color"] == "green") << text;
    EXPECT_TRUE(j["n"].is_number_integer()) << text;
    EXPECT_TRUE(j["ok"].is_boolean()) << text;
    EXPECT_EQ(j["inner"]["w"], 7) << text;
    if (j.contains("tags")) {
      EXPECT_LE(j["tags"].size(), 2u) << text;
    }
    for (auto it = j.begin(); it != j.end(); ++it) EXPECT_TRUE(schema["properties"].contains(it.key())) << text;
  }
  // json_object: any object (this random model's free text ends when it draws a quote).
  auto [s, r] = post("/v1/completions",
                     json{{"prompt", "x"}, {"max_tokens", 480}, {"seed", 3}, {"response_format", {{"type", "json_object"}}}}
                         .dump());
  ASSERT_EQ(s, 200) << r.dump();
  const std::string text = r["choices"][0]["text"];
  if (r["choices"][0]["finish_reason"] == "stop") {
    EXPECT_TRUE(json::parse(text, nullptr, false).is_object()) << text;
  } else {
    EXPECT_EQ(text.substr(0, 1), "{") << text;
  }
}

TEST_F(ServerTest, BadRequestsGetOpenAIErrorsNamingTheField) {
  start("", 4096);
  auto expect = [&](const std::string& path, const std::string& body, int status, const std::string& param,
                    const std::string& words) {
    auto [s, r] = post(path, body);
    EXPECT_EQ(s, status) << body;
    ASSERT_TRUE(r.is_object() && r.contains("error")) << r.dump();
    EXPECT_EQ(r["error"]["param"], param.empty() ? json(nullptr) : json(param)) << body;
    EXPECT_NE(r["error"]["message"].get<std::string>().find(words), std::string::npos) << r.dump();
  };
  expect("/v1/completions", "{not json", 400, "", "not valid JSON");
  expect("/v1/completions", R"({"prompt": "a", "best_of": 3})", 400, "best_of", "best_of");
  expect("/v1/completions", R"({"prompt": "a", "frobnicate": 1})", 400, "frobnicate", "not supported");
  expect("/v1/chat/completions", R"({"messages": [{"role": "user", "content": "a"}], "tools": []})", 400, "tools",
         "tool calling");
  expect("/v1/completions", R"({"prompt": "a", "temperature": "hot"})", 400, "temperature", "must be a number");
  expect("/v1/completions", R"({"prompt": "a", "top_p": 1.5})", 400, "top_p", "[0, 1]");
  expect("/v1/completions", R"({"prompt": "a", "n": 0})", 400, "n", "[1, 16]");
  expect("/v1/completions", R"({"prompt": 5})", 400, "prompt", "'prompt'");
  expect("/v1/completions", R"({"prompt": "a", "model": "gpt-4"})", 404, "model", "does not exist");
  expect("/v1/completions", R"({"prompt": "a", "max_tokens": 600})", 400, "max_tokens", "context of 512");
  expect("/v1/completions", R"({"prompt": [1, 2, 999]})", 400, "", "outside the vocabulary");
  expect("/v1/chat/completions", R"({"messages": [{"role": "robot", "content": "a"}]})", 400, "messages[0].role",
         "robot");
  expect("/v1/chat/completions",
         R"({"messages": [{"role": "user", "content": "a"}], "response_format": {"type": "json_schema"}})", 400,
         "response_format", "'schema'");
  expect("/v1/chat/completions",
         R"({"messages": [{"role": "user", "content": "a"}], "response_format": {"type": "json_schema",
             "json_schema": {"name": "x", "schema": {"type": "object", "properties": {"a": {"format": "date"}}}}}})",
         400, "response_format", "schema.properties.a.format is not supported");
  expect("/v1/chat/completions",
         R"({"messages": [{"role": "user", "content": "a"}], "response_format": {"type": "yaml"}})", 400,
         "response_format", "'yaml'");
  expect("/v1/completions", R"({"prompt": "a", "stream_options": {"include_usage": true}})", 400, "stream_options",
         "stream");
  expect("/v1/completions", "{\"prompt\": \"" + std::string(5000, 'a') + "\"}", 413, "", "larger than 4096");
  expect("/v1/nothing", "{}", 404, "", "no such endpoint");
  std::vector<int> ids(600, 1);
  expect("/v1/completions", json{{"prompt", ids}}.dump(), 400, "prompt", "context is 512");
}

TEST_F(ServerTest, FullQueueAnswers503WithRetryAfter) {
  start("", 1 << 20, /*parallel=*/1, /*max_queue=*/0);
  // A long sequence holds the only slot, or waits for it (the end token banned).
  SequenceSpec hold;
  hold.prompt = {1, 2, 3};
  hold.max_tokens = 480;
  hold.logit_bias = {{262, -100.0f}};
  auto job = server_->server().engine().submit({hold});
  ASSERT_TRUE(job);
  auto res = client_->Post("/v1/completions", R"({"prompt": "b", "max_tokens": 1})", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 503) << res->body;
  EXPECT_EQ(res->get_header_value("Retry-After"), "1");
  EXPECT_EQ(json::parse(res->body)["error"]["type"], "server_error");
  job->cancel();
}

// stop() before, or right as, listening starts: listen() returns (a SIGTERM
// during start-up must not be lost).
TEST(ServerStopTest, StopBeforeOrWhileListeningStarts) {
  ThreadPool pool(1);
  for (int delay_us : {-1, 0, 50, 500}) {
    Server server(serve_model().model, serve_model().text, test::test_server_options(), pool);
    server.bind();
    if (delay_us < 0) server.stop();
    std::thread t([&] { server.listen(); });
    if (delay_us >= 0) {
      std::this_thread::sleep_for(std::chrono::microseconds(delay_us));
      server.stop();
    }
    t.join();  // hangs if the stop was lost
  }
}

TEST_F(ServerTest, ApiKeyGuardsEverythingButHealth) {
  start("sekret");
  EXPECT_EQ(client_->Get("/health")->status, 200);
  EXPECT_EQ(client_->Get("/v1/models")->status, 401);
  auto [s, r] = post("/v1/completions", R"({"prompt": "a", "max_tokens": 1})");
  EXPECT_EQ(s, 401);
  EXPECT_EQ(r["error"]["code"], "invalid_api_key");
  auto [s2, r2] = post("/v1/completions", R"({"prompt": "a", "max_tokens": 1})", {{"Authorization", "Bearer sekret"}});
  EXPECT_EQ(s2, 200) << r2.dump();
}

TEST_F(ServerTest, MetricsCountRequestsAndTokens) {
  start();
  auto [s, r] = post("/v1/completions", R"({"prompt": "the", "max_tokens": 5, "temperature": 0})");
  ASSERT_EQ(s, 200);
  auto m = client_->Get("/metrics");
  ASSERT_TRUE(m);
  EXPECT_NE(m->body.find("tpp_requests_total 1\n"), std::string::npos) << m->body;
  EXPECT_NE(m->body.find(fmt::format("tpp_completion_tokens_total {}\n", r["usage"]["completion_tokens"].get<int>())),
            std::string::npos)
      << m->body;
  for (const char* name : {"tpp_prompt_tokens_total", "tpp_busy_slots", "tpp_queue_length", "tpp_kv_cache_usage_ratio",
                           "tpp_completion_tokens_per_second"})
    EXPECT_NE(m->body.find(name), std::string::npos) << name;
}

}  // namespace
}  // namespace tpp::serve
