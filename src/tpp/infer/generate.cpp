#include "tpp/infer/generate.h"

#include <algorithm>
#include <chrono>

#include "tpp/core/error.h"

namespace tpp {

std::vector<int32_t> generate(Transformer& model, KvCache& cache, std::span<const int32_t> prompt,
                              const GenerateOptions& options, ThreadPool& pool,
                              const std::function<bool(int32_t)>& on_token, GenerateStats* stats) {
  using clock = std::chrono::steady_clock;
  TPP_CHECK(!prompt.empty(), "generate: the prompt is empty (give at least one token)");
  TPP_CHECK(options.max_new_tokens >= 0, "generate: -n {} must be >= 0", options.max_new_tokens);
  const int64_t V = model.config().vocab_size;
  TPP_CHECK(cache.n_past() + int64_t(prompt.size()) + options.max_new_tokens <= cache.capacity(),
            "generate: prompt ({} tokens) + {} new tokens exceed the context of {} tokens",
            prompt.size(), options.max_new_tokens, cache.capacity() - cache.n_past());
  std::vector<float> logits(static_cast<size_t>(V));
  std::vector<int32_t> history(options.context.begin(), options.context.end());
  history.reserve(history.size() + prompt.size() + size_t(options.max_new_tokens));
  history.insert(history.end(), prompt.begin(), prompt.end());
  std::vector<int32_t> out;
  Sampler sampler(options.sampling);

  const auto t0 = clock::now();
  model.forward(cache, prompt, logits.data(), false, pool);
  const auto t1 = clock::now();
  for (int i = 0; i < options.max_new_tokens; ++i) {
    const int32_t token = sampler.sample(logits, history);
    if (std::find(options.stop_tokens.begin(), options.stop_tokens.end(), token) != options.stop_tokens.end())
      break;
    out.push_back(token);
    history.push_back(token);
    if (on_token && !on_token(token)) break;
    if (i + 1 == options.max_new_tokens) break;
    model.forward(cache, std::span<const int32_t>(&token, 1), logits.data(), false, pool);
  }
  const auto t2 = clock::now();
  if (stats) {
    stats->prompt_tokens = int64_t(prompt.size());
    stats->new_tokens = int64_t(out.size());
    stats->prefill_seconds = std::chrono::duration<double>(t1 - t0).count();
    stats->decode_seconds = std::chrono::duration<double>(t2 - t1).count();
  }
  return out;
}

}  // namespace tpp
