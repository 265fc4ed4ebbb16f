// Token sampling: repetition penalty, temperature (0 = greedy), top-k, top-p
// (nucleus), min-p, then a draw from a seeded counter-based RNG. Buffers are
// reused across calls: sampling allocates nothing per token.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "tpp/core/rng.h"

namespace tpp {

struct SamplingParams {
  float temperature = 0.8f;    // 0 = greedy (argmax)
  int top_k = 40;              // 0 = off
  float top_p = 0.95f;         // 1 = off
  float min_p = 0.05f;         // 0 = off; keep tokens with p >= min_p * p_max
  float repeat_penalty = 1.0f; // 1 = off; llama.cpp's rule: logit > 0 ? /r : *r
  int repeat_last_n = 64;      // window of recent tokens the penalty looks at
  uint64_t seed = 0;
};

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params);
  // logits: [V], modified in place by the penalty. recent: tokens so far.
  int32_t sample(std::span<float> logits, std::span<const int32_t> recent);
  const SamplingParams& params() const { return params_; }

 private:
  SamplingParams params_;
  Rng rng_;
  std::vector<std::pair<float, int32_t>> candidates_;
  std::vector<float> probs_;
};

}  // namespace tpp
