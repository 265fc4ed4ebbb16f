// tpp quantize: any model tpp loads, written as a GGUF file whose matrices are
// stored in one type (f32, f16, bf16, q8_0, q4_0, q6_k) or in one of
// llama.cpp's K-quant mixes (q4_k_s, q4_k_m, q5_k_s, q5_k_m), as llama.cpp's
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
//   without a tokenizer (tpp reads such a file as byte-level again). A
//   directory with a byte-level BPE tokenizer.json (LLaMA 3, Qwen2/3, GPT-2,
//   SmolLM) gets llama.cpp's tokenizer.ggml.* keys and tokenizer.chat_template
//   as llama.cpp's converter writes them, through the caller's
//   GgufTokenizerWriter (below); the staged file's tokenizer must encode a
//   multilingual sample to the tokenizer.json's ids and agree on BOS, EOS,
//   stop ids and chat template, or the file is refused naming the difference.
//   A SentencePiece-style tokenizer.json (LLaMA 2, Gemma) or a pre-tokenizer
//   llama.cpp has no name for is refused by name.
//
// Which tensors take which type, unless `pure` (every matrix in the base type):
// - q4_0: the output matrix (the token embedding when tied) in q6_k, as
//   llama.cpp stores it (q8_0 where its rows are not a multiple of 256), the
//   rest q4_0.
// - K-quants, llama.cpp's rules (llama_tensor_get_type in src/llama-quant.cpp)
//   for a dense model: the output matrix (or tied embedding) in q6_k. With i
//   counting the attn_v-like matrices (attn_v, attn_qkv, attn_kv_b) of n, or
//   the ffn_down matrices of n = n_layers, in layer order, and
//   more_bits(i, n) = i < n/8 or i >= 7n/8 or (i - n/8) % 3 == 2:
//     q4_k_m, q5_k_m: attn_v-like and ffn_down in q6_k where more_bits(i, n),
//       the rest in q4_k / q5_k (q4_k and q5_k name these mixes, as in
//       llama-quantize);
//     q4_k_s: attn_v-like with i < 4 and ffn_down with i < n/8 in q5_k, the
//       rest q4_k;  q5_k_s: the rest q5_k;  q6_k: every matrix q6_k.
//   Not followed: llama.cpp's rules for 70B models, Falcon, and 8-expert MoE.
// Row-length fallback: block types need rows that are a multiple of their
// block (32; 256 for the K-quants). A K-quant matrix with other rows is stored
// in q8_0 (llama.cpp picks q5_0 / q5_1 / q8_0, of which tpp reads q8_0), and a
// matrix whose rows are not a multiple of 32 in f16, as llama.cpp does; the
// summary counts these.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tpp/core/dtype.h"
#include "tpp/io/gguf.h"

namespace tpp::convert {

// llama.cpp's small and medium K-quant mixes (see above).
enum class KMix : uint8_t { small, medium };

struct QuantizeOptions {
  DType type = DType::q8_0;  // the base type of the matrices
  bool pure = false;         // every matrix in `type` (rows that do not fit still fall back)
  KMix mix = KMix::medium;   // for q4_k and q5_k
};

// The --type names (f32 ... q4_k_m, q6_k) in one table, parsed into options
// (pure unset); nullopt for an unknown name.
std::optional<QuantizeOptions> parse_quantize_type(std::string_view name);
std::vector<std::string> quantize_type_names();

struct QuantizeSummary {
  int64_t tensors = 0, quantized = 0, fallback = 0;  // fallback: rows not a multiple of the block
  int64_t bytes_in = 0, bytes_out = 0;               // tensor data
  int64_t elements = 0;                              // of the matrices
  int64_t matrix_bytes_out = 0;
};

// A model directory's tokenizer.json carried into GGUF metadata: its keys, and
// the check of the written file's tokenizer (throws, naming the difference).
struct CarriedTokenizer {
  std::vector<std::pair<std::string, io::GgufValue>> metadata;
  std::function<void(const io::GgufFile& written)> check;
};
// Reads the tokenizer of `dir` for a model of `vocab_size` tokens. convert
// does not depend on the tokenizer layer, so the caller passes one built on
// tokenizer/gguf_write.h's GgufTokenizerSource (the tpp CLI does). Without it
// a directory with tokenizer.json is refused.
using GgufTokenizerWriter = std::function<CarriedTokenizer(const std::string& dir, int64_t vocab_size)>;

// Writes `out` atomically; `progress(name, type)` is called per tensor.
QuantizeSummary quantize_model(const std::string& source, const std::string& out, const QuantizeOptions& opts,
                               const std::function<void(const std::string&, DType)>& progress = nullptr,
                               const GgufTokenizerWriter& tokenizer = {});

// llama.cpp's general.file_type (llama_ftype) of a file written with `o`:
// 0 f32, 1 f16, 32 bf16, 7 q8_0, 2 q4_0, 14 q4_k_s, 15 q4_k_m, 16 q5_k_s,
// 17 q5_k_m, 18 q6_k. A type tpp cannot write is an error.
uint32_t gguf_file_type(const QuantizeOptions& o);
// GGML's tensor type id of `t` (io/gguf's table).
uint32_t ggml_type_id(DType t);

}  // namespace tpp::convert
