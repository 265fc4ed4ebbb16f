// tpp quantize: any model tpp loads, written as a GGUF file whose matrices are
// stored in one type (f32, f16, bf16, q8_0, q4_0), as llama.cpp's
// llama-quantize writes them.
//
// - From a GGUF file: its metadata is carried over unchanged (tokenizer, chat
//   template, stop tokens), but for general.file_type; each 2-D weight is
//   widened to f32 and stored in the new type; 1-D tensors are copied.
// - From a tpp or Hugging Face directory: the metadata is written from the
//   config for llama.cpp's llama architecture (qwen3 when the config has
//   QK-norm), with Q and K rows permuted as llama.cpp's converter permutes
//   them for llama; the file is read back and its config compared with the
//   source's before it replaces `out`, so a switch GGUF cannot express is
//   refused by name instead of being dropped. A byte-level model is written
//   without a tokenizer (tpp reads such a file as byte-level again); a
//   directory with tokenizer.json is refused, as its tokenizer cannot be
//   carried into GGUF metadata yet.
//
// Which tensors take the type: every matrix, except that, unless `pure`, the
// output matrix (the token embedding when tied) of a 4-bit file is stored in
// q8_0, as llama.cpp keeps its output matrix at a higher precision (it uses
// Q6_K). Block types need rows whose length is a multiple of 32; a matrix
// with other rows is stored in f16 (llama.cpp falls back likewise).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "tpp/core/dtype.h"

namespace tpp::convert {

struct QuantizeOptions {
  DType type = DType::q8_0;
  bool pure = false;
};

struct QuantizeSummary {
  int64_t tensors = 0, quantized = 0, fallback = 0;  // fallback: rows not a multiple of the block
  int64_t bytes_in = 0, bytes_out = 0;               // tensor data
  int64_t elements = 0;                              // of the matrices
  int64_t matrix_bytes_out = 0;
};

// Writes `out` atomically; `progress(name, type)` is called per tensor.
QuantizeSummary quantize_model(const std::string& source, const std::string& out, const QuantizeOptions& opts,
                               const std::function<void(const std::string&, DType)>& progress = nullptr);

// GGML's general.file_type for a file whose matrices are mostly `t`.
uint32_t gguf_file_type(DType t);
// GGML's tensor type id of `t` (f32, f16, bf16, q8_0, q4_0).
uint32_t ggml_type_id(DType t);

}  // namespace tpp::convert
