// The gradient exchange of data-parallel training, run under mpirun:
//   mpirun -np 2 build/release/bench/tpp_bench_grad_exchange [--params N ...] [--reps R] [-t T]
// For each parameter count: seconds per step of tpp's fixed-order exchange
// (GradientSum: MPI_Alltoallv + fold in rank order + MPI_Allgatherv, one
// round) against MPI_Allreduce(MPI_SUM) in place on the same floats, the
// order-free baseline, and their ratio. A barrier before each timed call
// keeps waiting for a late rank out of the figures; the median of R runs.
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include <CLI/CLI.hpp>

#include "tpp/train/data_parallel.h"

namespace {

using Clock = std::chrono::steady_clock;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tpp data-parallel gradient exchange: fixed order against MPI_Allreduce"};
  std::vector<int64_t> params{4'788'480, 134'515'008};  // configs/brown_4m.json, configs/smollm2_135m.json
  int reps = 5, threads = 1;
  app.add_option("--params", params, "parameter counts to exchange");
  app.add_option("--reps", reps, "timed runs per figure (median)");
  app.add_option("-t,--threads", threads, "threads per rank (the fold)");
  CLI11_PARSE(app, argc, argv);

  tpp::train::Ranks ranks = tpp::train::Ranks::join_environment();
  tpp::ThreadPool pool(threads);
  if (ranks.root())
    std::printf("%d ranks; seconds per step (median of %d)\n%14s %12s %12s %12s %10s\n", ranks.size(), reps,
                "parameters", "MB sent", "tpp ordered", "Allreduce", "ratio");
  for (const int64_t n : params) {
    tpp::train::GradientSum sum(ranks, n, ranks.size(), pool);  // one micro-batch per rank
    std::vector<float> plain(static_cast<size_t>(n));
    std::vector<double> ordered, allreduce;
    for (int r = 0; r < reps + 1; ++r) {
      float* g = sum.target(0);
      for (int64_t i = 0; i < n; ++i) g[i] = float(i % 1000) * 1e-3f + float(ranks.rank());
      MPI_Barrier(MPI_COMM_WORLD);
      auto t0 = Clock::now();
      sum.add(0);
      sum.finish();
      const double a = std::chrono::duration<double>(Clock::now() - t0).count();
      std::copy(g, g + n, plain.begin());
      MPI_Barrier(MPI_COMM_WORLD);
      t0 = Clock::now();
      // In 16 MB pieces, as MPI counts are ints.
      for (int64_t at = 0; at < n; at += int64_t(1) << 22)
        MPI_Allreduce(MPI_IN_PLACE, plain.data() + at, int(std::min<int64_t>(int64_t(1) << 22, n - at)), MPI_FLOAT,
                      MPI_SUM, MPI_COMM_WORLD);
      const double b = std::chrono::duration<double>(Clock::now() - t0).count();
      if (r > 0) {  // the first pays for page faults
        ordered.push_back(a);
        allreduce.push_back(b);
      }
    }
    if (ranks.root())
      std::printf("%14lld %12.1f %12.4f %12.4f %10.2f\n", (long long)n, 2.0 * double(sum.bytes_sent_per_round()) / 1e6,
                  median(ordered), median(allreduce), median(ordered) / median(allreduce));
  }
  return 0;
}
