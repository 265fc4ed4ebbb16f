#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "checks.h"
#include "commands.h"
#include "tpp/core/error.h"
#include "tpp/core/rng.h"
#include "tpp/kernels/api.h"
#include "tpp/model/kv_cache.h"
#include "tpp/model/model.h"
#include "tpp/model/transformer.h"

namespace tpp::cli {
namespace {

using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

// Read bandwidth measured in this run: the workers stream a 256 MiB buffer
// (much larger than the caches) as a decode step streams an f32 matrix of
// rows of 16 KiB, with the fastest f32 decode kernel this CPU has (the packed
// one reads its 16-row groups as single streams); best of several passes.
double measure_bandwidth(ThreadPool& pool) {
  constexpr int64_t kCols = 4096;
  const int64_t rows = (int64_t(256) << 20) / int64_t(sizeof(float)) / kCols;
  std::vector<float> buf(static_cast<size_t>(rows * kCols), 1.0f), ones(kCols, 1.0f), sums(static_cast<size_t>(rows));
  const auto& k = kernels::kernels();
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    const auto t0 = clock_type::now();
    pool.parallel_for(size_t(rows), 16, [&](size_t b, size_t e, size_t) {
      // (All ones: the buffer is its own packed form.)
      if (k.matmul_f32_packed) k.matmul_f32_packed(sums.data(), ones.data(), buf.data(), 1, kCols, int64_t(b), int64_t(e), rows, false);
      else k.matmul_f32(sums.data(), ones.data(), buf.data(), 1, kCols, int64_t(b), int64_t(e), rows);
    });
    best = std::max(best, double(buf.size() * sizeof(float)) / seconds_since(t0));
  }
  return best;
}

// Tokens/s over the repetitions: the best (the figure reported), the mean
// and the sample standard deviation (as llama-bench reports).
struct Spread {
  double best = 0, mean = 0, sd = 0;
};

Spread spread(const std::vector<double>& v) {
  Spread s;
  for (double x : v) {
    s.best = std::max(s.best, x);
    s.mean += x / double(v.size());
  }
  if (v.size() > 1) {
    for (double x : v) s.sd += (x - s.mean) * (x - s.mean);
    s.sd = std::sqrt(s.sd / double(v.size() - 1));
  }
  return s;
}

}  // namespace

Run add_bench(CLI::App& app) {
  struct Opts {
    std::string model, output = "text", kv_type;
    int prompt = 512, n = 128, threads = 0, reps = 2;
  };
  auto o = std::make_shared<Opts>();
  app.add_option("-m,--model", o->model, "model directory (tpp or Hugging Face) or GGUF file")->required();
  app.add_option("-p", o->prompt, "prompt tokens for the prefill test")->check(positive());
  app.add_option("-n", o->n, "tokens for the decode test")->check(positive());
  app.add_option("-t,--threads", o->threads, "threads; 0 = all cores")->check(non_negative());
  app.add_option("-r,--reps", o->reps, "repetitions (best is reported)")->check(positive());
  add_kv_type_option(app, o->kv_type);
  app.add_option("-o,--output", o->output, "text or json (one object, for scripts)")
      ->check(CLI::IsMember({"text", "json"}));
  return [o] {
    const auto t_load = clock_type::now();
    const Model model = load_model(o->model);
    const double load_s = seconds_since(t_load);
    const ModelConfig& c = model.config;
    ThreadPool pool(o->threads);
    Transformer transformer(model, std::min(o->prompt, 512));
    const DType kv_type = check_kv_type(*parse_dtype(o->kv_type), c.head_dim_resolved(), "--kv-type");
    KvCache cache(c, std::min<int64_t>(c.max_seq_len, o->prompt + o->n), kv_type);
    TPP_CHECK(o->prompt + o->n <= c.max_seq_len, "bench: -p {} + -n {} exceed max_seq_len {}", o->prompt, o->n, c.max_seq_len);
    std::vector<int32_t> tokens(static_cast<size_t>(o->prompt + o->n));
    const CounterRng rng(1234, 0);
    for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = int32_t(rng.bits(i) % uint64_t(c.vocab_size));
    std::vector<float> logits(static_cast<size_t>(c.vocab_size));

    std::vector<double> prefills, decodes;
    for (int rep = 0; rep < o->reps; ++rep) {
      cache.clear();
      auto t0 = clock_type::now();
      transformer.forward(cache, std::span(tokens.data(), size_t(o->prompt)), logits.data(), false, pool);
      prefills.push_back(o->prompt / seconds_since(t0));
      t0 = clock_type::now();
      for (int i = 0; i < o->n; ++i)
        transformer.forward(cache, std::span(tokens.data() + o->prompt + i, 1), logits.data(), false, pool);
      decodes.push_back(o->n / seconds_since(t0));
    }
    const Spread prefill_spread = spread(prefills), decode_spread = spread(decodes);
    const double prefill = prefill_spread.best, decode = decode_spread.best;
    const double bandwidth = measure_bandwidth(pool);
    const double bytes_per_token = double(model.weights.matrix_bytes_per_token());
    const double matmul_ops = 2.0 * double(model.weights.matrix_elements_per_token());
    // Each decoded token also reads the KV cache it has so far.
    double kv_bytes_per_token = 0;
    for (int i = 0; i < o->n; ++i) kv_bytes_per_token += double(kv_cache_bytes(c, o->prompt + i + 1, kv_type)) / o->n;
    const double roofline = (bytes_per_token + kv_bytes_per_token) * decode / bandwidth;
    const std::string dtype(dtype_name(model.weights.layers[0][TensorId::attn_q].dtype));
    const std::string simd(kernels::isa_name(kernels::kernels().isa));
    if (o->output == "json") {
      const nlohmann::json j = {{"model", o->model},
                                {"params", c.n_params()},
                                {"dtype", dtype},
                                {"simd", simd},
                                {"threads", pool.size()},
                                {"load_s", load_s},
                                {"prompt_tokens", o->prompt},
                                {"prefill_tokens_per_s", prefill},
                                {"prefill_tokens_per_s_mean", prefill_spread.mean},
                                {"prefill_tokens_per_s_sd", prefill_spread.sd},
                                {"prefill_matmul_gops", prefill * matmul_ops * 1e-9},
                                {"decode_tokens", o->n},
                                {"decode_tokens_per_s", decode},
                                {"decode_tokens_per_s_mean", decode_spread.mean},
                                {"decode_tokens_per_s_sd", decode_spread.sd},
                                {"decode_ms_per_token", 1e3 / decode},
                                {"weight_bytes_per_token", bytes_per_token},
                                {"kv_type", o->kv_type},
                                {"kv_bytes_per_position", kv_cache_bytes(c, 1, kv_type)},
                                {"kv_bytes_per_token", kv_bytes_per_token},
                                {"bandwidth_gb_per_s", bandwidth * 1e-9},
                                {"roofline", roofline}};
      fmt::print("{}\n", j.dump());
      return 0;
    }
    fmt::print("model      {} ({} params, {} weights, {:.1f} MB read per decoded token)\n", o->model,
               c.n_params(), dtype, bytes_per_token / 1e6);
    fmt::print("threads    {}   SIMD {}   loaded in {:.2f} s\n", pool.size(), simd, load_s);
    fmt::print("KV cache   {}, {} bytes per position ({:.2f} MB read per decoded token on average)\n", o->kv_type,
               kv_cache_bytes(c, 1, kv_type), kv_bytes_per_token / 1e6);
    fmt::print("prefill    pp{:<5} {:8.1f} tokens/s (mean {:.1f} ± {:.1f})   {:.0f} GOP/s in the matmuls\n", o->prompt,
               prefill, prefill_spread.mean, prefill_spread.sd, prefill * matmul_ops * 1e-9);
    fmt::print("decode     tg{:<5} {:8.1f} tokens/s (mean {:.1f} ± {:.1f})   {:.2f} ms/token\n", o->n, decode,
               decode_spread.mean, decode_spread.sd, 1e3 / decode);
    fmt::print("bandwidth  {:.1f} GB/s measured (read, {} threads)\n", bandwidth / 1e9, pool.size());
    fmt::print("roofline   {:.0f} % (decode: weight and KV bytes per token x tokens/s / bandwidth)\n", 100 * roofline);
    return 0;
  };
}

}  // namespace tpp::cli
