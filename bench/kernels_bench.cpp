// Kernel throughput: matmul (f32 / bf16 / q8_0 / q4_0 weights) at decode (N = 1) and
// prefill (N = 512) shapes of a SmolLM2-135M layer, and fused vs naive
// attention. Each SIMD path is timed beside the scalar baseline in the same
// run; the counters report GFLOP/s, weight GB/s, and the ratio to scalar is
// printed at the end.
//
// linear_backward_*: one layer's training backward, bf16 against f32
// weights; adamw: one optimizer step at the 135M shape.
//
// linear_*: the whole linear layer (ops/linear.cpp, two threads) with bf16,
// q8_0 and q4_0 weights at Llama-3.2-1B shapes, on every level from avx512
// up: avx512 widens weights to f32 and keeps f32 activations; avx512vnni
// quantises activations and runs the int8 kernels on packed weights;
// avx512bf16 adds bf16 dot products for bf16 weights. Decode cycles through enough matrices
// that weights stream from memory, as in a real model.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "tpp/core/dtype.h"
#include "tpp/core/rng.h"
#include "tpp/kernels/api.h"
#include "tpp/kernels/packed.h"
#include "tpp/ops/attention.h"
#include "tpp/ops/linear.h"
#include "tpp/quant/quant.h"
#include "tpp/train/optim.h"

namespace {

using tpp::kernels::Isa;

std::vector<float> random(size_t n, uint64_t seed) {
  const tpp::CounterRng rng(seed, 0);
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = float(rng.uniform(i) * 2 - 1);
  return v;
}

std::map<std::string, double>& seconds_per_iter() {
  static std::map<std::string, double> m;
  return m;
}

void BM_Matmul(benchmark::State& state, Isa isa, tpp::DType wt) {
  const int64_t N = state.range(0), K = state.range(1), M = state.range(2);
  const auto& k = tpp::kernels::kernels_for(isa);
  const auto x = random(size_t(N * K), 1);
  const auto wf = random(size_t(M * K), 2);
  std::vector<uint16_t> wb;
  std::vector<std::byte> wq;
  if (wt == tpp::DType::bf16) {
    wb.resize(wf.size());
    for (size_t i = 0; i < wf.size(); ++i) wb[i] = tpp::f32_to_bf16(wf[i]);
  } else if (wt != tpp::DType::f32) {
    const size_t row = tpp::dtype_bytes(wt, K);
    wq.resize(row * size_t(M));
    for (int64_t m = 0; m < M; ++m) tpp::quant::quantize_row(wt, wf.data() + m * K, K, wq.data() + size_t(m) * row);
  }
  std::vector<float> y(size_t(N * M));
  for (auto _ : state) {
    switch (wt) {
      case tpp::DType::bf16: k.matmul_bf16(y.data(), x.data(), wb.data(), N, K, 0, M, M); break;
      case tpp::DType::q8_0: k.matmul_q8_0(y.data(), x.data(), wq.data(), N, K, 0, M, M); break;
      case tpp::DType::q4_0: k.matmul_q4_0(y.data(), x.data(), wq.data(), N, K, 0, M, M); break;
      default: k.matmul_f32(y.data(), x.data(), wf.data(), N, K, 0, M, M);
    }
    benchmark::DoNotOptimize(y.data());
  }
  const double flops = 2.0 * double(N * K * M), bytes = double(tpp::dtype_bytes(wt, K)) * double(M);
  state.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["weight_GB/s"] = benchmark::Counter(bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void BM_Linear(benchmark::State& state, Isa isa, tpp::DType wt) {
  const int64_t N = state.range(0), K = state.range(1), M = state.range(2);
  tpp::kernels::set_isa(isa);
  const auto x = random(size_t(N * K), 1);
  const auto wf = random(size_t(M * K), 2);
  const int64_t row = tpp::dtype_bytes(wt, K), bytes = row * M;
  // Decode: ~256 MB of distinct weights per cycle, more than any cache.
  const size_t copies = N == 1 ? size_t(std::max<int64_t>(1, (int64_t(256) << 20) / bytes)) : 1;
  std::vector<std::vector<std::byte>> stored(copies), packed(copies);
  std::vector<tpp::MatrixRef> w(copies);
  for (size_t c = 0; c < copies; ++c) {
    if (c == 0) {
      stored[c].resize(size_t(bytes));
      for (int64_t m = 0; m < M; ++m) {
        if (wt == tpp::DType::bf16)
          for (int64_t i = 0; i < K; ++i) {
            const uint16_t h = tpp::f32_to_bf16(wf[size_t(m * K + i)]);
            std::memcpy(stored[c].data() + m * row + 2 * i, &h, 2);
          }
        else
          tpp::quant::quantize_row(wt, wf.data() + m * K, K, stored[c].data() + m * row);
      }
    } else {
      stored[c] = stored[0];
    }
    w[c] = tpp::MatrixRef{wt, stored[c].data(), M, K};
    const auto& k = tpp::kernels::kernels();
    if (wt == tpp::DType::bf16 ? k.matmul_bf16_packed != nullptr : k.quantize_q8 != nullptr) {
      packed[c].resize(size_t(tpp::kernels::packed_bytes(wt, M, K)));
      tpp::kernels::pack_rows(wt, packed[c].data(), stored[c].data(), M, K);
      w[c].packed = packed[c].data();
    }
  }
  tpp::ThreadPool pool(2);
  std::vector<float> y(size_t(N * M));
  size_t c = 0;
  for (auto _ : state) {
    tpp::linear_forward(y.data(), x.data(), N, w[c], {}, pool);
    c = (c + 1) % w.size();
    benchmark::DoNotOptimize(y.data());
  }
  tpp::kernels::set_isa(tpp::kernels::supported_isas().back());
  state.counters["GOP/s"] = benchmark::Counter(2e-9 * double(N * K * M), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["weight_GB/s"] = benchmark::Counter(double(bytes) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void BM_Attention(benchmark::State& state, bool naive) {
  const int h = 9, g = 3, k = 64;
  const int64_t T = state.range(0);
  const auto q = random(size_t(T * h * k), 3), kk = random(size_t(T * g * k), 4), vv = random(size_t(T * g * k), 5);
  std::vector<float> out(q.size());
  const tpp::KvSegment seg{kk.data(), vv.data(), k, int64_t(g) * k, 0, T, 0};
  const tpp::AttentionShape shape{h, g, k, 0.125f, 0, false, 0};
  tpp::ThreadPool pool(1);
  for (auto _ : state) {
    if (naive) tpp::attention_naive(out.data(), q.data(), T, 0, std::span(&seg, 1), shape);
    else tpp::attention_forward(out.data(), q.data(), T, 0, std::span(&seg, 1), shape, pool);
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * 2 * h * k * double(T) * double(T + 1) / 2 * 1e-9,
                                                 benchmark::Counter::kIsIterationInvariantRate);
}

// One decode step of attention (one query row) over a KV cache of T
// positions in type t at a Llama-3.2-1B layer's shape (32 query heads on 8
// KV heads of 64), two threads: the step streams K and V once, so the cache's
// bytes set its speed.
void BM_AttentionDecode(benchmark::State& state, tpp::DType t) {
  const int h = 32, g = 8, k = 64;
  const int64_t T = state.range(0);
  const auto q = random(size_t(h * k), 6), kk = random(size_t(g * T * k), 7), vv = random(size_t(g * T * k), 8);
  const int64_t row_bytes = tpp::dtype_bytes(t, k);
  std::vector<std::byte> kq(size_t(g * T * row_bytes)), vq(kq.size());
  for (int64_t r = 0; r < g * T; ++r)
    for (auto [src, dst] : {std::pair{&kk, &kq}, std::pair{&vv, &vq}}) {
      const float* x = src->data() + r * k;
      std::byte* b = dst->data() + r * row_bytes;
      if (t == tpp::DType::f32 || t == tpp::DType::q8_0) {
        if (t == tpp::DType::f32) std::memcpy(b, x, size_t(k) * sizeof(float));
        else tpp::quant::quantize_row(t, x, k, b);
        continue;
      }
      for (int i = 0; i < k; ++i) {
        const uint16_t u = t == tpp::DType::f16 ? tpp::f32_to_f16(x[i]) : tpp::f32_to_bf16(x[i]);
        std::memcpy(b + 2 * i, &u, 2);
      }
    }
  tpp::KvSegment seg;
  seg.type = t;
  seg.kq = kq.data();
  seg.vq = vq.data();
  seg.head_bytes = T * row_bytes;
  seg.row_bytes = row_bytes;
  seg.pos_end = T;
  if (t == tpp::DType::f32) {
    seg.k = reinterpret_cast<const float*>(kq.data());
    seg.v = reinterpret_cast<const float*>(vq.data());
    seg.head_stride = T * k;
    seg.pos_stride = k;
  }
  const tpp::AttentionShape shape{h, g, k, 0.125f, 0, false, 0};
  tpp::ThreadPool pool(2);
  std::vector<float> out(q.size());
  for (auto _ : state) {
    tpp::attention_forward(out.data(), q.data(), 1, T, std::span(&seg, 1), shape, pool);
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["kv_GB/s"] =
      benchmark::Counter(double(2 * kq.size()) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

// The training backward of one linear layer (dx and dW; ops/linear.cpp, two
// threads) at the SmolLM2-135M FFN shape, 1,024 tokens: bf16 weights (both
// packed forms, as bf16 training keeps them) against f32 weights.
void BM_LinearBackward(benchmark::State& state, tpp::DType wt) {
  const int64_t N = state.range(0), K = state.range(1), M = state.range(2);
  const auto x = random(size_t(N * K), 1), dy = random(size_t(N * M), 3);
  auto wf = random(size_t(M * K), 2);
  std::vector<uint16_t> wb;
  std::vector<std::byte> fwd, bwd;
  tpp::MatrixRef w{tpp::DType::f32, wf.data(), M, K};
  if (wt == tpp::DType::bf16) {
    if (!tpp::kernels::kernels().matmul_bf16_packed) {
      state.SkipWithError("this CPU has no bf16 dot kernels");
      return;
    }
    wb.resize(wf.size());
    for (size_t i = 0; i < wf.size(); ++i) wb[i] = tpp::f32_to_bf16(wf[i]);
    fwd.resize(size_t(tpp::kernels::packed_bytes(wt, M, K)));
    bwd.resize(size_t(tpp::kernels::packed_bytes(wt, K, M)));
    tpp::kernels::pack_rows(wt, fwd.data(), wb.data(), M, K);
    const int64_t groups = (K + tpp::kernels::kPackRows - 1) / tpp::kernels::kPackRows;
    tpp::kernels::pack_bf16_transposed(bwd.data(), wb.data(), K, M, K, 0, groups);
    w = tpp::MatrixRef{wt, wb.data(), M, K};
    w.packed = fwd.data();
    w.packed_t = bwd.data();
  }
  tpp::ThreadPool pool(2);
  std::vector<float> dx(size_t(N * K)), dw(size_t(M * K));
  for (auto _ : state) {
    tpp::linear_backward<float>(dx.data(), false, {dw.data()}, dy.data(), x.data(), N, w, pool);
    benchmark::DoNotOptimize(dw.data());
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(4e-9 * double(N * K * M), benchmark::Counter::kIsIterationInvariantRate);
}

// One AdamW step over 134.5 M parameters (the SmolLM2-135M shape), two
// threads: GB/s of parameters, gradients and moments read and written.
void BM_AdamW(benchmark::State& state) {
  const int64_t n = 134515008;
  std::vector<float> p(size_t(n), 0.5f), g(size_t(n), 0.01f);
  tpp::train::AdamW adam(n, {{0, n}}, {0.9, 0.95, 1e-8, 0.1});
  tpp::ThreadPool pool(2);
  for (auto _ : state) {
    adam.step(p.data(), g.data(), 1e-3, pool);
    benchmark::DoNotOptimize(p.data());
  }
  state.counters["GB/s"] = benchmark::Counter(28e-9 * double(n), benchmark::Counter::kIsIterationInvariantRate);
}

void register_all() {
  for (Isa isa : tpp::kernels::supported_isas()) {
    const std::string name(tpp::kernels::isa_name(isa));
    for (tpp::DType wt : {tpp::DType::f32, tpp::DType::bf16, tpp::DType::q8_0, tpp::DType::q4_0}) {
      const std::string label = "matmul_" + std::string(tpp::dtype_name(wt)) + "/" + name;
      auto* b = benchmark::RegisterBenchmark(label.c_str(), BM_Matmul, isa, wt);
      b->Args({1, 576, 1536})->Args({1, 576, 49152})->Unit(benchmark::kMicrosecond);
      // Prefill with block-quantised weights widens a few rows at a time and
      // runs the f32 kernel (ops/linear.cpp), so only decode shapes time them.
      if (!tpp::is_block_dtype(wt)) b->Args({512, 576, 1536});
      if (isa == Isa::scalar) b->Iterations(3);
    }
  }
  for (Isa isa : tpp::kernels::supported_isas()) {
    if (isa < Isa::avx512) continue;
    const std::string name(tpp::kernels::isa_name(isa));
    for (tpp::DType wt : {tpp::DType::bf16, tpp::DType::q8_0, tpp::DType::q4_0}) {
      const std::string label = "linear_" + std::string(tpp::dtype_name(wt)) + "/" + name;
      benchmark::RegisterBenchmark(label.c_str(), BM_Linear, isa, wt)
          ->Args({1, 2048, 8192})
          ->Args({512, 2048, 2048})
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
    }
  }
  for (tpp::DType wt : {tpp::DType::f32, tpp::DType::bf16}) {
    const std::string label = "linear_backward_" + std::string(tpp::dtype_name(wt));
    benchmark::RegisterBenchmark(label.c_str(), BM_LinearBackward, wt)
        ->Args({1024, 576, 1536})
        ->Args({1024, 1536, 576})
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  }
  benchmark::RegisterBenchmark("adamw", BM_AdamW)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(5);
  benchmark::RegisterBenchmark("attention/fused", BM_Attention, false)->Arg(512)->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("attention/naive", BM_Attention, true)->Arg(512)->Unit(benchmark::kMillisecond);
  for (tpp::DType t : {tpp::DType::f32, tpp::DType::f16, tpp::DType::bf16, tpp::DType::q8_0}) {
    const std::string label = "attention_decode_" + std::string(tpp::dtype_name(t));
    benchmark::RegisterBenchmark(label.c_str(), BM_AttentionDecode, t)
        ->Arg(4096)
        ->Arg(32768)
        ->Unit(benchmark::kMicrosecond)
        ->UseRealTime();
  }
}

// Prints each benchmark's speed-up over its scalar (or naive) baseline.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const auto& r : runs) {
      std::string name = r.benchmark_name();
      if (auto at = name.find("/iterations:"); at != std::string::npos) name.erase(at);
      seconds_per_iter()[name] = r.GetAdjustedRealTime();
    }
  }
  void Finalize() override {
    ConsoleReporter::Finalize();
    std::printf("\nspeed-up over the in-run baseline:\n");
    for (const auto& [name, t] : seconds_per_iter()) {
      std::string base = name;
      if (name.rfind("linear_", 0) == 0) continue;
      if (auto p = base.find("/avx"); p != std::string::npos) base.replace(p, base.find('/', p + 1) - p, "/scalar");
      else if (auto f = base.find("fused"); f != std::string::npos) base.replace(f, 5, "naive");
      else continue;
      if (auto it = seconds_per_iter().find(base); it != seconds_per_iter().end())
        std::printf("  %-40s %8.1fx  (vs %s)\n", name.c_str(), it->second / t, base.c_str());
    }
    std::printf("\nlinear layers, each level over avx512 (f32 activations, weights widened):\n");
    for (const auto& [name, t] : seconds_per_iter()) {
      const auto at = name.find("/avx512");
      if (name.rfind("linear_", 0) != 0 || at == std::string::npos || name.find("/avx512/") != std::string::npos) continue;
      const auto level_end = name.find('/', at + 1);
      const std::string base = name.substr(0, at) + "/avx512" + name.substr(level_end);
      if (auto it = seconds_per_iter().find(base); it != seconds_per_iter().end())
        std::printf("  %-40s %8.2fx  (vs %s)\n", name.c_str(), it->second / t, base.c_str());
    }
    std::printf("\nlinear backward, bf16 weights over f32 weights:\n");
    for (const auto& [name, t] : seconds_per_iter()) {
      if (name.rfind("linear_backward_bf16", 0) != 0) continue;
      const std::string base = "linear_backward_f32" + name.substr(name.find('/'));
      if (auto it = seconds_per_iter().find(base); it != seconds_per_iter().end())
        std::printf("  %-40s %8.2fx  (vs %s)\n", name.c_str(), it->second / t, base.c_str());
    }
    std::printf("\nattention decode, each KV cache type over f32:\n");
    for (const auto& [name, t] : seconds_per_iter()) {
      if (name.rfind("attention_decode_", 0) != 0 || name.rfind("attention_decode_f32", 0) == 0) continue;
      const std::string base = "attention_decode_f32" + name.substr(name.find('/'));
      if (auto it = seconds_per_iter().find(base); it != seconds_per_iter().end())
        std::printf("  %-40s %8.2fx  (vs %s)\n", name.c_str(), it->second / t, base.c_str());
    }
    std::printf("\nspeed-up of smaller weights over f32 weights, same kernels:\n");
    for (const auto& [name, t] : seconds_per_iter()) {
      if (name.rfind("matmul_", 0) != 0 || name.rfind("matmul_f32/", 0) == 0) continue;
      const std::string base = "matmul_f32" + name.substr(name.find('/'));
      if (auto it = seconds_per_iter().find(base); it != seconds_per_iter().end())
        std::printf("  %-40s %8.2fx  (vs %s)\n", name.c_str(), it->second / t, base.c_str());
    }
  }
};

}  // namespace

int main(int argc, char** argv) {
  register_all();
  benchmark::Initialize(&argc, argv);
  RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  return 0;
}
