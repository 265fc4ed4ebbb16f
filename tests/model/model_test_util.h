// Helpers for whole-model tests: run a full-sequence forward, list golden cases.
#pragma once

#include <string>
#include <vector>

#include "tpp/core/thread_pool.h"
#include "tpp/model/model.h"
#include "tpp/model/transformer.h"

namespace tpp::test {

struct ForwardOptions {
  int max_chunk = 256;
  bool naive_attention = false;
  bool rolling = true;
  bool token_by_token = false;  // decode each token through the KV cache
  int chunk = 0;                // > 0: feed the sequence in pieces of this size
  int threads = 1;
  DType kv_type = DType::f32;   // the KV cache's element type
};

// Logits [T, V] for the whole sequence.
std::vector<float> forward_logits(const Model& model, const std::vector<int32_t>& tokens,
                                  const ForwardOptions& options = {});

// The golden case directories under tests/golden/models (sorted).
std::vector<std::string> golden_cases();

// Golden tokens and logits of a case.
struct Golden {
  std::vector<int32_t> tokens;
  std::vector<float> logits;                // [T, V]
  std::vector<float> logits_prefix;         // optional
};
Golden load_golden(const std::string& case_dir);

}  // namespace tpp::test
