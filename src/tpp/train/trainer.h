// The training loop behind `tpp train`: data (through the model's own
// tokenizer when it has one), AdamW with warm-up + cosine schedule, clipping,
// gradient accumulation, optional bf16 compute, evaluation, metrics (JSONL),
// and atomic, resumable checkpoints (see checkpoint.h). A resumed run
// reproduces the uninterrupted run's loss curve exactly for the same thread
// count: batches are a pure function of (seed, step) and every reduction has
// a fixed order.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tpp/core/thread_pool.h"
#include "tpp/train/data.h"
#include "tpp/train/data_parallel.h"
#include "tpp/train/graph.h"

namespace tpp::train {

struct TrainOptions {
  std::string config;  // model config JSON (training from scratch)
  std::string init;    // or an existing model directory (fine-tuning)
  std::vector<std::string> data, val;
  std::string out;
  int64_t steps = 0, tokens = 0;  // the run's length: one of the two
  // A step is batch x seq x grad_accum tokens on each of the run's ranks
  // (see data_parallel.h); checkpoints store the step's micro-batches over
  // all ranks as grad_accum, so a resumed run may use any number of ranks.
  int64_t batch = 16, seq = 256, grad_accum = 1;
  double lr = 1e-3, min_lr = -1;  // -1: lr / 10
  int64_t warmup = -1;            // -1: 5 % of the steps
  double weight_decay = 0.1, clip = 1.0, beta1 = 0.9, beta2 = 0.95;
  bool decay_embeddings = false;
  bool bf16 = false;
  // "ordered": over MPI ranks the gradient is one process's, bit for bit;
  // "local": each rank sums its micro-batches first (fewer bytes for
  // grad_accum > 1; bits depend on the number of ranks). See data_parallel.h.
  std::string grad_sum = "ordered";
  uint64_t seed = 0;
  int64_t eval_every = -1;  // -1: ten evaluations per run; 0: only at the end
  int64_t eval_tokens = 1 << 15;
  int64_t save_every = -1;  // -1: ten checkpoints per run; 0: only at the end
  int64_t stop_after = 0;   // end after this many steps of this invocation, as if interrupted
  int threads = 0;
  // Over MPI ranks: MB of gradients per exchange message (0: 16 MB, more with
  // many ranks); smaller buckets start exchanging earlier in the backward.
  // The bits do not depend on it.
  double grad_bucket_mb = 0;
  bool progress = true;
};

// What a resumed run may change: its length and its reporting. Everything
// else (model, data, batch shape, optimizer, learning rate, seed) is the
// checkpoint's, because changing it mid-run would make the remaining steps
// differ from the run's. A new length re-plans the cosine decay to end at the
// new last step (the warm-up keeps the length it had); ten-per-run defaults of
// --eval-every / --save-every follow the new length.
struct ResumeOptions {
  std::string out;                // the run's directory
  int64_t steps = 0, tokens = 0;  // 0: the run's own length; else one of the two
  std::optional<int64_t> eval_every, eval_tokens, save_every;
  int64_t stop_after = 0;
  int threads = 0;
  double grad_bucket_mb = 0;
  bool progress = true;
};

struct TrainResult {
  int64_t step = 0;   // steps done in total
  int64_t steps = 0;  // steps the run plans (step == steps: finished)
  double loss = 0, val_loss = 0, val_bpb = 0;
  double tokens_per_s = 0;
  int64_t graph_bytes = 0, peak_rss = 0;
};

// A new run. With --init DIR the model's tokenizer files (tokenizer.json,
// tokenizer_config.json, generation_config.json) are copied into options.out,
// so the trained model and a resumed run keep that tokenizer.
TrainResult run_training(const TrainOptions& options);
// Continues the run whose checkpoints are in options.out.
TrainResult resume_training(const ResumeOptions& options);
// The same as one of `ranks` (every rank calls it with the same options):
// rank 0 alone writes the outputs.
TrainResult run_training(const TrainOptions& options, Ranks& ranks);
TrainResult resume_training(const ResumeOptions& options, Ranks& ranks);

struct EvalResult {
  double loss = 0, bits_per_byte = 0;
  int64_t tokens = 0;  // targets evaluated
  int64_t bytes = 0;   // the text's bytes they stand for
};
// Mean loss over consecutive windows of T + 1 tokens (up to max_tokens);
// bits per byte over the bytes of the evaluated targets (TextData::token_bytes).
EvalResult evaluate(Graph<float>& graph, const float* params, const TextData& data, int64_t T, int64_t B,
                    int64_t max_tokens, ThreadPool& pool);
// The same with the batches shared among `ranks` (every rank calls it); the
// result on every rank is one process's, bit for bit.
EvalResult evaluate(Graph<float>& graph, const float* params, const TextData& data, int64_t T, int64_t B,
                    int64_t max_tokens, ThreadPool& pool, Ranks& ranks);

// Peak resident set of this process in bytes (VmHWM), 0 if unknown.
int64_t peak_rss_bytes();
// Resident set of this process now (VmRSS) in bytes, 0 if unknown.
int64_t rss_bytes();

}  // namespace tpp::train
