#include <cstdio>
#include <filesystem>
#include <optional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "commands.h"
#include "tpp/core/error.h"
#include "tpp/infer/generate.h"
#include "tpp/model/model.h"
#include "tpp/tokenizer/bpe_tokenizer.h"
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

// Takes the printable UTF-8 prefix of `pending`: complete characters are
// kept, a character still missing bytes at the end waits for the next token
// (unless final), and invalid bytes become U+FFFD, as Hugging Face's lossy
// decoding does.
std::string take_utf8(std::string& pending, bool final) {
  std::string out;
  size_t i = 0;
  while (i < pending.size()) {
    const unsigned char c = static_cast<unsigned char>(pending[i]);
    const size_t n = c < 0x80 ? 1 : (c >= 0xc2 && c < 0xe0) ? 2 : (c >= 0xe0 && c < 0xf0) ? 3 : (c >= 0xf0 && c < 0xf5) ? 4 : 0;
    size_t have = 1;
    while (n > 1 && have < n && i + have < pending.size() &&
           (static_cast<unsigned char>(pending[i + have]) & 0xc0) == 0x80)
      ++have;
    if (n != 0 && have == n) {
      out.append(pending, i, n);
      i += n;
    } else if (n > 1 && i + have == pending.size() && !final) {
      break;  // the rest of this character comes with the next token
    } else {
      out += "\xEF\xBF\xBD";
      i += n > 1 ? have : 1;
    }
  }
  pending.erase(0, i);
  return out;
}

}  // namespace

Run add_generate(CLI::App& app) {
  struct Opts {
    std::string model, prompt, prompt_ids;
    int n = 64, threads = 0, ctx = 0;
    bool ids = false, stats = false;
    SamplingParams sampling;
  };
  auto o = std::make_shared<Opts>();
  app.add_option("-m,--model", o->model, "model directory (tpp or Hugging Face Llama)")->required();
  auto* p = app.add_option("-p,--prompt", o->prompt,
                           "prompt text (the model's tokenizer.json when it has one, else byte-level)");
  auto* pi = app.add_option("--prompt-ids", o->prompt_ids, "prompt as token ids: 1,2,3");
  p->excludes(pi);
  app.add_option("-n", o->n, "new tokens to generate")->check(CLI::NonNegativeNumber);
  app.add_option("--temp", o->sampling.temperature, "temperature; 0 = greedy")->check(CLI::NonNegativeNumber);
  app.add_option("--top-k", o->sampling.top_k, "top-k; 0 = off")->check(CLI::NonNegativeNumber);
  app.add_option("--top-p", o->sampling.top_p, "top-p (nucleus); 1 = off")->check(CLI::Range(0.0, 1.0));
  app.add_option("--min-p", o->sampling.min_p, "min-p; 0 = off")->check(CLI::Range(0.0, 1.0));
  app.add_option("--repeat-penalty", o->sampling.repeat_penalty, "repetition penalty; 1 = off");
  app.add_option("--repeat-last-n", o->sampling.repeat_last_n, "tokens the penalty looks back over");
  app.add_option("--seed", o->sampling.seed, "sampling seed");
  app.add_flag("--ids", o->ids, "print generated token ids instead of text");
  app.add_flag("--stats", o->stats, "print prefill/decode speed to stderr");
  app.add_option("-t,--threads", o->threads, "threads (default: all cores)")->check(CLI::NonNegativeNumber);
  app.add_option("-c,--ctx", o->ctx, "context length (default: max_seq_len)")->check(CLI::NonNegativeNumber);
  return [o] {
    if (o->prompt.empty() && o->prompt_ids.empty()) fail("generate: give a prompt with -p TEXT or --prompt-ids 1,2,3");
    const Model model = load_model(o->model);
    const ModelConfig& c = model.config;
    ByteTokenizer tokenizer;
    std::optional<BpeTokenizer> bpe;
    if (std::filesystem::exists(std::filesystem::path(o->model) / "tokenizer.json")) bpe = BpeTokenizer::load(o->model);
    std::vector<int32_t> prompt = !o->prompt_ids.empty() ? parse_ids(o->prompt_ids)
                                  : bpe                  ? bpe->encode(o->prompt)
                                                         : tokenizer.encode(o->prompt, false);
    for (int32_t id : prompt)
      if (id >= c.vocab_size) fail("prompt: token id {} is outside the model's vocabulary [0, {})", id, c.vocab_size);
    const int64_t ctx = o->ctx > 0 ? o->ctx : std::min<int64_t>(c.max_seq_len, int64_t(prompt.size()) + o->n);
    ThreadPool pool(o->threads);
    Transformer transformer(model);
    KvCache cache(c, ctx);
    GenerateOptions options;
    options.max_new_tokens = o->n;
    options.sampling = o->sampling;
    if (bpe) {
      if (bpe->eos_id() >= 0) options.stop_tokens.push_back(bpe->eos_id());
    } else if (!o->ids && c.vocab_size > ByteTokenizer::kEos) {
      options.stop_tokens.push_back(ByteTokenizer::kEos);
    }
    std::string pending;  // decoded bytes not yet printed (an incomplete UTF-8 character)
    bool first = true;
    GenerateStats stats;
    generate(transformer, cache, prompt, options, pool, [&](int32_t token) {
      if (o->ids) {
        fmt::print("{}{}", first ? "" : ",", token);
      } else {
        pending += bpe ? bpe->decode({token}) : tokenizer.decode_one(token);
        const std::string text = take_utf8(pending, false);
        std::fwrite(text.data(), 1, text.size(), stdout);
      }
      first = false;
      std::fflush(stdout);
      return true;
    }, &stats);
    const std::string rest = take_utf8(pending, true);
    std::fwrite(rest.data(), 1, rest.size(), stdout);
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
