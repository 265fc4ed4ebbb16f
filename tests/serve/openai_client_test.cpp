// OpenAI's official Node client (npm package openai, installed by
// scripts/get_node_test_deps.sh) drives an in-process server: chat and
// completions, streaming, n = 2, stop strings, logprobs, json_schema and errors, each
// result checked against `generate` on the same prompt and seed.
#include <httplib.h>

#include <cstdio>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "common/test_util.h"
#include "serve/serve_test_util.h"
#include "tpp/serve/server.h"

namespace tpp::serve {
namespace {

using nlohmann::json;
using test::serve_model;

std::string shown(const std::string& s) { return json::parse(dump(json(s))).get<std::string>(); }

TEST(OpenAIClientTest, OfficialNodeClientGetsWhatGenerateGives) {
  const std::string modules = test::source_path("data/node/node_modules");
  if (!std::ifstream(modules + "/openai/package.json"))
    GTEST_SKIP() << "the openai npm package is not installed (scripts/get_node_test_deps.sh)";
  if (std::system("node --version > /dev/null 2>&1") != 0) GTEST_SKIP() << "node is not installed";
  const auto& m = serve_model();
  const TextCodec codec(m.text);
  SamplingParams greedy;
  greedy.temperature = 0;
  const auto chat_prompt = m.text.chat_prompt(std::vector<ChatMessage>{{"system", "be brief"}, {"user", "hi"}});
  const auto prompt = codec.encode("the cat", true);
  json expected = {{"model", "test-model"}, {"api_key", "k3y"}};
  expected["chat_greedy"] = shown(codec.decode(test::generate_alone(m.model, chat_prompt, 24, greedy)));
  expected["chat_prompt_tokens"] = chat_prompt.size();
  for (uint64_t i = 0; i < 2; ++i) {
    SamplingParams p;
    p.temperature = 1;
    p.top_k = 0;
    p.top_p = 1;
    p.min_p = 0;
    p.seed = 42 + i;
    expected["completion_seeded"].push_back(shown(codec.decode(test::generate_alone(m.model, prompt, 15, p))));
  }
  const std::string reply = codec.decode(test::generate_alone(m.model, prompt, 40, greedy));
  ASSERT_GE(reply.size(), 12u);
  expected["stop"] = reply.substr(6, 3);
  expected["stopped_text"] = shown(reply.substr(0, reply.find(reply.substr(6, 3))));
  const std::string dir = test::temp_dir("openai_client");
  std::ofstream(dir + "/expected.json") << dump(expected);

  ServerOptions o = test::test_server_options(3);
  o.api_key = "k3y";
  test::TestServer server(o);
  const std::string cmd = fmt::format("node {} http://127.0.0.1:{}/v1 {} {}/expected.json 2>&1",
                                      test::source_path("tests/serve/openai_client.mjs"), server.port(), modules, dir);
  std::string out;
  const int code = test::run_command(cmd, &out);
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("8 checks passed"), std::string::npos) << out;
}

}  // namespace
}  // namespace tpp::serve
