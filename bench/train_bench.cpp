// Training throughput: full steps (forward, backward, clipping, AdamW) of a
// LLaMA-style model on random tokens, the same model, batch and threads as
// bench/train_torch.py, plus this machine's matmul throughput measured in
// the same run (tpp's own kernel on a large product, f32 or with --bf16 the
// bf16 dot kernel) as the peak the training FLOP rate is compared with.
// Prints one JSON line.
//
//   tpp_bench_train --d-model 256 --n-layers 6 --n-heads 8 --n-kv-heads 4 --d-ff 768
//       --vocab 260 --batch 16 --seq 256 --steps 10 --threads 2
//
// FLOPs per token: 6 x (matrix parameters, output head included, embedding
// lookup excluded) + 6 x n_layers x seq x n_heads x head_dim (causal
// attention: QK^T and PV forward, twice that backward, half the keys visible).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "tpp/core/dtype.h"
#include "tpp/core/rng.h"
#include "tpp/kernels/api.h"
#include "tpp/kernels/packed.h"
#include "tpp/model/model.h"
#include "tpp/ops/linear.h"
#include "tpp/train/graph.h"
#include "tpp/train/optim.h"
#include "tpp/train/trainer.h"

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// GFLOP/s of y = x W^T, x [512, 1024], W [4096, 1024], best of 5; W in f32
// (packed for the packed f32 kernel where the CPU has it, as training's
// forward runs), or in bf16 packed for the bf16 dot kernels (what --bf16
// training runs).
double matmul_peak(tpp::ThreadPool& pool, bool bf16) {
  const int64_t N = 512, K = 1024, M = 4096;
  std::vector<float> x(size_t(N * K), 0.5f), w(size_t(M * K), 0.25f), y(size_t(N * M));
  tpp::MatrixRef W{tpp::DType::f32, w.data(), M, K};
  std::vector<uint16_t> wb(bf16 ? w.size() : 0, tpp::f32_to_bf16(0.25f));
  std::vector<std::byte> packed;
  if (bf16) {
    packed.resize(size_t(tpp::kernels::packed_bytes(tpp::DType::bf16, M, K)));
    tpp::kernels::pack_rows(tpp::DType::bf16, packed.data(), wb.data(), M, K);
    W = tpp::MatrixRef{tpp::DType::bf16, wb.data(), M, K};
    W.packed = packed.data();
  } else if (tpp::kernels::kernels().matmul_f32_packed) {
    packed.resize(size_t(tpp::kernels::packed_bytes(tpp::DType::f32, M, K)));
    tpp::kernels::pack_rows(tpp::DType::f32, packed.data(), w.data(), M, K);
    W.packed = packed.data();
  }
  double best = 1e30;
  for (int r = 0; r < 5; ++r) {
    const auto t = Clock::now();
    tpp::linear_forward(y.data(), x.data(), N, W, {}, pool);
    best = std::min(best, since(t));
  }
  return 2.0 * double(N * K * M) / best / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"training throughput of tpp on a LLaMA-style model"};
  int d = 256, layers = 6, heads = 8, kv_heads = 4, d_ff = 768, vocab = 260, threads = 2;
  int64_t batch = 16, seq = 256, steps = 10;
  app.add_option("--d-model", d);
  app.add_option("--n-layers", layers);
  app.add_option("--n-heads", heads);
  app.add_option("--n-kv-heads", kv_heads);
  app.add_option("--d-ff", d_ff);
  app.add_option("--vocab", vocab);
  app.add_option("--batch", batch);
  app.add_option("--seq", seq);
  app.add_option("--steps", steps);
  app.add_option("--threads", threads);
  bool bf16 = false;
  app.add_flag("--bf16", bf16, "bf16 compute (bf16 dot GEMMs, f32 master weights), as tpp train --bf16");
  CLI11_PARSE(app, argc, argv);

  tpp::ModelConfig c;
  c.d_model = d;
  c.n_layers = layers;
  c.n_heads = heads;
  c.n_kv_heads = {kv_heads};
  c.d_ff = d_ff;
  c.vocab_size = vocab;
  c.max_seq_len = int(seq);
  c.rope_theta = 10000;
  c.tie_embeddings = true;
  c.validate();
  const auto layout = tpp::train::make_layout(c);
  // The initialised model is dropped once its weights are in the flat vector,
  // so peak memory counts what training holds: parameters, gradients, AdamW
  // moments, activations and scratch.
  auto params = tpp::train::params_from_model(tpp::init_model(c, 1), layout);
  std::vector<float> grads(params.size());
  tpp::train::AdamW adam(layout.total, {{0, layout.total}}, {0.9, 0.95, 1e-8, 0.1});
  tpp::ThreadPool pool(threads);
  tpp::train::Graph<float> graph(c, layout);
  if (bf16 && !tpp::train::Bf16Weights::supported()) {
    std::fprintf(stderr, "--bf16: this CPU has no bf16 dot kernels\n");
    return 1;
  }
  std::unique_ptr<tpp::train::Bf16Weights> bw;
  if (bf16) bw = std::make_unique<tpp::train::Bf16Weights>(layout);
  std::vector<int32_t> tokens(size_t(batch * seq)), targets(tokens.size());
  const tpp::CounterRng rng(7, 0);
  for (size_t i = 0; i < tokens.size(); ++i) {
    tokens[i] = int32_t(rng.bits(2 * i) % uint64_t(vocab));
    targets[i] = int32_t(rng.bits(2 * i + 1) % uint64_t(vocab));
  }
  std::vector<double> times;
  double loss_first = 0, loss_last = 0;
  for (int64_t s = 0; s < steps + 1; ++s) {  // the first step warms up (allocations)
    const auto t = Clock::now();
    tpp::train::zero(grads, pool);
    const tpp::train::Batch b{batch, seq, tokens.data(), targets.data()};
    double loss;
    if (bw) {
      const tpp::ModelWeights& w = bw->refresh(params.data(), pool);
      loss = graph.forward(w, b, pool);
      graph.backward(w, grads.data(), 1.0f, pool);
    } else {
      loss = graph.forward(params.data(), b, pool);
      graph.backward(params.data(), grads.data(), 1.0f, pool);
    }
    tpp::train::clip_global_norm(grads, 1.0, pool);
    adam.step(params.data(), grads.data(), 1e-3, pool);
    if (s > 0) times.push_back(since(t));
    if (s == 0) loss_first = loss;
    loss_last = loss;
  }
  std::sort(times.begin(), times.end());
  const double median = times[times.size() / 2];
  int64_t matrix_params = 0;
  for (const auto& e : layout.entries)
    if (e.matrix && !e.embedding) matrix_params += e.size;
  matrix_params += int64_t(vocab) * d;  // the tied output head
  const double flops_per_token =
      6.0 * double(matrix_params) + 6.0 * layers * double(seq) * heads * (d / heads);
  const double tps = double(batch * seq) / median;
  const double peak = matmul_peak(pool, bf16);
  fmt::print(
      "{{\"framework\": \"tpp\", \"dtype\": \"{}\", \"params\": {}, \"batch\": {}, \"seq\": {}, \"threads\": {}, "
      "\"step_s_median\": {:.4f}, \"tokens_per_s\": {:.1f}, \"loss_first\": {:.4f}, \"loss_last\": {:.4f}, "
      "\"train_flops_per_token\": {:.0f}, \"gflops\": {:.1f}, \"matmul_peak_gflops\": {:.1f}, "
      "\"share_of_peak\": {:.3f}, \"state_mb\": {:.1f}, \"activation_mb\": {:.1f}, \"peak_rss_mb\": {:.1f}}}\n",
      bf16 ? "bf16" : "f32", layout.total, batch, seq, pool.size(), median, tps, loss_first, loss_last, flops_per_token,
      tps * flops_per_token / 1e9, peak, tps * flops_per_token / 1e9 / peak,
      16.0 * double(layout.total) / 1e6,  // parameters, gradients, two AdamW moments (f32)
      double(graph.bytes()) / 1e6,
      double(tpp::train::peak_rss_bytes()) / 1e6);
  return 0;
}
