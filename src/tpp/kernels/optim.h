// The coefficients of one AdamW update (api.h's AdamWF32Fn): a plain struct,
// with no includes, so that the per-ISA units can take it.
#pragma once

namespace tpp::kernels {

struct AdamWCoeffs {
  float b1, b2, step, inv_sqrt_bc2, eps, decay;
};

}  // namespace tpp::kernels
