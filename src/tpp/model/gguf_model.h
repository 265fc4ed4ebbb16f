// GGUF model files as llama.cpp writes them -> ModelConfig + weights. The only
// place that knows llama.cpp's architecture names and metadata keys.
//
// general.architecture selects the mapping (llama, qwen2, qwen3, phi3, gemma2,
// gemma3); its "<arch>.*" keys are each mapped or known not to change the
// computation, and any other "<arch>.*" key, or a value tpp cannot honour,
// is refused by name. What llama.cpp's converter changed is undone here as
// data, not in compute code:
//   - llama: Q and K rows are permuted so that RoPE rotates adjacent pairs
//     (rope_layout interleaved); the other families keep rotate_half;
//   - LLaMA 3.1-style RoPE scaling is stored as per-pair factors
//     (rope_freqs.weight): the llama3 parameters are recovered from them;
//   - Gemma: norm weights are stored as 1 + w (so norm_one_plus is off), and
//     the attention scale and local:global pattern are those llama.cpp
//     derives from the architecture.
#pragma once

#include <string>

#include "tpp/io/gguf.h"
#include "tpp/model/config.h"

namespace tpp {

ModelConfig config_from_gguf(const io::GgufFile& f);

// True when `path` is a regular file that starts with the GGUF magic.
bool is_gguf_file(const std::string& path);

}  // namespace tpp
