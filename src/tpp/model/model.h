// A model = a validated config + its weights. Load from a directory in tpp's
// own naming or a Hugging Face Llama-architecture directory; initialise
// randomly; save in tpp's naming (atomically).
#pragma once

#include <cstdint>
#include <string>

#include "tpp/core/dtype.h"
#include "tpp/model/config.h"
#include "tpp/model/tensor_table.h"
#include "tpp/model/weights.h"

namespace tpp {

struct Model {
  ModelConfig config;
  ModelWeights weights;
  std::string source;  // directory it was loaded from ("" if initialised in memory)
  NameStyle naming = NameStyle::tpp;
  // Bytes of every tensor as stored (dtype included).
  int64_t weight_bytes = 0;
};

// dir/config.json + dir/model.safetensors. HF naming is detected from the
// config (it has "model_type"). Every tensor's presence, dtype and shape is
// checked against the config; extra tensors are errors. A path to a GGUF file
// loads that file instead (load_gguf_model).
Model load_model(const std::string& dir);
// A llama.cpp GGUF file: config from its metadata (tpp/model/gguf_model.h),
// matrices mapped in place (f32, f16, bf16, q8_0, q4_0), vectors widened.
Model load_gguf_model(const std::string& path);

// Random initialisation (counter-based RNG keyed by seed and tensor name), in
// `dtype` (f32, bf16 or f16): matrices N(0, 0.02), residual-writing
// projections N(0, 0.02/sqrt(2 n_layers)), norms 1, biases 0. `scale`
// multiplies every standard deviation and, when != 1, also draws norm
// weights and biases at random (tests use it to make every tensor matter).
Model init_model(const ModelConfig& config, uint64_t seed, DType dtype = DType::f32,
                 double scale = 1.0);

// Packed copies (tpp/kernels/packed.h) of the matrices that the kernels of
// this CPU multiply faster packed: q8_0 / q4_0 where there are int8 kernels,
// bf16 where there are bf16 dot kernels, f32 on AVX-512 (the token embedding only when it is
// also the output). Matrices that already have one keep it. Loading and
// init_model call it; whoever builds or changes matrices calls it after.
void pack_weights(Model& model);

// Places one tensor (raw bytes in `dtype`, kept alive by the caller) into its
// slot of `w`: matrices are borrowed, vectors are widened into f32 copies.
void place_tensor(ModelWeights& w, const TensorSpec& spec, DType dtype, const std::byte* data);

// Writes dir/config.json and dir/model.safetensors in tpp naming, atomically.
// Matrices are written in `dtype` (f32, bf16, f16); vectors in f32.
void save_model(const Model& model, const std::string& dir, DType dtype = DType::f32);

}  // namespace tpp
