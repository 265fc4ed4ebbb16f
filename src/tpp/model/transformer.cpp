#include "tpp/model/transformer.h"

#include <algorithm>
#include <cstring>

#include "tpp/core/error.h"

namespace tpp {

Transformer::Transformer(const Model& model, int max_chunk)
    : model_(model), max_chunk_(max_chunk), block_(model.config) {
  TPP_CHECK(max_chunk > 0, "transformer: max_chunk {} must be positive", max_chunk);
}

void Transformer::forward(KvCache& cache, std::span<const int32_t> tokens, float* logits, bool all_logits,
                          ThreadPool& pool) {
  const int64_t n = int64_t(tokens.size()), V = model_.config.vocab_size;
  TPP_CHECK(n > 0, "forward: no tokens");
  for (int64_t done = 0; done < n; done += max_chunk_) {
    const int64_t m = std::min<int64_t>(max_chunk_, n - done);
    const bool last = done + m == n;
    const Request r{&cache, tokens.subspan(size_t(done), size_t(m)),
                    all_logits ? logits + done * V : (last ? logits : nullptr), all_logits};
    forward_batch(std::span(&r, 1), pool);
  }
}

void Transformer::forward_batch(std::span<const Request> requests, ThreadPool& pool) {
  const ModelConfig& c = model_.config;
  const int64_t d = c.d_model, V = c.vocab_size;
  seqs_.clear();
  tokens_.clear();
  int64_t N = 0;
  for (const auto& r : requests) {
    TPP_CHECK(r.cache != nullptr, "forward: a request without a KV cache");
    const int64_t n = int64_t(r.tokens.size());
    TPP_CHECK(n > 0, "forward: no tokens");
    TPP_CHECK(r.cache->n_past() + n <= r.cache->capacity(),
              "forward: {} cached + {} new tokens exceed the KV cache capacity {}", r.cache->n_past(), n,
              r.cache->capacity());
    for (const auto& s : seqs_)
      TPP_CHECK(s.cache != r.cache, "forward: two requests of one batch share a KV cache");
    seqs_.push_back({N, n, r.cache->n_past(), r.cache});
    tokens_.insert(tokens_.end(), r.tokens.begin(), r.tokens.end());
    N += n;
  }
  block_.plan(plan_, seqs_);
  if (x_.size() < size_t(N * d)) x_.resize(size_t(N * d));
  block_.embed(x_.data(), tokens_.data(), plan_, model_.weights, pool);
  for (int l = 0; l < c.n_layers; ++l)
    block_.forward(l, x_.data(), plan_, model_.weights.layers[size_t(l)], acts_, acts_, false, pool);
  for (const auto& s : seqs_) s.cache->set_n_past(s.pos0 + s.n);

  // Only the rows whose logits are wanted go through the output head.
  int64_t rows = 0;
  for (size_t i = 0; i < requests.size(); ++i)
    if (requests[i].logits) rows += requests[i].all_logits ? seqs_[i].n : 1;
  if (rows == 0) return;
  if (rows_.size() < size_t(rows * d)) {
    rows_.resize(size_t(rows * d));
    hn_.resize(size_t(rows * d));
  }
  int64_t at = 0;
  for (size_t i = 0; i < requests.size(); ++i) {
    if (!requests[i].logits) continue;
    const int64_t take = requests[i].all_logits ? seqs_[i].n : 1;
    const int64_t first = seqs_[i].row0 + seqs_[i].n - take;
    std::memcpy(rows_.data() + at * d, x_.data() + first * d, size_t(take * d) * sizeof(float));
    at += take;
  }
  const bool direct = requests.size() == 1;  // one request: write its logits in place
  if (!direct && logits_.size() < size_t(rows * V)) logits_.resize(size_t(rows * V));
  float* out = direct ? requests[0].logits : logits_.data();
  block_.head(out, hn_.data(), rows_.data(), rows, model_.weights, pool);
  if (direct) return;
  at = 0;
  for (size_t i = 0; i < requests.size(); ++i) {
    if (!requests[i].logits) continue;
    const int64_t take = requests[i].all_logits ? seqs_[i].n : 1;
    std::memcpy(requests[i].logits, logits_.data() + at * V, size_t(take * V) * sizeof(float));
    at += take;
  }
}

}  // namespace tpp
