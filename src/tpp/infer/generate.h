// The generation loop: one batched (chunked) prefill of the prompt, then one
// token per decode step over the KV cache.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "tpp/core/thread_pool.h"
#include "tpp/infer/sampler.h"
#include "tpp/model/kv_cache.h"
#include "tpp/model/transformer.h"

namespace tpp {

struct GenerateOptions {
  int max_new_tokens = 64;
  std::vector<int32_t> stop_tokens;
  SamplingParams sampling;
  // The tokens the cache already holds before `prompt` (a chat's earlier
  // turns): the repeat penalty's window sees them as if they were prompt.
  std::span<const int32_t> context;
};

struct GenerateStats {
  int64_t prompt_tokens = 0, new_tokens = 0;
  double prefill_seconds = 0, decode_seconds = 0;
};

// Returns the new tokens (a stop token ends generation and is not included).
// on_token, if set, is called for each new token; returning false stops.
std::vector<int32_t> generate(Transformer& model, KvCache& cache, std::span<const int32_t> prompt,
                              const GenerateOptions& options, ThreadPool& pool,
                              const std::function<bool(int32_t)>& on_token = {},
                              GenerateStats* stats = nullptr);

}  // namespace tpp
