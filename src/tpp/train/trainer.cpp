#include "tpp/train/trainer.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string_view>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tpp/core/dtype.h"
#include "tpp/core/error.h"
#include "tpp/io/atomic_file.h"
#include "tpp/model/model.h"
#include "tpp/train/checkpoint.h"
#include "tpp/train/data_parallel.h"
#include "tpp/train/optim.h"

namespace tpp::train {
namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

// The fields that define a run (saved in every checkpoint; a resumed run uses them).
nlohmann::json options_to_json(const TrainOptions& o) {
  return {{"config", o.config},         {"init", o.init},
          {"data", o.data},             {"val", o.val},
          {"steps", o.steps},           {"tokens", o.tokens},
          {"batch", o.batch},           {"seq", o.seq},
          {"grad_accum", o.grad_accum}, {"lr", o.lr},
          {"min_lr", o.min_lr},         {"warmup", o.warmup},
          {"weight_decay", o.weight_decay}, {"clip", o.clip},
          {"beta1", o.beta1},           {"beta2", o.beta2},
          {"decay_embeddings", o.decay_embeddings}, {"bf16", o.bf16}, {"grad_sum", o.grad_sum},
          {"seed", o.seed},             {"eval_every", o.eval_every},
          {"eval_tokens", o.eval_tokens}, {"save_every", o.save_every}};
}

TrainOptions options_from_json(const nlohmann::json& j, const std::string& source) {
  TrainOptions o;
  try {
    o.config = j.at("config").get<std::string>();
    o.init = j.at("init").get<std::string>();
    o.data = j.at("data").get<std::vector<std::string>>();
    o.val = j.at("val").get<std::vector<std::string>>();
    o.steps = j.at("steps").get<int64_t>();
    o.tokens = j.at("tokens").get<int64_t>();
    o.batch = j.at("batch").get<int64_t>();
    o.seq = j.at("seq").get<int64_t>();
    o.grad_accum = j.at("grad_accum").get<int64_t>();
    o.lr = j.at("lr").get<double>();
    o.min_lr = j.at("min_lr").get<double>();
    o.warmup = j.at("warmup").get<int64_t>();
    o.weight_decay = j.at("weight_decay").get<double>();
    o.clip = j.at("clip").get<double>();
    o.beta1 = j.at("beta1").get<double>();
    o.beta2 = j.at("beta2").get<double>();
    o.decay_embeddings = j.at("decay_embeddings").get<bool>();
    o.bf16 = j.at("bf16").get<bool>();
    o.grad_sum = j.value("grad_sum", std::string("ordered"));  // runs from before the option: ordered
    o.seed = j.at("seed").get<uint64_t>();
    o.eval_every = j.at("eval_every").get<int64_t>();
    o.eval_tokens = j.at("eval_tokens").get<int64_t>();
    o.save_every = j.at("save_every").get<int64_t>();
  } catch (const nlohmann::json::exception& e) {
    fail("{}: field 'options' is incomplete or mistyped: {}", source, e.what());
  }
  return o;
}

// Every option's range; the CLI's checks (tools/tpp/cmd_train.cpp) state the same ones.
void check_options(const TrainOptions& o, const ModelConfig& c, const TextTokenizer& tokenizer) {
  TPP_CHECK(o.batch > 0, "train: --batch {} must be positive", o.batch);
  TPP_CHECK(o.seq > 0, "train: --seq {} must be positive", o.seq);
  TPP_CHECK(o.grad_accum > 0, "train: --grad-accum {} must be positive", o.grad_accum);
  TPP_CHECK(o.steps > 0 || o.tokens > 0, "train: give the run's length with --steps N or --tokens N");
  TPP_CHECK(o.steps >= 0 && o.tokens >= 0, "train: --steps {} and --tokens {} must be positive", o.steps, o.tokens);
  TPP_CHECK(o.lr > 0 && std::isfinite(o.lr), "train: --lr {} must be a positive number", o.lr);
  TPP_CHECK(o.min_lr == -1 || (o.min_lr >= 0 && std::isfinite(o.min_lr)), "train: --min-lr {} must be >= 0",
            o.min_lr);
  TPP_CHECK(o.warmup >= -1, "train: --warmup {} must be >= 0", o.warmup);
  TPP_CHECK(o.weight_decay >= 0 && std::isfinite(o.weight_decay), "train: --weight-decay {} must be >= 0",
            o.weight_decay);
  TPP_CHECK(o.beta1 >= 0 && o.beta1 < 1, "train: --beta1 {} must be in [0, 1)", o.beta1);
  TPP_CHECK(o.beta2 >= 0 && o.beta2 < 1, "train: --beta2 {} must be in [0, 1)", o.beta2);
  TPP_CHECK(o.clip >= 0 && std::isfinite(o.clip), "train: --clip {} must be >= 0 (0 = no clipping)", o.clip);
  TPP_CHECK(o.eval_every >= -1, "train: --eval-every {} must be >= 0", o.eval_every);
  TPP_CHECK(o.eval_tokens > 0, "train: --eval-tokens {} must be positive", o.eval_tokens);
  TPP_CHECK(o.save_every >= -1, "train: --save-every {} must be >= 0", o.save_every);
  TPP_CHECK(o.stop_after >= 0, "train: --stop-after {} must be >= 0", o.stop_after);
  TPP_CHECK(o.threads >= 0, "train: --threads {} must be >= 0", o.threads);
  TPP_CHECK(o.grad_bucket_mb == 0 || (o.grad_bucket_mb >= 1e-3 && o.grad_bucket_mb <= 8192),
            "train: --grad-bucket-mb {} must be 0 (automatic) or in [0.001, 8192]", o.grad_bucket_mb);
  TPP_CHECK(o.grad_sum == "ordered" || o.grad_sum == "local", "train: --grad-sum {} must be ordered or local",
            o.grad_sum);
  if (c.pos_encoding == PosEncoding::learned)
    TPP_CHECK(o.seq <= c.max_seq_len, "train: --seq {} exceeds the model's max_seq_len {} (learned positions)",
              o.seq, c.max_seq_len);
  tokenizer.check_fits(c.vocab_size, "train");
}

int64_t planned_steps(const TrainOptions& o) {
  const int64_t step_tokens = o.batch * o.seq * o.grad_accum;
  return o.steps > 0 ? o.steps : (o.tokens + step_tokens - 1) / step_tokens;
}

// The files of a model directory that carry its tokenizer; the trained model keeps them.
constexpr const char* kTokenizerFiles[] = {"tokenizer.json", "tokenizer_config.json", "generation_config.json"};

// Makes OUT carry the run's tokenizer files: copies of the --init model's, or
// none for a byte-level run.
void place_tokenizer_files(const std::string& init, const TextTokenizer& tokenizer, const std::string& out) {
  std::error_code ec;
  if (!tokenizer.byte_level() && fs::is_regular_file(init, ec))
    fail("train: --init {}: the GGUF file's tokenizer cannot be stored next to the trained model (tpp writes "
         "tokenizer.json models); start from a Hugging Face directory with tokenizer.json",
         init);
  for (const char* name : kTokenizerFiles) {
    const fs::path src = fs::path(init) / name, dst = fs::path(out) / name;
    if (!tokenizer.byte_level() && fs::exists(src, ec)) {
      std::ifstream in(src, std::ios::binary);
      if (!in) fail("{}: cannot read", src.string());
      const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      io::write_file_atomic(dst.string(), bytes);
    } else if (fs::exists(dst, ec)) {
      fs::remove(dst, ec);  // another run's: this model must not seem to have it
      if (ec) fail("{}: cannot remove a tokenizer file of an earlier run: {}", dst.string(), ec.message());
    }
  }
}

std::string human(double v) {
  if (v >= 1e6) return fmt::format("{:.2f}M", v / 1e6);
  if (v >= 1e3) return fmt::format("{:.1f}k", v / 1e3);
  return fmt::format("{:.0f}", v);
}

std::string duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  const int64_t t = int64_t(s + 0.5);
  if (t >= 3600) return fmt::format("{}h{:02d}m", t / 3600, (t / 60) % 60);
  if (t >= 60) return fmt::format("{}m{:02d}s", t / 60, t % 60);
  return fmt::format("{}s", t);
}

// The first tensor holding a non-finite value, for the error message.
std::string first_non_finite(const ParamLayout& layout, const std::vector<float>& v) {
  for (const auto& e : layout.entries)
    for (int64_t i = 0; i < e.size; ++i)
      if (!std::isfinite(v[size_t(e.offset + i)])) return e.name;
  return "";
}

class Metrics {
 public:
  // Keeps the records of steps <= keep_through (those the checkpoint covers).
  Metrics(const std::string& path, int64_t keep_through) : path_(path) {
    if (keep_through > 0) {
      std::ifstream in(path);
      std::string line;
      while (std::getline(in, line)) {
        if (line.empty()) continue;
        auto j = nlohmann::json::parse(line, nullptr, false);
        if (j.is_discarded() || !j.contains("step")) continue;
        if (j["step"].get<int64_t>() <= keep_through) records_.push_back(std::move(j));
      }
    }
    std::string text;
    for (const auto& r : records_) text += r.dump() + "\n";
    io::write_file_atomic(path_, text);
    out_ = std::fopen(path_.c_str(), "a");
    if (!out_) fail("{}: cannot open the metrics file for appending", path_);
  }
  ~Metrics() {
    if (out_) std::fclose(out_);
  }
  void add(nlohmann::json record) {
    const std::string line = record.dump() + "\n";
    std::fwrite(line.data(), 1, line.size(), out_);
    std::fflush(out_);
    records_.push_back(std::move(record));
  }
  const std::vector<nlohmann::json>& records() const { return records_; }

 private:
  std::string path_;
  std::FILE* out_ = nullptr;
  std::vector<nlohmann::json> records_;
};

}  // namespace

namespace {

// A "Key:   N kB" line of /proc/self/status in bytes, 0 if absent.
int64_t proc_status_bytes(std::string_view key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key, 0) == 0) return std::stoll(line.substr(key.size())) * 1024;
  return 0;
}

}  // namespace

int64_t peak_rss_bytes() { return proc_status_bytes("VmHWM:"); }
int64_t rss_bytes() { return proc_status_bytes("VmRSS:"); }

EvalResult evaluate(Graph<float>& graph, const float* params, const TextData& data, int64_t T, int64_t B,
                    int64_t max_tokens, ThreadPool& pool) {
  Ranks one;
  return evaluate(graph, params, data, T, B, max_tokens, pool, one);
}

EvalResult evaluate(Graph<float>& graph, const float* params, const TextData& data, int64_t T, int64_t B,
                    int64_t max_tokens, ThreadPool& pool, Ranks& ranks) {
  const int64_t n = int64_t(data.tokens.size());
  TPP_CHECK(n >= 2, "eval: the evaluation text has {} tokens; at least 2 are needed", n);
  TPP_CHECK(data.token_bytes.size() == data.tokens.size(), "eval: {} tokens but {} byte counts", n,
            data.token_bytes.size());
  T = std::min(T, n - 1);
  // The batches: windows of T + 1 tokens, B to a batch, in the text's order.
  struct Span {
    int64_t start, rows;
  };
  std::vector<Span> batches;
  EvalResult r;
  int64_t bytes = 0;
  for (int64_t start = 0; start + T + 1 <= n && r.tokens < max_tokens;) {
    int64_t rows = 0;
    const int64_t first = start;
    for (; rows < B && start + T + 1 <= n && r.tokens + (rows + 1) * T <= std::max(max_tokens, T); ++rows, start += T)
      for (int64_t t = 0; t < T; ++t) bytes += data.token_bytes[size_t(start + t + 1)];
    if (rows == 0) break;
    batches.push_back({first, rows});
    r.tokens += rows * T;
  }
  // Batch j runs on rank j mod P; the per-batch sums meet on every rank and
  // are added in batch order, so any P gives one process's bits.
  std::vector<double> batch_nats(batches.size(), 0.0);
  std::vector<int32_t> in, tg;
  for (size_t j = size_t(ranks.rank()); j < batches.size(); j += size_t(ranks.size())) {
    in.clear();
    tg.clear();
    for (int64_t row = 0; row < batches[j].rows; ++row)
      for (int64_t t = 0; t < T; ++t) {
        const size_t i = size_t(batches[j].start + row * T + t);
        in.push_back(data.tokens[i]);
        tg.push_back(data.tokens[i + 1]);
      }
    batch_nats[j] =
        graph.forward(params, {batches[j].rows, T, in.data(), tg.data()}, pool) * double(batches[j].rows * T);
  }
  ranks.sum_disjoint(batch_nats);
  double nats = 0;
  for (double v : batch_nats) nats += v;
  r.loss = nats / double(r.tokens);
  r.bytes = bytes;
  r.bits_per_byte = nats / std::log(2.0) / double(std::max<int64_t>(bytes, 1));
  return r;
}

namespace {

// The loop shared by a new and a resumed run: ck holds the model (and, resumed,
// the optimizer state and step).
// o.grad_accum here is the step's micro-batches over all ranks.
TrainResult train_from(const TrainOptions& o, Checkpoint& ck, bool resume, const TextTokenizer& tokenizer,
                       Ranks& ranks) {
  const ModelConfig& config = ck.config;
  check_options(o, config, tokenizer);
  const ParamLayout layout = make_layout(config);
  const int P = ranks.size();
  ThreadPool pool(o.threads);
  const bool progress = o.progress && ranks.root();

  // Data.
  TextData all = load_text_files(o.data, tokenizer), train_data, val_data;
  if (o.val.empty()) split_train_val(all, train_data, val_data);
  else {
    train_data = std::move(all);
    val_data = load_text_files(o.val, tokenizer);
  }
  TPP_CHECK(int64_t(train_data.tokens.size()) > o.seq,
            "train: the training text has {} tokens, fewer than --seq {} + 1", train_data.tokens.size(), o.seq);
  const BatchSampler sampler(train_data.tokens, o.seed);

  // Schedule: M micro-batches per step, shared among the ranks.
  const int64_t B = o.batch, T = o.seq, M = o.grad_accum, step_tokens = B * T * M;
  const int64_t steps = planned_steps(o);
  TPP_CHECK(steps >= ck.step, "train: the run has done {} steps; --steps / --tokens ask for {} in all", ck.step,
            steps);
  const int64_t warmup = o.warmup >= 0 ? o.warmup : steps / 20;
  const double min_lr = o.min_lr >= 0 ? o.min_lr : o.lr / 10;
  const int64_t eval_every = o.eval_every >= 0 ? o.eval_every : std::max<int64_t>(1, steps / 10);
  const int64_t save_every = o.save_every >= 0 ? o.save_every : std::max<int64_t>(1, steps / 10);

  AdamW adam(layout.total, decay_ranges(layout, o.decay_embeddings), {o.beta1, o.beta2, 1e-8, o.weight_decay});
  std::vector<float>& params = ck.params;
  if (resume) {
    adam.m() = ck.m;
    adam.v() = ck.v;
    adam.set_steps(ck.adam_steps);
  }
  const int64_t start = resume ? ck.step : 0;
  double elapsed_before = resume ? ck.state.value("elapsed_s", 0.0) : 0.0;

  if (P > 1) {
    // Every rank must run the same steps: the same options, text and state.
    const std::string options = options_to_json(o).dump();
    ranks.check_same(hash_bytes(options.data(), options.size()), "options");
    ranks.check_same(hash_bytes(train_data.tokens.data(), train_data.tokens.size() * sizeof(int32_t)) ^
                         hash_bytes(val_data.tokens.data(), val_data.tokens.size() * sizeof(int32_t), 1),
                     "training or validation text (as tokens)");
    uint64_t state = hash_bytes(params.data(), params.size() * sizeof(float), uint64_t(start));
    if (resume)
      state ^= hash_bytes(adam.m().data(), adam.m().size() * sizeof(float), 2) ^
               hash_bytes(adam.v().data(), adam.v().size() * sizeof(float), 3);
    ranks.check_same(state, "starting parameters or optimizer state");
  }

  // Rank 0 alone writes: metrics, checkpoints, the model.
  std::unique_ptr<Metrics> metrics;
  if (ranks.root()) {
    std::error_code ec;
    fs::create_directories(o.out, ec);
    if (ec) fail("{}: cannot create the output directory: {}", o.out, ec.message());
    metrics = std::make_unique<Metrics>((fs::path(o.out) / "metrics.jsonl").string(), start);
  }

  Graph<float> graph(config, layout);
  GradientSum sum(ranks, layout.total, M, pool, o.grad_sum == "local" ? GradSum::local : GradSum::ordered,
                  int64_t(o.grad_bucket_mb * double(1 << 20)) / int64_t(sizeof(float)));
  if (P > 1) {
    // Layer l's gradients are final after its backward, the head's first, the embeddings' last.
    std::vector<GradientSum::Range> levels;
    for (const auto& e : layout.entries)
      levels.push_back({e.offset, e.size, e.layer >= 0 ? e.layer : e.embedding ? -1 : int(config.n_layers)});
    sum.set_levels(levels);
    graph.set_on_ready([&sum](int level) { sum.ready(level); });
  }
  std::vector<float>& grads = sum.grads();
  std::vector<float> compute;
  std::vector<double> micro_loss(static_cast<size_t>(M));
  std::unique_ptr<Bf16Weights> bf16;
  if (o.bf16 && Bf16Weights::supported()) bf16 = std::make_unique<Bf16Weights>(layout);
  std::vector<int32_t> inputs, targets;
  const bool tty = ::isatty(2);
  if (progress)
    std::fprintf(stderr, "training %s parameters for %lld steps of %lld tokens (%lld x %lld x %lld%s), tokenizer %s%s\n",
                 human(double(layout.total)).c_str(), (long long)steps, (long long)step_tokens, (long long)B,
                 (long long)T, (long long)M,
                 P > 1 ? fmt::format(" over {} ranks{}", P, o.grad_sum == "local" ? ", summed locally first" : "").c_str()
                       : "",
                 tokenizer.name().c_str(), resume ? fmt::format(", resuming at step {}", start).c_str() : "");

  auto save = [&](int64_t done, double elapsed) {
    ck.step = done;
    ck.adam_steps = adam.steps();
    ck.m = adam.m();
    ck.v = adam.v();
    ck.state = {{"options", options_to_json(o)},
                {"elapsed_s", elapsed},
                {"tokens", done * step_tokens},
                {"tokenizer", tokenizer.name()}};
    save_checkpoint(o.out, layout, ck);
  };

  TrainResult result;
  const auto t0 = Clock::now();
  double timed_s = 0;
  int64_t timed_steps = 0;
  int64_t s = start;
  for (; s < steps; ++s) {
    if (o.stop_after > 0 && s - start >= o.stop_after) break;
    const auto ts = Clock::now();
    // bf16 compute: the step's matrices are the f32 master weights rounded
    // to bf16 (on bf16 dot kernels where the CPU has them); the master
    // weights and the optimizer state receive the update in f32.
    const float* p = params.data();
    const ModelWeights* bw = bf16 ? &bf16->refresh(params.data(), pool) : nullptr;
    if (o.bf16 && !bf16) {
      compute = params;
      for (const auto& e : layout.entries)
        if (e.matrix)
          for (int64_t i = e.offset; i < e.offset + e.size; ++i) compute[size_t(i)] = bf16_to_f32(f32_to_bf16(compute[size_t(i)]));
      p = compute.data();
    }
    // Round k of this rank is micro-batch k * P + rank of the step, if any.
    std::fill(micro_loss.begin(), micro_loss.end(), 0.0);
    for (int64_t k = 0; k < sum.rounds(); ++k) {
      const int micro = int(sum.micro_batch(k));
      if (micro < 0) {
        sum.add(k);
        continue;
      }
      sampler.sample(s, micro, B, T, inputs, targets);
      const Batch batch{B, T, inputs.data(), targets.data()};
      const double l = bw ? graph.forward(*bw, batch, pool) : graph.forward(p, batch, pool);
      if (!std::isfinite(l)) {
        const std::string bad = first_non_finite(layout, params);
        fail("train: step {}: the loss is {}; {}", s + 1, l,
             bad.empty() ? fmt::format("the parameters are finite, the first non-finite activation is {}",
                                       graph.first_non_finite())
                         : fmt::format("parameter '{}' holds a non-finite value", bad));
      }
      float* g = sum.target(k);
      if (bw) graph.backward(*bw, g, 1.0f / float(M), pool);
      else graph.backward(p, g, 1.0f / float(M), pool);
      sum.add(k);
      micro_loss[size_t(micro)] = l;
    }
    sum.finish();
    ranks.sum_disjoint(micro_loss);
    double loss = 0;
    for (double l : micro_loss) loss += l / double(M);
    const double gnorm = clip_global_norm(grads, o.clip, pool);
    if (!std::isfinite(gnorm))
      fail("train: step {}: the gradient norm is {}; gradient of '{}' is non-finite", s + 1, gnorm,
           first_non_finite(layout, grads));
    const double lr = lr_at(s, steps, warmup, o.lr, min_lr);
    adam.step(params.data(), grads.data(), lr, pool);
    const double dt = std::chrono::duration<double>(Clock::now() - ts).count();
    if (s > start) {  // the first step pays for allocations
      timed_s += dt;
      ++timed_steps;
    }
    const double tps = timed_steps > 0 ? double(timed_steps * step_tokens) / timed_s : double(step_tokens) / dt;
    const double elapsed = elapsed_before + std::chrono::duration<double>(Clock::now() - t0).count();
    nlohmann::json record = {{"step", s + 1}, {"loss", loss}, {"lr", lr}, {"grad_norm", gnorm},
                             {"tokens", (s + 1) * step_tokens}, {"tokens_per_s", tps}, {"elapsed_s", elapsed}};
    // Over ranks: the part of the step rank 0 spent exchanging gradients.
    const double reduce_s = sum.take_seconds();
    if (P > 1) record["reduce_s"] = reduce_s;
    if (metrics) metrics->add(std::move(record));
    result.loss = loss;
    result.tokens_per_s = tps;

    const bool last = s + 1 == steps;
    if ((eval_every > 0 && (s + 1) % eval_every == 0) || last) {
      const EvalResult ev = evaluate(graph, params.data(), val_data, T, B, o.eval_tokens, pool, ranks);
      if (metrics)
        metrics->add(
            {{"step", s + 1}, {"val_loss", ev.loss}, {"val_bpb", ev.bits_per_byte}, {"val_tokens", ev.tokens}});
      result.val_loss = ev.loss;
      result.val_bpb = ev.bits_per_byte;
      if (progress)
        std::fprintf(stderr, "%sstep %lld: validation loss %.4f, %.4f bits per byte\n", tty ? "\r\033[K" : "",
                     (long long)(s + 1), ev.loss, ev.bits_per_byte);
    }
    if (progress) {
      const int64_t every = std::max<int64_t>(1, steps / 20);
      if (tty || (s + 1) % every == 0 || last) {
        const int width = 24, filled = int(double(width) * double(s + 1) / double(steps));
        const double eta = double(steps - s - 1) * double(step_tokens) / std::max(tps, 1e-9);
        std::fprintf(stderr, "%s[%s%s] step %lld/%lld  loss %.4f  lr %.2e  %s tok/s  ETA %s%s",
                     tty ? "\r\033[K" : "", std::string(size_t(filled), '#').c_str(),
                     std::string(size_t(width - filled), '.').c_str(), (long long)(s + 1), (long long)steps, loss, lr,
                     human(tps).c_str(), duration(eta).c_str(), tty ? "" : "\n");
        std::fflush(stderr);
      }
    }
    if (ranks.root() && save_every > 0 && (s + 1) % save_every == 0 && !last) save(s + 1, elapsed);
  }
  if (progress && tty) std::fprintf(stderr, "\n");
  result.step = s;
  result.steps = steps;
  result.graph_bytes = graph.bytes();
  result.peak_rss = peak_rss_bytes();
  if (s == steps && ranks.root()) {
    const double elapsed = elapsed_before + std::chrono::duration<double>(Clock::now() - t0).count();
    save(s, elapsed);
    save_model(model_from_params(config, layout, params), o.out);
  }
  return result;
}

}  // namespace

TrainResult run_training(const TrainOptions& options) {
  Ranks one;
  return run_training(options, one);
}

TrainResult run_training(const TrainOptions& options, Ranks& ranks) {
  TrainOptions o = options;
  TPP_CHECK(!o.out.empty(), "train: --out DIR is required");
  TPP_CHECK(o.config.empty() != o.init.empty(), "train: give exactly one of --config FILE or --init DIR");
  Checkpoint ck;
  {
    // The model is read once, into the f32 parameters, and freed.
    const Model m = o.init.empty() ? init_model(load_config_file(o.config), o.seed) : load_model(o.init);
    ck.config = m.config;
    ck.params = params_from_model(m, make_layout(m.config));
  }
  const TextTokenizer tokenizer = o.init.empty() ? TextTokenizer() : TextTokenizer::for_model(o.init);
  check_options(o, ck.config, tokenizer);
  if (ranks.root()) {
    std::error_code ec;
    fs::create_directories(o.out, ec);
    if (ec) fail("{}: cannot create the output directory: {}", o.out, ec.message());
    place_tokenizer_files(o.init, tokenizer, o.out);
  }
  // The run is defined by its global batch: --grad-accum micro-batches on each rank.
  o.grad_accum *= ranks.size();
  return train_from(o, ck, false, tokenizer, ranks);
}

TrainResult resume_training(const ResumeOptions& r) {
  Ranks one;
  return resume_training(r, one);
}

TrainResult resume_training(const ResumeOptions& r, Ranks& ranks) {
  TPP_CHECK(!r.out.empty(), "train: --resume DIR is required");
  Checkpoint ck = load_checkpoint(r.out);
  const std::string pointer = (fs::path(r.out) / "checkpoint.json").string();
  TrainOptions o = options_from_json(ck.state.value("options", nlohmann::json::object()), pointer);
  o.out = r.out;
  o.threads = r.threads;
  o.grad_bucket_mb = r.grad_bucket_mb;
  o.stop_after = r.stop_after;
  o.progress = r.progress;
  if (r.steps > 0 || r.tokens > 0) {
    // The warm-up already applied stays as it was; the decay is re-planned.
    if (o.warmup < 0) o.warmup = planned_steps(o) / 20;
    o.steps = r.steps;
    o.tokens = r.steps > 0 ? 0 : r.tokens;
  }
  if (r.eval_every) o.eval_every = *r.eval_every;
  if (r.eval_tokens) o.eval_tokens = *r.eval_tokens;
  if (r.save_every) o.save_every = *r.save_every;
  // The tokenizer is the one the run copied into its directory at the start.
  const TextTokenizer tokenizer = TextTokenizer::for_model(r.out);
  const std::string saved = ck.state.value("tokenizer", std::string("byte-level"));
  TPP_CHECK(saved == tokenizer.name(), "{}: the run trained with the {} tokenizer, but {} now holds {}", pointer,
            saved, r.out, tokenizer.byte_level() ? "no tokenizer.json" : tokenizer.name());
  return train_from(o, ck, true, tokenizer, ranks);
}

}  // namespace tpp::train
