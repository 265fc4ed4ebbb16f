#include "tpp/infer/sampler.h"

#include <algorithm>
#include <cmath>

#include "tpp/core/error.h"

namespace tpp {

Sampler::Sampler(const SamplingParams& p) : params_(p), rng_(p.seed) {
  TPP_CHECK(p.temperature >= 0 && std::isfinite(p.temperature), "sampling: temperature {} must be >= 0", p.temperature);
  TPP_CHECK(p.top_k >= 0, "sampling: top_k {} must be >= 0", p.top_k);
  TPP_CHECK(p.top_p > 0 && p.top_p <= 1, "sampling: top_p {} must be in (0, 1]", p.top_p);
  TPP_CHECK(p.min_p >= 0 && p.min_p < 1, "sampling: min_p {} must be in [0, 1)", p.min_p);
  TPP_CHECK(p.repeat_penalty > 0, "sampling: repeat_penalty {} must be > 0", p.repeat_penalty);
  TPP_CHECK(p.repeat_last_n >= 0, "sampling: repeat_last_n {} must be >= 0", p.repeat_last_n);
}

int32_t Sampler::sample(std::span<float> logits, std::span<const int32_t> recent) {
  const int32_t V = int32_t(logits.size());
  if (params_.repeat_penalty != 1.0f) {
    const size_t from = recent.size() > size_t(params_.repeat_last_n) ? recent.size() - size_t(params_.repeat_last_n) : 0;
    // Each distinct recent token is penalised once.
    for (size_t i = from; i < recent.size(); ++i) {
      const int32_t t = recent[i];
      if (t < 0 || t >= V) continue;
      bool seen = false;
      for (size_t j = from; j < i && !seen; ++j) seen = recent[j] == t;
      if (seen) continue;
      float& l = logits[size_t(t)];
      l = l > 0 ? l / params_.repeat_penalty : l * params_.repeat_penalty;
    }
  }
  if (params_.temperature == 0.0f)
    return int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());

  if ((params_.top_k == 0 || params_.top_k >= V) && params_.top_p >= 1.0f) {
    // Nothing cut by rank: draw in token order without sorting the whole
    // vocabulary (OpenAI's defaults ask for this at every token).
    float mx = -INFINITY;
    for (int32_t i = 0; i < V; ++i) mx = std::max(mx, logits[size_t(i)] / params_.temperature);
    // Weights e^(l - max): the most likely token weighs 1, so min-p keeps
    // the weights of at least min_p.
    probs_.resize(size_t(V));
    double total = 0;
    for (int32_t i = 0; i < V; ++i) {
      const float w = std::exp(logits[size_t(i)] / params_.temperature - mx);
      probs_[size_t(i)] = w < params_.min_p ? 0.0f : w;
      total += probs_[size_t(i)];
    }
    const double u = rng_.uniform() * total;
    double acc = 0;
    int32_t last = 0;
    for (int32_t i = 0; i < V; ++i) {
      if (probs_[size_t(i)] == 0) continue;
      acc += probs_[size_t(i)];
      last = i;
      if (u < acc) return i;
    }
    return last;
  }
  candidates_.resize(size_t(V));
  for (int32_t i = 0; i < V; ++i) candidates_[size_t(i)] = {logits[size_t(i)] / params_.temperature, i};
  auto by_logit = [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); };
  size_t n = size_t(V);
  if (params_.top_k > 0 && size_t(params_.top_k) < n) {
    std::partial_sort(candidates_.begin(), candidates_.begin() + params_.top_k, candidates_.end(), by_logit);
    n = size_t(params_.top_k);
  } else {
    std::sort(candidates_.begin(), candidates_.end(), by_logit);
  }
  // Softmax over the survivors (sorted, so the max is first).
  const float mx = candidates_[0].first;
  double sum = 0;
  for (size_t i = 0; i < n; ++i) sum += (candidates_[i].first = std::exp(candidates_[i].first - mx));
  for (size_t i = 0; i < n; ++i) candidates_[i].first = float(candidates_[i].first / sum);
  if (params_.min_p > 0) {
    const float threshold = params_.min_p * candidates_[0].first;
    size_t keep = 1;
    while (keep < n && candidates_[keep].first >= threshold) ++keep;
    n = keep;
  }
  if (params_.top_p < 1.0f) {
    double cum = 0;
    size_t keep = 0;
    while (keep < n) {
      cum += candidates_[keep++].first;
      if (cum >= params_.top_p) break;
    }
    n = keep;
  }
  double total = 0;
  for (size_t i = 0; i < n; ++i) total += candidates_[i].first;
  const double u = rng_.uniform() * total;
  double acc = 0;
  for (size_t i = 0; i < n; ++i) {
    acc += candidates_[i].first;
    if (u < acc) return candidates_[i].second;
  }
  return candidates_[n - 1].second;
}

}  // namespace tpp
