// Next-token cross-entropy over logits (after the final soft-cap, if any).
//
//   loss = mean_n [ logsumexp(z_n) - z_n[target_n] ]
//   dz_n = scale / N * (softmax(z_n) - onehot(target_n))
// With a final soft-cap c the logits are z = c tanh(u / c) and the backward
// continues to u (dz * (1 - (z/c)^2)), in place, since [N, V] is the largest
// buffer of a training step.
// Ref: torch.nn.functional.cross_entropy (reduction mean).
#pragma once

#include <cstdint>

#include "tpp/core/thread_pool.h"

namespace tpp {

// logits: [N, V]; returns the mean loss (accumulated in double, per worker,
// combined in worker order).
template <class R>
double cross_entropy_forward(const R* logits, const int32_t* targets, int64_t N, int64_t V, ThreadPool& pool);

// logits: [N, V], replaced by the gradient w.r.t. the pre-cap logits.
template <class R>
void cross_entropy_backward(R* logits, const int32_t* targets, int64_t N, int64_t V, R scale, R softcap,
                            ThreadPool& pool);

}  // namespace tpp
