// Malformed requests: thousands of mutated bodies against every POST endpoint.
// The server must answer each with a status it means (200 or a 4xx with an
// OpenAI error body; 503 when busy), never a 500, a dropped connection or a
// crash (the sanitizer pass runs this too), and stay healthy afterwards.
#include <httplib.h>

#include <thread>

#include <gtest/gtest.h>

#include "common/test_util.h"
#include "serve/serve_test_util.h"
#include "tpp/core/rng.h"
#include "tpp/serve/server.h"

namespace tpp::serve {
namespace {

using nlohmann::json;

class Mutator {
 public:
  explicit Mutator(uint64_t seed) : state_(seed) {}
  uint64_t next() { return state_ = splitmix64(state_); }
  size_t below(size_t n) { return n ? size_t(next() % n) : 0; }

  std::string mutate(std::string s) {
    const int edits = 1 + int(below(2));
    for (int e = 0; e < edits; ++e) {
      const size_t at = below(s.size() + 1);
      switch (below(7)) {
        case 0: s.erase(at, below(8) + 1); break;                              // delete a run
        case 1: s.insert(at, 1, char(below(256))); break;                      // a random byte
        case 2: s.insert(at, pieces_[below(std::size(pieces_))]); break;        // a JSON-ish piece
        case 3: s.resize(at); break;                                           // truncate
        case 4: if (at < s.size()) s[at] = char(below(256)); break;            // flip a byte
        case 5: s.insert(at, s.substr(below(s.size() + 1), below(16))); break;  // duplicate a run
        default: {                                                             // swap a value's type
          const size_t colon = s.find(':', at);
          if (colon != std::string::npos) s.insert(colon + 1, values_[below(std::size(values_))]);
        }
      }
    }
    return s;
  }

 private:
  uint64_t state_;
  static constexpr const char* pieces_[] = {"{", "}", "[", "]", ",", ":", "\"", "null", "\\u0000", "\\ud800",
                                           "1e999", "-1", "\"max_tokens\": 5", "\"n\": 16", "\"stream\": true",
                                           "[[[[[[[[[[", "\xff\xfe", "\"stop\": [\"\"]", "\"logprobs\": 20"};
  static constexpr const char* values_[] = {"null", "true", "[]", "{}", "\"\"", "-9223372036854775809", "1e308",
                                            "0.5", "[1, [2]]", "{\"type\": \"json_object\"}", "\"\\ud800\""};
};

TEST(ServerFuzzTest, MutatedBodiesNeverCrashOrFail500) {
  ServerOptions o = test::test_server_options(2, 64);
  o.max_body_bytes = 1 << 16;
  o.engine.max_queue = 8;
  test::TestServer server(o);
  httplib::Client client("127.0.0.1", server.port());
  client.set_read_timeout(60);

  const std::vector<std::pair<const char*, std::string>> seeds = {
      {"/v1/completions", R"({"model": "test-model", "prompt": "the cat", "max_tokens": 4, "temperature": 0.5,
         "top_p": 0.9, "stop": ["x"], "seed": 3, "logprobs": 2, "n": 2})"},
      {"/v1/completions", R"({"prompt": [1, 2, 3], "max_tokens": 3, "stream": true,
         "stream_options": {"include_usage": true}, "logit_bias": {"5": -100}})"},
      {"/v1/chat/completions", R"({"model": "test-model", "messages": [{"role": "system", "content": "s"},
         {"role": "user", "content": [{"type": "text", "text": "hi"}]}], "max_tokens": 4, "logprobs": true,
         "top_logprobs": 2, "presence_penalty": 0.5, "frequency_penalty": 0.1})"},
      {"/v1/chat/completions", R"({"messages": [{"role": "user", "content": "hi"}], "max_completion_tokens": 3,
         "stream": true, "response_format": {"type": "text"}})"},
      {"/tokenize", R"({"content": "the cat", "add_special": true})"},
      {"/detokenize", R"({"tokens": [1, 2, 3]})"},
  };
  Mutator mut(20261207);
  std::map<int, int> statuses;
  const int kBodies = 3000;
  for (int i = 0; i < kBodies; ++i) {
    const auto& [path, seed] = seeds[size_t(i) % seeds.size()];
    const std::string body = mut.mutate(seed);
    auto res = client.Post(path, body, "application/json");
    ASSERT_TRUE(res) << "no answer to body " << i << ": " << body;
    ++statuses[res->status];
    ASSERT_TRUE(res->status == 200 || res->status == 400 || res->status == 404 || res->status == 413 ||
                res->status == 503)
        << res->status << " for " << path << " " << body << "\n" << res->body;
    if (res->status != 200) {
      const json e = json::parse(res->body, nullptr, false);
      ASSERT_TRUE(e.is_object() && e.contains("error") && e["error"]["message"].is_string())
          << path << " " << body << "\n" << res->body;
    }
  }
  auto health = client.Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  std::string seen;
  for (const auto& [status, n] : statuses) seen += fmt::format(" {}: {}", status, n);
  std::printf("statuses over %d bodies:%s\n", kBodies, seen.c_str());
  // Not vacuous: the mutations reach both accepted and refused requests.
  EXPECT_GT(statuses[200], kBodies / 50);
  EXPECT_GT(statuses[400], kBodies / 4);
}

}  // namespace
}  // namespace tpp::serve
