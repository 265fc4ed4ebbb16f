// Perplexity of a model on a token stream, and how far a second model (a
// quantised copy, a smaller KV type) strays from a base model on it: the
// figures llama.cpp's perplexity tool reports, computed the same way.
//
// The tokens are cut into chunks of `ctx`; each chunk is a fresh sequence
// (its first token replaced by BOS when the tokenizer adds one) and only its
// second half is scored: the logits at positions ctx/2 .. ctx-2 predict the
// tokens after them, so every scored token sees at least ctx/2 of context.
//
// Per scored token t with the model's log-probabilities log q and the base's
// log p (both log-softmax of the logits, in double):
//   nll_t = -log q(next token)
//   kld_t = sum_v p(v) (log p(v) - log q(v))     KL(base || model)
//   same_t = argmax p == argmax q
//   dp_t  = q(next token) - p(next token)
// Perplexity is exp(mean nll) with the delta-method uncertainty exp(m) * se(m);
// Δppl's uncertainty uses the paired per-token values, so the
// correlation between the two models' losses narrows it as it should.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "tpp/core/thread_pool.h"
#include "tpp/model/model.h"

namespace tpp {

struct PerplexityOptions {
  int64_t ctx = 512;
  int64_t max_chunks = 0;  // 0 = every whole chunk
  int32_t bos = -1;        // the first token of each chunk becomes this; -1 = keep the text's
  DType kv_type = DType::f32;  // the model's KV cache (tpp/model/kv_cache.h); the base's is f32
};

struct Estimate {
  double value = 0, err = 0;  // err: one standard error
};

struct PerplexityReport {
  int64_t chunks = 0, tokens = 0;  // tokens scored
  Estimate nll, ppl;
  // With a base model:
  bool has_base = false;
  Estimate base_nll, base_ppl;
  Estimate ln_ratio;   // mean of nll - base nll = ln(PPL / PPL_base)
  Estimate dppl;       // PPL - PPL_base
  Estimate kld;        // mean KL(base || model), nats
  double kld_median = 0, kld_p99 = 0, kld_max = 0;
  Estimate same_top;   // share of tokens whose top choice agrees, 0..1
  double rms_dp = 0;   // root mean square of dp_t
};

// Called after each chunk with (chunks done, chunks in all, the report so far).
using PerplexityProgress = std::function<void(int64_t, int64_t, const PerplexityReport&)>;

// `base` may be null. Needs at least one whole chunk of tokens; both models
// must share the vocabulary size. Throws tpp::Error on bad options.
PerplexityReport perplexity(const Model& model, const Model* base, std::span<const int32_t> tokens,
                            const PerplexityOptions& opts, ThreadPool& pool,
                            const PerplexityProgress& progress = nullptr);

}  // namespace tpp
