#include "tpp/infer/perplexity.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include "tpp/core/error.h"
#include "tpp/model/kv_cache.h"
#include "tpp/model/transformer.h"

namespace tpp {
namespace {

// log-softmax pieces of one row of logits, in double.
struct RowStats {
  double log_z = 0;  // log sum exp
  int32_t top = 0;
};

RowStats row_stats(const float* x, int64_t V) {
  RowStats s;
  float mx = x[0];
  for (int64_t v = 1; v < V; ++v)
    if (x[v] > mx) mx = x[v], s.top = int32_t(v);
  double sum = 0;
  for (int64_t v = 0; v < V; ++v) sum += std::exp(double(x[v]) - double(mx));
  s.log_z = double(mx) + std::log(sum);
  return s;
}

// KL(p || q) for logits xp (base) and xq.
double kl_divergence(const float* xp, const RowStats& sp, const float* xq, const RowStats& sq, int64_t V) {
  double kl = 0;
  for (int64_t v = 0; v < V; ++v) {
    const double lp = double(xp[v]) - sp.log_z, lq = double(xq[v]) - sq.log_z;
    kl += std::exp(lp) * (lp - lq);
  }
  return std::max(0.0, kl);  // rounding can leave a tiny negative for equal rows
}

// Mean and standard error of the mean (two passes: exact for equal values).
Estimate mean_se(const std::vector<double>& v) {
  const double n = double(v.size());
  double sum = 0;
  for (double x : v) sum += x;
  const double m = sum / n;
  if (v.size() < 2) return {m, 0};
  double ss = 0;
  for (double x : v) ss += (x - m) * (x - m);
  return {m, std::sqrt(ss / (n - 1) / n)};
}

}  // namespace

PerplexityReport perplexity(const Model& model, const Model* base, std::span<const int32_t> tokens,
                            const PerplexityOptions& opts, ThreadPool& pool, const PerplexityProgress& progress) {
  const ModelConfig& c = model.config;
  const int64_t ctx = opts.ctx, V = c.vocab_size;
  TPP_CHECK(ctx >= 4, "perplexity: --ctx {}, expected at least 4 tokens", ctx);
  TPP_CHECK(ctx <= c.max_seq_len, "perplexity: --ctx {} exceeds the model's max_seq_len {}", ctx, c.max_seq_len);
  if (base) {
    TPP_CHECK(base->config.vocab_size == V,
              "perplexity: the base model's vocab_size is {}, the model's {}: they must share a vocabulary",
              base->config.vocab_size, V);
    TPP_CHECK(ctx <= base->config.max_seq_len, "perplexity: --ctx {} exceeds the base model's max_seq_len {}", ctx,
              base->config.max_seq_len);
  }
  for (size_t i = 0; i < tokens.size(); ++i)
    TPP_CHECK(tokens[i] >= 0 && tokens[i] < V, "perplexity: token {} at position {} is outside the vocabulary of {}",
              tokens[i], i, V);
  int64_t chunks = int64_t(tokens.size()) / ctx;
  TPP_CHECK(chunks > 0, "perplexity: the text has {} tokens, fewer than one chunk of --ctx {}", tokens.size(), ctx);
  if (opts.max_chunks > 0) chunks = std::min(chunks, opts.max_chunks);

  const int64_t first = ctx / 2, scored = ctx - 1 - first;
  Transformer tm(model);
  KvCache cache(c, ctx, opts.kv_type);
  std::vector<float> logits(size_t(ctx * V)), base_logits;
  std::optional<Transformer> tb;
  std::optional<KvCache> base_cache;
  if (base) {
    tb.emplace(*base);
    base_cache.emplace(base->config, ctx);
    base_logits.resize(logits.size());
  }
  std::vector<int32_t> chunk(static_cast<size_t>(ctx));
  // Per scored token of one chunk.
  const auto per_token = static_cast<size_t>(scored);
  std::vector<double> nll(per_token), base_nll(per_token), kld(per_token), dp(per_token);
  std::vector<uint8_t> same(per_token);
  std::vector<double> all_nll, all_base, all_kld, all_same, all_dp;

  PerplexityReport r;
  r.has_base = base != nullptr;
  for (int64_t k = 0; k < chunks; ++k) {
    std::copy(tokens.begin() + k * ctx, tokens.begin() + (k + 1) * ctx, chunk.begin());
    if (opts.bos >= 0) chunk[0] = opts.bos;
    cache.clear();
    tm.forward(cache, chunk, logits.data(), true, pool);
    if (base) {
      base_cache->clear();
      tb->forward(*base_cache, chunk, base_logits.data(), true, pool);
    }
    pool.parallel_for(size_t(scored), 1, [&](size_t b, size_t e, size_t) {
      for (size_t j = b; j < e; ++j) {
        const int64_t i = first + int64_t(j);
        const int32_t next = chunk[size_t(i + 1)];
        const float* x = logits.data() + i * V;
        const RowStats s = row_stats(x, V);
        nll[j] = s.log_z - double(x[next]);
        if (!base) continue;
        const float* xb = base_logits.data() + i * V;
        const RowStats sb = row_stats(xb, V);
        base_nll[j] = sb.log_z - double(xb[next]);
        kld[j] = kl_divergence(xb, sb, x, s, V);
        same[j] = s.top == sb.top;
        dp[j] = std::exp(-nll[j]) - std::exp(-base_nll[j]);
      }
    });
    for (size_t j = 0; j < size_t(scored); ++j) {
      TPP_CHECK(std::isfinite(nll[j]), "perplexity: chunk {}, position {}: the model's loss is not finite", k,
                first + int64_t(j));
      all_nll.push_back(nll[j]);
      if (!base) continue;
      all_base.push_back(base_nll[j]);
      all_kld.push_back(kld[j]);
      all_same.push_back(same[j]);
      all_dp.push_back(dp[j]);
    }

    r.chunks = k + 1;
    r.tokens = int64_t(all_nll.size());
    r.nll = mean_se(all_nll);
    r.ppl = {std::exp(r.nll.value), std::exp(r.nll.value) * r.nll.err};
    if (base) {
      r.base_nll = mean_se(all_base);
      r.base_ppl = {std::exp(r.base_nll.value), std::exp(r.base_nll.value) * r.base_nll.err};
      const double pa = r.ppl.value, pb = r.base_ppl.value;
      std::vector<double> diff(all_nll.size()), lin(all_nll.size());
      for (size_t i = 0; i < all_nll.size(); ++i) {
        diff[i] = all_nll[i] - all_base[i];
        lin[i] = pa * all_nll[i] - pb * all_base[i];  // Δppl to first order in the two means
      }
      r.ln_ratio = mean_se(diff);
      r.dppl = {pa - pb, mean_se(lin).err};
      r.kld = mean_se(all_kld);
      r.same_top = mean_se(all_same);
      double sq = 0;
      for (double x : all_dp) sq += x * x;
      r.rms_dp = std::sqrt(sq / double(all_dp.size()));
      std::vector<double> sorted = all_kld;
      std::sort(sorted.begin(), sorted.end());
      auto quantile = [&](double q) {
        return sorted[size_t(std::min<double>(double(sorted.size() - 1), q * double(sorted.size() - 1) + 0.5))];
      };
      r.kld_median = quantile(0.5);
      r.kld_p99 = quantile(0.99);
      r.kld_max = sorted.back();
    }
    if (progress) progress(k + 1, chunks, r);
  }
  return r;
}

}  // namespace tpp
