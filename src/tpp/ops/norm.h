// Normalisations over the last dimension.
//
// RMSNorm:   y = x / sqrt(mean(x^2) + eps) * w        (one_plus: * (1 + w), Gemma)
//   Ref: transformers LlamaRMSNorm; Gemma2RMSNorm for (1 + w).
// LayerNorm: y = (x - mean) / sqrt(var + eps) * w + b  (biased variance)
//   Ref: torch.nn.functional.layer_norm.
// x, y: [N, d] (y may alias x)   w, b: [d]
#pragma once

#include <cstdint>
#include <span>

namespace tpp {

void rmsnorm_forward(float* y, const float* x, int64_t N, int64_t d, std::span<const float> w,
                     float eps, bool one_plus);
void layernorm_forward(float* y, const float* x, int64_t N, int64_t d, std::span<const float> w,
                       std::span<const float> b, float eps);

}  // namespace tpp
