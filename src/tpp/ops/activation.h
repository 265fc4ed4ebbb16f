// Feed-forward activations, forward and backward.
//
// Two-matrix FFNs compute h = act(u); gated FFNs (Shazeer 2020, "GLU Variants
// Improve Transformer") compute h = act(gate) * up:
//   glu: sigmoid   bilinear: identity   reglu: relu   geglu: gelu   swiglu: silu
// GELU is exact (erf) or the tanh form (gelu_pytorch_tanh, Gemma).
// Ref: torch.nn.functional.gelu / silu / relu / sigmoid.
#pragma once

#include <cstdint>

#include "tpp/core/switches.h"

namespace tpp {

struct ActParams {
  Ffn kind = Ffn::swiglu;
  GeluApprox approx = GeluApprox::none;
};

// h, gate, up: [n]. Gated kinds: h = act(gate) * up; others: h = act(up) (gate
// unused). h may alias gate (gated) or up (not gated).
template <class R>
void ffn_act_forward(R* h, const R* gate, const R* up, int64_t n, const ActParams& p);

// From dh: gated kinds write dgate = dh * up * act'(gate) and dup = dh * act(gate);
// others write dup = dh * act'(up). dup may alias dh.
template <class R>
void ffn_act_backward(R* dgate, R* dup, const R* dh, const R* gate, const R* up, int64_t n, const ActParams& p);

}  // namespace tpp
