// The training loop behind `tpp train`: data, AdamW with warm-up + cosine
// schedule, clipping, gradient accumulation, optional bf16 compute,
// evaluation, metrics (JSONL) and atomic, resumable
// checkpoints (see checkpoint.h). A resumed run reproduces the uninterrupted
// run's loss curve exactly for the same thread count: batches are a pure
// function of (seed, step) and every reduction has a fixed order.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tpp/core/thread_pool.h"
#include "tpp/train/data.h"
#include "tpp/train/graph.h"

namespace tpp::train {

struct TrainOptions {
  std::string config;  // model config JSON (training from scratch)
  std::string init;    // or an existing model directory (fine-tuning)
  std::vector<std::string> data, val;
  std::string out;
  int64_t steps = 0, tokens = 0;  // the run's length: one of the two
  int64_t batch = 16, seq = 256, grad_accum = 1;
  double lr = 1e-3, min_lr = -1;  // -1: lr / 10
  int64_t warmup = -1;            // -1: 5 % of the steps
  double weight_decay = 0.1, clip = 1.0, beta1 = 0.9, beta2 = 0.95;
  bool decay_embeddings = false;
  bool bf16 = false;
  uint64_t seed = 0;
  int64_t eval_every = -1;  // -1: ten evaluations per run; 0: only at the end
  int64_t eval_tokens = 1 << 15;
  int64_t save_every = -1;  // -1: ten checkpoints per run; 0: only at the end
  int64_t stop_after = 0;   // end after this many steps of this invocation, as if interrupted
  int threads = 0;
  bool progress = true;
};

struct TrainResult {
  int64_t step = 0;  // steps done in total
  double loss = 0, val_loss = 0, val_bpb = 0;
  double tokens_per_s = 0;
  int64_t graph_bytes = 0, peak_rss = 0;
};

// Trains (or, with resume, continues the run in options.out).
TrainResult run_training(const TrainOptions& options, bool resume);

struct EvalResult {
  double loss = 0, bits_per_byte = 0;
  int64_t tokens = 0;
};
// Mean loss over consecutive windows of T + 1 tokens (up to max_tokens).
EvalResult evaluate(Graph<float>& graph, const float* params, const TextData& data, int64_t T, int64_t B,
                    int64_t max_tokens, ThreadPool& pool);

// Peak resident set of this process in bytes (VmHWM), 0 if unknown.
int64_t peak_rss_bytes();

}  // namespace tpp::train
