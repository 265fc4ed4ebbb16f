// tpp chat: an interactive conversation in the terminal. Each turn renders the
// whole conversation with the model's chat template; the KV cache keeps what
// was already computed, so only the new tokens are prefilled when the
// rendering extends the previous one (and everything is recomputed when it
// does not, e.g. when a template rewrites earlier turns).
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "checks.h"
#include "commands.h"
#include "text_out.h"
#include "tpp/core/error.h"
#include "tpp/infer/generate.h"
#include "tpp/infer/model_text.h"
#include "tpp/model/kv_cache.h"
#include "tpp/model/model.h"

namespace tpp::cli {

Run add_chat(CLI::App& app) {
  struct Opts {
    std::string model, system, kv_type;
    int n = 512, threads = 0, ctx = 0;
    bool stats = false;
    SamplingParams sampling;
  };
  auto o = std::make_shared<Opts>();
  o->sampling.temperature = 0.7f;
  o->sampling.top_p = 0.9f;
  app.add_option("-m,--model", o->model, "model directory (Hugging Face) or GGUF file")->required();
  app.add_option("--system", o->system, "system message");
  app.add_option("-n", o->n, "most new tokens per reply")->check(positive());
  add_sampling_options(app, o->sampling);
  app.add_flag("--stats", o->stats, "print prefill/decode speed after each reply (stderr)");
  app.add_option("-t,--threads", o->threads, "threads; 0 = all cores")->check(non_negative());
  app.add_option("-c,--ctx", o->ctx, "context length; 0 = max_seq_len, at most 8192")
      ->check(non_negative());
  add_kv_type_option(app, o->kv_type);
  return [o] {
    const Model model = load_model(o->model);
    const ModelText text = load_model_text(o->model);
    if (!text.tokenizer || !text.chat_template)
      fail("chat: {} has no {}; use tpp generate", o->model, !text.tokenizer ? "tokenizer" : "chat template");
    const int64_t ctx = o->ctx > 0 ? o->ctx : std::min<int64_t>(model.config.max_seq_len, 8192);
    ThreadPool pool(o->threads);
    Transformer transformer(model);
    KvCache cache(model.config, ctx,
                  check_kv_type(*parse_dtype(o->kv_type), model.config.head_dim_resolved(), "--kv-type"));
    std::vector<int32_t> cached;  // the tokens the cache holds, in order
    std::vector<ChatMessage> messages;
    if (!o->system.empty()) messages.push_back({"system", o->system});
    const bool tty = isatty(STDIN_FILENO);
    if (tty) fmt::print(stderr, "tpp chat: {} (context {} tokens). An empty line or Ctrl-D ends.\n", o->model, ctx);
    std::string line;
    for (;;) {
      if (tty) fmt::print(stderr, "> ");
      if (!std::getline(std::cin, line) || line.empty()) break;
      messages.push_back({"user", line});
      const std::vector<int32_t> prompt = text.chat_prompt(messages);
      // Reuse the cache when the new prompt extends what it holds.
      size_t keep = cached.size();
      if (prompt.size() <= keep || !std::equal(cached.begin(), cached.end(), prompt.begin())) {
        cache.clear();
        cached.clear();
        keep = 0;
      }
      const std::span<const int32_t> fresh(prompt.data() + keep, prompt.size() - keep);
      const int64_t room = cache.capacity() - cache.n_past() - int64_t(fresh.size());
      if (room < 1)
        fail("chat: the conversation ({} tokens) no longer fits the context of {} tokens (raise -c)",
             prompt.size(), ctx);
      GenerateOptions options;
      options.max_new_tokens = int(std::min<int64_t>(o->n, room));
      options.sampling = o->sampling;
      options.sampling.seed += messages.size();  // a different draw each turn, still reproducible
      options.stop_tokens = text.stop_ids;
      options.context = std::span<const int32_t>(prompt.data(), keep);  // the repeat penalty sees the whole chat
      Utf8Printer out;
      GenerateStats stats;
      const auto reply = generate(transformer, cache, fresh, options, pool, [&](int32_t token) {
        out.add(text.tokenizer->decode_token(token));
        return true;
      }, &stats);
      out.finish();
      std::fputc('\n', stdout);
      std::fflush(stdout);
      cached.assign(prompt.begin(), prompt.end());
      cached.insert(cached.end(), reply.begin(), reply.end());
      cached.resize(size_t(cache.n_past()));  // the last token of a reply cut by -n was never fed
      messages.push_back({"assistant", text.tokenizer->decode(reply)});
      if (o->stats)
        fmt::print(stderr, "[prefill {} tokens {:.1f} tok/s, decode {} tokens {:.1f} tok/s]\n", stats.prompt_tokens,
                   stats.prompt_tokens / stats.prefill_seconds, stats.new_tokens,
                   stats.new_tokens > 1 ? (stats.new_tokens - 1) / stats.decode_seconds : 0.0);
    }
    return 0;
  };
}

}  // namespace tpp::cli
