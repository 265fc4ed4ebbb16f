// AdamW (Loshchilov & Hutter, decoupled weight decay) on the flat parameter
// vector, the learning-rate schedule (linear warm-up, cosine decay to a
// floor) and global gradient-norm clipping. The update follows
// torch.optim.AdamW step for step, so the two can be compared loss for loss.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "tpp/core/thread_pool.h"

namespace tpp::train {

struct AdamWOptions {
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weight_decay = 0.1;
};

// Elements [begin, end) of the flat vector (a tensor, or a run of them).
struct ParamRange {
  int64_t begin = 0, end = 0;
};

class AdamW {
 public:
  // decayed: the ranges of the n parameters that weight decay applies to,
  // in order and disjoint (params.h's decay_ranges).
  AdamW(int64_t n, std::vector<ParamRange> decayed, AdamWOptions options);

  // One update with learning rate lr: p -= lr*wd*p (decayed entries), then the
  // bias-corrected Adam step.
  void step(float* params, const float* grads, double lr, ThreadPool& pool);

  int64_t steps() const { return t_; }
  std::vector<float>& m() { return m_; }
  std::vector<float>& v() { return v_; }
  void set_steps(int64_t t) { t_ = t; }

 private:
  // [0, n) as runs of one kind: (begin, end, decayed), in order.
  struct Run {
    int64_t begin, end;
    bool decayed;
  };
  AdamWOptions o_;
  std::vector<Run> runs_;
  std::vector<float> m_, v_;
  int64_t t_ = 0;
};

// lr at step s (0-based) of `total`: linear warm-up over `warmup` steps to
// lr_max, then cosine decay to lr_min at the last step.
double lr_at(int64_t step, int64_t total, int64_t warmup, double lr_max, double lr_min);

// g = 0 on the pool's workers (a gradient buffer is hundreds of MB: one
// thread alone leaves the others idle for tens of ms).
void zero(std::span<float> g, ThreadPool& pool);

// sqrt(sum g^2), accumulated in double in a fixed order.
double global_norm(std::span<const float> g, ThreadPool& pool);

// Scales g so its global norm is at most max_norm (no-op when max_norm <= 0).
// Returns the norm before clipping.
double clip_global_norm(std::span<float> g, double max_norm, ThreadPool& pool);

}  // namespace tpp::train
