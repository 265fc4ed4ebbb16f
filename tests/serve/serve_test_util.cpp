#include "serve/serve_test_util.h"

#include <cstdio>
#include <fstream>

#include "common/test_util.h"
#include "tpp/model/kv_cache.h"
#include "tpp/model/transformer.h"

namespace tpp::test {

namespace {

int run(const std::string& cmd) { return std::system((cmd + " > /dev/null 2>&1").c_str()); }

}  // namespace

const ServeModel& serve_model() {
  static const std::unique_ptr<ServeModel> m = [] {
    const std::string dir = temp_dir("serve_model");
    std::ofstream(dir + "/cfg.json") << R"({"d_model": 64, "n_layers": 2, "n_heads": 4, "n_kv_heads": 2, "d_ff": 192,
      "vocab_size": 263, "max_seq_len": 512, "rope_theta": 10000.0, "tie_embeddings": true})";
    if (run(tpp_binary() + " init --config " + dir + "/cfg.json --out " + dir + "/m --seed 11") != 0)
      throw Error("tpp init failed for the server tests' model");
    write_test_tokenizer(dir + "/m");
    // A plain-text chat template (the test tokenizer has no role tokens).
    std::ofstream(dir + "/m/tokenizer_config.json") << R"({"eos_token": "<|endoftext|>", "chat_template":
      "{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}[assistant] {% endif %}"})";
    auto out = std::make_unique<ServeModel>();
    out->dir = dir + "/m";
    out->model = load_model(out->dir);
    out->text = load_model_text(out->dir);
    return out;
  }();
  return *m;
}

std::vector<int32_t> generate_alone(const Model& model, const std::vector<int32_t>& prompt, int max_tokens,
                                    const SamplingParams& sampling, int max_chunk) {
  ThreadPool pool(2);
  Transformer t(model, max_chunk);
  KvCache cache(model.config, int64_t(prompt.size()) + max_tokens, DType::f16);
  GenerateOptions o;
  o.max_new_tokens = max_tokens;
  o.sampling = sampling;
  o.stop_tokens = {262};
  return generate(t, cache, prompt, o, pool);
}

serve::ServerOptions test_server_options(int parallel, int64_t ctx) {
  serve::ServerOptions o;
  o.port = 0;
  o.model_id = "test-model";
  o.engine.parallel = parallel;
  o.engine.ctx = ctx;
  return o;
}

TestServer::TestServer(serve::ServerOptions options) {
  const ServeModel& m = serve_model();
  server_ = std::make_unique<serve::Server>(m.model, m.text, std::move(options), pool_);
  server_->bind();
  thread_ = std::thread([this] { server_->listen(); });
}

TestServer::~TestServer() {
  server_->stop();
  thread_.join();
}

}  // namespace tpp::test
