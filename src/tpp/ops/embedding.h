// Token embedding and absolute positions, forward and backward.
//
//   x[t] = E[token_t] * scale  (+ P[pos_t] learned, or + PE(pos_t) sinusoidal)
// scale: Gemma's sqrt(d); PE (Vaswani et al. 2017): PE[pos, 2i] =
// sin(pos / 10000^(2i/d)), PE[pos, 2i+1] = cos(pos / 10000^(2i/d)).
// Ref: transformers GemmaModel (normalizer), GPT2Model (wpe).
// x, dx: [N, d]   tokens, pos: [N]   E: [V, d] in any storage dtype (float) or f64 (double)
#pragma once

#include <cstdint>

#include "tpp/core/switches.h"
#include "tpp/core/thread_pool.h"
#include "tpp/ops/linear.h"

namespace tpp {

struct EmbedParams {
  double scale = 1.0;
  PosEncoding pos = PosEncoding::rope;  // learned and sinusoidal add to x; the others add nothing
};

template <class R>
void embed_forward(R* x, const int32_t* tokens, const int64_t* pos, int64_t N, const MatrixRef& tok,
                   const MatrixRef* pos_table, const EmbedParams& p, ThreadPool& pool);

// dtok: [V, d] and dpos: [max_seq_len, d] (learned positions only), accumulated.
template <class R>
void embed_backward(R* dtok, R* dpos, const R* dx, const int32_t* tokens, const int64_t* pos, int64_t N, int64_t d,
                    const EmbedParams& p);

}  // namespace tpp
