#include "tpp/serve/server.h"

#include <csignal>
#include <ctime>
#include <random>
#include <thread>

#include <fmt/format.h>
#include <httplib.h>

#include "tpp/core/error.h"
#include "tpp/serve/chat_page.h"

namespace tpp::serve {

using nlohmann::json;

namespace {

void send_json(httplib::Response& res, int status, const json& j) {
  res.status = status;
  res.set_content(dump(j), "application/json");
}

void send_error(httplib::Response& res, const ApiError& e) {
  if (e.status == 503) res.set_header("Retry-After", "1");
  send_json(res, e.status, e.body());
}

json parse_body(const httplib::Request& req) {
  try {
    return json::parse(req.body);
  } catch (const json::exception& e) {  // syntax errors, and numbers beyond a double
    throw ApiError{400, fmt::format("the request body is not valid JSON: {}", e.what())};
  }
}

std::string sse(const json& j) { return "data: " + dump(j) + "\n\n"; }

// Counts a request in flight for as long as it lives.
class InFlight {
 public:
  explicit InFlight(std::atomic<int>& n) : n_(n) { ++n_; }
  ~InFlight() { --n_; }
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;

 private:
  std::atomic<int>& n_;
};

}  // namespace

Server::Server(const Model& model, const ModelText& text, ServerOptions options, ThreadPool& pool)
    : model_(model), text_(text), options_(std::move(options)), codec_(text) {
  // A client that closes its socket mid-stream must not end the process.
  std::signal(SIGPIPE, SIG_IGN);
  engine_ = std::make_unique<Engine>(
      model, [this](int32_t id) { return codec_.token_bytes(id); }, codec_.stop_ids(int32_t(model.config.vocab_size)),
      options_.engine, pool);
  http_ = std::make_unique<httplib::Server>();
  const int threads = options_.http_threads > 0 ? options_.http_threads
                                                : options_.engine.parallel + options_.engine.max_queue + 8;
  http_->new_task_queue = [threads] { return new httplib::ThreadPool(size_t(threads)); };
  http_->set_payload_max_length(options_.max_body_bytes);
  http_->set_read_timeout(30);
  http_->set_write_timeout(30);
  routes();
}

Server::~Server() {
  stop();
  engine_->shutdown();
}

void Server::bind() {
  if (options_.port == 0) {
    port_ = http_->bind_to_any_port(options_.host);
    if (port_ <= 0) fail("serve: cannot bind a port on {}", options_.host);
  } else {
    if (!http_->bind_to_port(options_.host, options_.port))
      fail("serve: cannot listen on {}:{} (in use, or not an address of this machine)", options_.host, options_.port);
    port_ = options_.port;
  }
}

void Server::listen() {
  if (port_ == 0) bind();
  // stop() may come before, during or after the start of listening: each
  // side announces itself before looking at the other, so one of them sees
  // the other (a stop before listen() skips it; one after waits for it).
  listening_.store(true);
  if (!stop_requested_.load()) http_->listen_after_bind();
  listening_.store(false);
}

void Server::stop() {
  stop_requested_.store(true);
  // Requests in flight finish first (new ones are refused meanwhile), at
  // most a minute.
  draining_.store(true);
  for (int i = 0; i < 600 && in_flight_.load() > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  bool stopped = false;
  while (listening_.load()) {
    if (!stopped && http_->is_running()) {
      http_->stop();
      stopped = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

void Server::routes() {
  httplib::Server& s = *http_;
  s.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    ++http_requests_;
    // The page holds no data (it asks for the key): only the API is guarded.
    if (options_.api_key.empty() || req.path == "/health" || req.path == "/")
      return httplib::Server::HandlerResponse::Unhandled;
    if (req.get_header_value("Authorization") == "Bearer " + options_.api_key)
      return httplib::Server::HandlerResponse::Unhandled;
    send_error(res, {401, "invalid or missing API key (send 'Authorization: Bearer KEY')", "", "invalid_request_error",
                     "invalid_api_key"});
    return httplib::Server::HandlerResponse::Handled;
  });
  s.set_error_handler(httplib::Server::HandlerWithResponse([this](const httplib::Request&, httplib::Response& res) {
    ++http_errors_;
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    ApiError e{res.status, fmt::format("HTTP {}", res.status)};
    if (res.status == 404) e.message = "no such endpoint";
    if (res.status == 413)
      e.message = fmt::format("the request body is larger than {} bytes", options_.max_body_bytes);
    send_error(res, e);
    return httplib::Server::HandlerResponse::Handled;
  }));
  s.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    ApiError e{500, "internal error", "", "server_error"};
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& ex) {
      e.message = ex.what();
    } catch (...) {
    }
    send_error(res, e);
  });

  s.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(kChatPage, "text/html; charset=utf-8");
  });
  s.Get("/health", [](const httplib::Request&, httplib::Response& res) { send_json(res, 200, {{"status", "ok"}}); });
  s.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    send_json(res, 200,
              {{"object", "list"},
               {"data", json::array({{{"id", options_.model_id},
                                      {"object", "model"},
                                      {"created", 0},
                                      {"owned_by", "tpp"},
                                      {"context_length", options_.engine.ctx}}})}});
  });
  s.Post("/tokenize", [this](const httplib::Request& req, httplib::Response& res) {
    try {
      const json body = parse_body(req);
      if (!body.is_object() || !body.contains("content") || !body["content"].is_string())
        throw ApiError{400, "'content' must be a string", "content"};
      const bool add_special = body.value("add_special", false);
      send_json(res, 200, {{"tokens", codec_.encode(body["content"].get<std::string>(), add_special)}});
    } catch (const ApiError& e) {
      send_error(res, e);
    }
  });
  s.Post("/detokenize", [this](const httplib::Request& req, httplib::Response& res) {
    try {
      const json body = parse_body(req);
      if (!body.is_object() || !body.contains("tokens") || !body["tokens"].is_array())
        throw ApiError{400, "'tokens' must be an array of token ids", "tokens"};
      std::vector<int32_t> ids;
      for (const auto& t : body["tokens"]) {
        if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() >= model_.config.vocab_size)
          throw ApiError{400, fmt::format("'tokens' must hold ids in [0, {})", model_.config.vocab_size), "tokens"};
        ids.push_back(int32_t(t.get<int64_t>()));
      }
      send_json(res, 200, {{"content", codec_.decode(ids)}});
    } catch (const ApiError& e) {
      send_error(res, e);
    }
  });
  s.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    const EngineStats st = engine_->stats();
    std::string m;
    auto metric = [&](const char* name, const char* type, const char* help, double v) {
      m += fmt::format("# HELP tpp_{} {}\n# TYPE tpp_{} {}\ntpp_{} {}\n", name, help, name, type, name, v);
    };
    metric("http_requests_total", "counter", "HTTP requests received.", double(http_requests_.load()));
    metric("http_errors_total", "counter", "HTTP responses with a 4xx or 5xx status.", double(http_errors_.load()));
    metric("requests_total", "counter", "Generation requests accepted.", double(st.requests));
    metric("prompt_tokens_total", "counter", "Prompt tokens of finished sequences.", double(st.prompt_tokens));
    metric("prompt_tokens_cached_total", "counter", "Of those, tokens reused from the prefix cache.",
           double(st.cached_tokens));
    metric("completion_tokens_total", "counter", "Generated tokens.", double(st.completion_tokens));
    metric("prompt_tokens_per_second", "gauge", "Prefill speed so far (prompt tokens over prefill time).",
           st.prefill_seconds > 0 ? double(st.prompt_tokens - st.cached_tokens) / st.prefill_seconds : 0.0);
    metric("completion_tokens_per_second", "gauge", "Decode speed so far (generated tokens over decode time).",
           st.decode_seconds > 0 ? double(st.completion_tokens) / st.decode_seconds : 0.0);
    metric("busy_slots", "gauge", "Sequences being generated.", double(st.busy_slots));
    metric("slots", "gauge", "Sequences that can be generated at once (--parallel).", double(options_.engine.parallel));
    metric("queue_length", "gauge", "Sequences waiting for a slot.", double(st.queued));
    metric("kv_cache_tokens", "gauge", "Positions the busy slots' KV caches hold.", double(st.kv_tokens));
    metric("kv_cache_usage_ratio", "gauge", "Those positions over all slots' capacity.",
           st.kv_capacity > 0 ? double(st.kv_tokens) / double(st.kv_capacity) : 0.0);
    res.set_content(m, "text/plain; version=0.0.4");
  });
  for (bool chat : {false, true})
    s.Post(chat ? "/v1/chat/completions" : "/v1/completions",
           [this, chat](const httplib::Request& req, httplib::Response& res) { generate(req, res, chat); });
}

void Server::generate(const httplib::Request& req, httplib::Response& res, bool chat) {
  auto in_flight = std::make_shared<InFlight>(in_flight_);
  std::shared_ptr<Job> job;
  auto r = std::make_shared<ApiRequest>();
  try {
    if (draining_.load()) throw ApiError{503, "the server is shutting down", "", "server_error"};
    thread_local std::mt19937_64 seeds(std::random_device{}());
    *r = parse_request(parse_body(req), chat, options_.model_id, codec_, options_.engine.ctx, seeds());
    try {
      job = engine_->submit(r->sequences);
    } catch (const Error& e) {
      throw ApiError{400, e.what()};
    }
    if (!job) throw ApiError{503, "every slot is busy and the queue is full; retry later", "", "server_error"};
  } catch (const ApiError& e) {
    send_error(res, e);
    return;
  }
  const std::string id = fmt::format("{}-{:x}{:06x}", chat ? "chatcmpl" : "cmpl", std::time(nullptr), ++next_id_);
  const int64_t created = std::time(nullptr);
  if (!r->stream) {
    std::vector<ChoiceResult> results(r->sequences.size());
    std::vector<Event> events;
    while (job->wait(events, 1000))
      for (auto& e : events) {
        if (!e.error.empty()) {
          send_error(res, {500, e.error, "", "server_error"});
          job->cancel();
          return;
        }
        ChoiceResult& c = results[size_t(e.index)];
        c.text += e.text;
        c.logprobs.insert(c.logprobs.end(), e.logprobs.begin(), e.logprobs.end());
        if (!e.finish_reason.empty()) {
          c.finish_reason = e.finish_reason;
          c.prompt_tokens = e.prompt_tokens;
          c.completion_tokens = e.completion_tokens;
          c.cached_tokens = e.cached_tokens;
        }
      }
    send_json(res, 200, response_json(*r, results, id, created, options_.model_id, codec_));
    return;
  }
  struct Stream {
    bool started = false;
    std::vector<size_t> offsets;
    std::vector<ChoiceResult> results;
  };
  auto st = std::make_shared<Stream>();
  st->offsets.assign(r->sequences.size(), 0);
  st->results.resize(r->sequences.size());
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream",
      [this, job, r, st, id, created, in_flight](size_t, httplib::DataSink& sink) {
        auto write = [&](const std::string& s) { return sink.write(s.data(), s.size()); };
        if (!st->started) {
          st->started = true;
          if (r->chat)
            for (int i = 0; i < int(r->sequences.size()); ++i) {
              json j = role_chunk_json(i, id, created, options_.model_id);
              if (r->include_usage) j["usage"] = nullptr;
              if (!write(sse(j))) return false;
            }
        }
        std::vector<Event> events;
        const bool more = job->wait(events, 100);
        for (auto& e : events) {
          if (!e.error.empty()) {
            write(sse(ApiError{500, e.error, "", "server_error"}.body()));
            job->cancel();
            sink.done();
            return true;
          }
          ChoiceResult& c = st->results[size_t(e.index)];
          if (!e.finish_reason.empty()) {
            c.prompt_tokens = e.prompt_tokens;
            c.completion_tokens = e.completion_tokens;
            c.cached_tokens = e.cached_tokens;
          }
          if (!write(sse(chunk_json(*r, e, st->offsets[size_t(e.index)], id, created, options_.model_id, codec_))))
            return false;
          st->offsets[size_t(e.index)] += e.text.size();
        }
        if (!more) {
          if (r->include_usage) {
            const json u = {{"id", id},
                            {"object", r->chat ? "chat.completion.chunk" : "text_completion"},
                            {"created", created},
                            {"model", options_.model_id},
                            {"choices", json::array()},
                            {"usage", usage_json(*r, st->results)}};
            if (!write(sse(u))) return false;
          }
          if (!write("data: [DONE]\n\n")) return false;
          sink.done();
        }
        return true;
      },
      [job](bool success) {
        if (!success) job->cancel();
      });
}

}  // namespace tpp::serve
