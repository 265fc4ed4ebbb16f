// tpp serve: an OpenAI-compatible HTTP server (tpp/serve/server.h) with
// continuous batching. SIGTERM or Ctrl-C stops accepting connections, lets
// the requests in flight finish, then exits.
#include <pthread.h>

#include <csignal>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include <fmt/format.h>

#include "checks.h"
#include "commands.h"
#include "tpp/core/error.h"
#include "tpp/infer/model_text.h"
#include "tpp/model/model.h"
#include "tpp/serve/server.h"

namespace tpp::cli {

Run add_serve(CLI::App& app) {
  struct Opts {
    std::string model, host = "127.0.0.1", api_key, alias, kv_type;
    int port = 8080, parallel = 4, threads = 0, queue = 64, chunk = 256;
    int64_t ctx = 0;
  };
  auto o = std::make_shared<Opts>();
  app.add_option("-m,--model", o->model, "model directory (tpp or Hugging Face) or GGUF file")->required();
  app.add_option("--host", o->host, "address to listen on (127.0.0.1: this machine only)");
  app.add_option("--port", o->port, "port; 0 = any free port (printed)")->check(CLI::Range(0, 65535));
  app.add_option("--parallel", o->parallel, "sequences generated at once (slots, batched in every step)")
      ->check(positive());
  app.add_option("-c,--ctx", o->ctx, "tokens per slot (prompt + reply); 0 = max_seq_len, at most 4096")
      ->check(non_negative());
  app.add_option("--queue", o->queue, "sequences that may wait for a slot before requests get 503")
      ->check(non_negative());
  app.add_option("--api-key", o->api_key, "require 'Authorization: Bearer KEY' (all endpoints but /health)");
  app.add_option("--alias", o->alias, "the model name clients use; default: the model path's file or directory name");
  app.add_option("-t,--threads", o->threads, "threads; 0 = all cores")->check(non_negative());
  add_kv_type_option(app, o->kv_type);
  app.add_option("--chunk", o->chunk,
                 "prompt tokens per prefill step, and the prefix cache's unit (tpp generate --chunk gives the same "
                 "tokens)")
      ->check(positive());
  return [o] {
    // SIGINT and SIGTERM go to one waiting thread, not to whichever thread
    // the kernel picks: block them before any thread starts.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);

    const Model model = load_model(o->model);
    const ModelText text = load_model_text(o->model);
    serve::ServerOptions so;
    so.host = o->host;
    so.port = o->port;
    so.api_key = o->api_key;
    std::filesystem::path p(o->model);
    if (!p.has_filename()) p = p.parent_path();
    so.model_id = o->alias.empty() ? p.filename().string() : o->alias;
    so.engine.parallel = o->parallel;
    so.engine.max_queue = o->queue;
    so.engine.max_chunk = o->chunk;
    so.engine.ctx = o->ctx > 0 ? o->ctx : std::min<int64_t>(model.config.max_seq_len, 4096);
    so.engine.kv_type = check_kv_type(*parse_dtype(o->kv_type), model.config.head_dim_resolved(), "--kv-type");
    if (so.engine.ctx > model.config.max_seq_len)
      fail("--ctx {} exceeds the model's max_seq_len {}", so.engine.ctx, model.config.max_seq_len);
    ThreadPool pool(o->threads);
    serve::Server server(model, text, so, pool);
    server.bind();
    fmt::print(stderr, "tpp serve: {} as '{}' on http://{}:{} ({} slots of {} tokens, {} KV cache{})\n", o->model,
               so.model_id, so.host, server.port(), so.engine.parallel, so.engine.ctx, o->kv_type,
               so.api_key.empty() ? "" : ", API key required");
    std::fflush(stderr);
    std::thread waiter([&] {
      int sig = 0;
      sigwait(&signals, &sig);
      fmt::print(stderr, "tpp serve: {}: finishing the requests in flight\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");
      server.stop();
    });
    server.listen();
    // listen() also returns when the socket fails: wake the waiter then.
    pthread_kill(waiter.native_handle(), SIGTERM);
    waiter.join();
    fmt::print(stderr, "tpp serve: stopped\n");
    return 0;
  };
}

}  // namespace tpp::cli
