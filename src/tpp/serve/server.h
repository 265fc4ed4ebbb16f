// `tpp serve`: OpenAI's HTTP API over the engine.
//
//   GET  /                     a chat page (tpp/serve/chat_page.h)
//   GET  /health               {"status": "ok"} (never needs the API key)
//   GET  /v1/models            the one model served
//   POST /v1/completions       prompt text, token ids, or a list of prompts
//   POST /v1/chat/completions  messages through the model's chat template
//   POST /tokenize             {"content", "add_special"} -> {"tokens"}
//   POST /detokenize           {"tokens"} -> {"content"}
//   GET  /metrics              Prometheus text
//
// Streaming answers are server-sent events; a client that goes away has its
// sequences dropped at the engine's next step. With an API key every endpoint
// but /health and the page wants "Authorization: Bearer KEY".
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "tpp/core/thread_pool.h"
#include "tpp/infer/model_text.h"
#include "tpp/model/model.h"
#include "tpp/serve/engine.h"
#include "tpp/serve/openai.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}

namespace tpp::serve {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;  // 0 = any free port (see Server::port)
  std::string api_key;
  std::string model_id;            // the name /v1/models reports and requests must use
  size_t max_body_bytes = 8 << 20;
  int http_threads = 0;            // 0 = enough for every slot and queued request
  EngineOptions engine;
};

class Server {
 public:
  Server(const Model& model, const ModelText& text, ServerOptions options, ThreadPool& pool);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds the socket (throws tpp::Error when it cannot); port() is then known.
  void bind();
  int port() const { return port_; }
  // Serves until stop(); returns after the requests in flight have finished.
  void listen();
  // Lets the requests in flight finish (refusing new ones), then stops
  // listening; from any thread, before, during or after listen().
  void stop();

  Engine& engine() { return *engine_; }

 private:
  void routes();
  void generate(const httplib::Request& req, httplib::Response& res, bool chat);

  const Model& model_;
  const ModelText& text_;
  ServerOptions options_;
  TextCodec codec_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<httplib::Server> http_;
  int port_ = 0;
  std::atomic<int64_t> next_id_{0};
  std::atomic<int64_t> http_requests_{0}, http_errors_{0};
  std::atomic<bool> draining_{false};
  std::atomic<bool> stop_requested_{false}, listening_{false};
  std::atomic<int> in_flight_{0};  // generation requests not yet answered
};

}  // namespace tpp::serve
