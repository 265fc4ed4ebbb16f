// Checkpoint conversion of the GQA paper (Ainslie et al. 2023; SPEC §4):
// a model with g KV heads per layer becomes one with G heads (G divides g)
// by replacing each contiguous group of g / G key heads and value heads with
// one head made from the group.
//
// Query head i reads KV head floor(i * g / h), so the group of new head j is
// old heads j * (g / G) ... (j + 1) * (g / G) - 1, and every query head keeps
// reading (a replacement of) the head it read before.
//
//   mean    each new head (its K and V projection rows, and biases) is the
//           mean of its group's heads: the paper's method.
//   first   the first head of each group (the paper's baseline).
//   random  K and V projections drawn anew, N(0, 0.02), biases zero (the
//           paper's other baseline: the attention must be learned again).
//
// What does not depend on the KV-head count is carried unchanged: Q and the
// output projection, QK-norm weights (per head_dim, shared by the heads), the
// RoPE layout (the rows of every head are laid out alike, so the mean of
// like rows stays in that layout), and layers that reuse another layer's K/V
// (CLA) follow their source layer.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tpp/model/model.h"

namespace tpp::convert {

enum class KvInit { mean, first, random };
std::optional<KvInit> parse_kv_init(std::string_view s);  // "mean" | "first" | "random"
const char* kv_init_name(KvInit m);

struct KvHeadsOptions {
  std::vector<int> kv_heads;  // G: one value for every layer, or one per layer
  KvInit method = KvInit::mean;
  uint64_t seed = 0;  // random: the seed of the new projections
};

// The converted model. It shares every unchanged tensor with `model` (keep
// `model`'s storage alive: the result holds references to it). New K/V
// matrices are in the source's dtype when that is f32, bf16 or f16 (the mean
// is computed in double and rounded once), in f32 when the source is block
// quantised. Refusals (tpp::Error naming --kv-heads and the layer): a list
// whose length is neither 1 nor n_layers; G < 1; G larger than a layer's KV
// heads (conversion merges heads, it cannot split them); G not dividing them;
// CLA layers whose G differs from the layer whose K/V they reuse.
Model convert_kv_heads(const Model& model, const KvHeadsOptions& options);

// Writes a converted model. A directory: tpp's layout (config.json +
// model.safetensors, matrices in `dtype`), plus the tokenizer files
// (tokenizer.json, tokenizer_config.json with its chat template,
// generation_config.json with its stop tokens) copied from the source
// directory when it has them. A path ending in .gguf, for a GGUF source: the
// source file with its metadata (tokenizer, chat template, stop tokens
// included) and tensors carried over, head_count_kv and the K/V tensors
// replaced; `dtype` is then unused.
void save_converted(const Model& converted, const std::string& source, const std::string& out,
                    DType dtype = DType::f32);

}  // namespace tpp::convert
