// Feed-forward activations.
//
// Two-matrix FFNs apply act(u) in place; gated FFNs (Shazeer 2020, "GLU
// Variants Improve Transformer") compute h = act(gate) * up:
//   glu: sigmoid   bilinear: identity   reglu: relu   geglu: gelu   swiglu: silu
// GELU is exact (erf) or the tanh form (gelu_pytorch_tanh, Gemma).
#pragma once

#include <cstdint>

#include "tpp/core/switches.h"

namespace tpp {

// x: [n] in place, act(x).
void activation_forward(float* x, int64_t n, Ffn kind, GeluApprox approx);
// gate: [n] in place, gate <- act(gate) * up.
void gated_activation_forward(float* gate, const float* up, int64_t n, Ffn kind, GeluApprox approx);

}  // namespace tpp
