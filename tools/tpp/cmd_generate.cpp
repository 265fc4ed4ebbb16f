#include <cstdio>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "checks.h"
#include "commands.h"
#include "tpp/core/error.h"
#include "text_out.h"
#include "tpp/infer/generate.h"
#include "tpp/infer/model_text.h"
#include "tpp/model/kv_cache.h"
#include "tpp/model/model.h"
#include "tpp/tokenizer/byte_tokenizer.h"

namespace tpp::cli {
namespace {

std::vector<int32_t> parse_ids(const std::string& s) {
  std::vector<int32_t> ids;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != item.size() || v < 0 || v > INT32_MAX)
      fail("--prompt-ids: \"{}\" is not a non-negative integer (expected e.g. 1,2,3)", item);
    ids.push_back(int32_t(v));
  }
  if (ids.empty()) fail("--prompt-ids: no ids given (expected e.g. 1,2,3)");
  return ids;
}

}  // namespace

Run add_generate(CLI::App& app) {
  struct Opts {
    std::string model, prompt, prompt_ids, system, kv_type;
    int n = 64, threads = 0, ctx = 0, chunk = 256;
    bool ids = false, stats = false, chat = false;
    SamplingParams sampling;
  };
  auto o = std::make_shared<Opts>();
  app.add_option("-m,--model", o->model, "model directory (tpp or Hugging Face) or GGUF file")->required();
  auto* p = app.add_option("-p,--prompt", o->prompt,
                           "prompt text (the model's tokenizer when it has one, else byte-level)");
  auto* pi = app.add_option("--prompt-ids", o->prompt_ids, "prompt as token ids: 1,2,3");
  p->excludes(pi);
  auto* chat = app.add_flag("--chat", o->chat, "wrap the prompt as a user turn in the model's chat template");
  chat->needs(p);
  app.add_option("--system", o->system, "system message for --chat")->needs(chat);
  app.add_option("-n", o->n, "new tokens to generate")->check(non_negative());
  add_sampling_options(app, o->sampling);
  app.add_flag("--ids", o->ids, "print generated token ids instead of text");
  app.add_flag("--stats", o->stats, "print prefill/decode speed to stderr");
  app.add_option("-t,--threads", o->threads, "threads; 0 = all cores")->check(non_negative());
  app.add_option("-c,--ctx", o->ctx, "context length; 0 = the prompt and -n tokens, at most max_seq_len")->check(non_negative());
  add_kv_type_option(app, o->kv_type);
  app.add_option("--chunk", o->chunk, "prompt tokens per prefill step (tpp serve --chunk gives the same tokens)")
      ->check(positive());
  return [o] {
    if (o->prompt.empty() && o->prompt_ids.empty()) fail("generate: give a prompt with -p TEXT or --prompt-ids 1,2,3");
    const Model model = load_model(o->model);
    const ModelConfig& c = model.config;
    const DType kv_type = check_kv_type(*parse_dtype(o->kv_type), c.head_dim_resolved(), "--kv-type");
    ByteTokenizer tokenizer;
    const ModelText text = load_model_text(o->model);
    const auto& bpe = text.tokenizer;
    std::vector<int32_t> prompt;
    if (!o->prompt_ids.empty()) {
      prompt = parse_ids(o->prompt_ids);
    } else if (o->chat) {
      std::vector<ChatMessage> messages;
      if (!o->system.empty()) messages.push_back({"system", o->system});
      messages.push_back({"user", o->prompt});
      prompt = text.chat_prompt(messages);
    } else {
      prompt = bpe ? bpe->encode(o->prompt) : tokenizer.encode(o->prompt, false);
    }
    for (int32_t id : prompt)
      if (id >= c.vocab_size) fail("prompt: token id {} is outside the model's vocabulary [0, {})", id, c.vocab_size);
    const int64_t ctx = o->ctx > 0 ? o->ctx : std::min<int64_t>(c.max_seq_len, int64_t(prompt.size()) + o->n);
    ThreadPool pool(o->threads);
    Transformer transformer(model, o->chunk);
    KvCache cache(c, ctx, kv_type);
    GenerateOptions options;
    options.max_new_tokens = o->n;
    options.sampling = o->sampling;
    if (bpe) {
      options.stop_tokens = text.stop_ids;
    } else if (!o->ids && c.vocab_size > ByteTokenizer::kEos) {
      options.stop_tokens.push_back(ByteTokenizer::kEos);
    }
    Utf8Printer out;
    bool first = true;
    GenerateStats stats;
    generate(transformer, cache, prompt, options, pool, [&](int32_t token) {
      if (o->ids) {
        fmt::print("{}{}", first ? "" : ",", token);
      } else {
        out.add(bpe ? bpe->decode_token(token) : tokenizer.decode_one(token));
      }
      first = false;
      std::fflush(stdout);
      return true;
    }, &stats);
    out.finish();
    std::fputc('\n', stdout);
    std::fflush(stdout);
    if (o->stats)
      fmt::print(stderr, "prefill {} tokens in {:.3f} s ({:.1f} tok/s); decode {} tokens in {:.3f} s ({:.1f} tok/s)\n",
                 stats.prompt_tokens, stats.prefill_seconds, stats.prompt_tokens / stats.prefill_seconds,
                 stats.new_tokens, stats.decode_seconds,
                 stats.new_tokens > 1 ? (stats.new_tokens - 1) / stats.decode_seconds : 0.0);
    return 0;
  };
}

}  // namespace tpp::cli
