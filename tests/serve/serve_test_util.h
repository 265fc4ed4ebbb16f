// A small model directory for the server tests: random weights (tpp init),
// the test tokenizer and a chat template, loaded once per test binary.
#pragma once

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tpp/infer/generate.h"
#include "tpp/infer/model_text.h"
#include "tpp/model/model.h"
#include "tpp/serve/server.h"

namespace tpp::test {

struct ServeModel {
  std::string dir;
  Model model;
  ModelText text;
};

// Built on first use: d 64, 2 layers, vocab 263 (the test tokenizer's), context 512.
const ServeModel& serve_model();

// The tokens `generate` gives (stop token 262 excluded, as the server does).
std::vector<int32_t> generate_alone(const Model& model, const std::vector<int32_t>& prompt, int max_tokens,
                                    const SamplingParams& sampling, int max_chunk = 256);

// Options for a server of serve_model() named "test-model" on a free port.
serve::ServerOptions test_server_options(int parallel = 2, int64_t ctx = 512);

// A server of serve_model() in this process, listening on its own thread from
// construction until destruction (which lets the requests in flight finish).
class TestServer {
 public:
  explicit TestServer(serve::ServerOptions options = test_server_options());
  ~TestServer();
  TestServer(const TestServer&) = delete;
  TestServer& operator=(const TestServer&) = delete;

  serve::Server& server() { return *server_; }
  int port() const { return server_->port(); }

 private:
  ThreadPool pool_{2};
  std::unique_ptr<serve::Server> server_;
  std::thread thread_;
};

}  // namespace tpp::test
