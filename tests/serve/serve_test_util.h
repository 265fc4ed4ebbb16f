// A small model directory for the server tests: random weights (tpp init),
// the test tokenizer and a chat template, loaded once per test binary.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tpp/infer/generate.h"
#include "tpp/infer/model_text.h"
#include "tpp/model/model.h"

namespace tpp::test {

struct ServeModel {
  std::string dir;
  Model model;
  ModelText text;
};

// Built on first use: d 64, 2 layers, vocab 263 (the test tokenizer's), context 512.
const ServeModel& serve_model();

// The tokens `generate` gives (stop token 262 excluded, as the server does).
std::vector<int32_t> generate_alone(const Model& model, const std::vector<int32_t>& prompt, int max_tokens,
                                    const SamplingParams& sampling, int max_chunk = 256);

}  // namespace tpp::test
