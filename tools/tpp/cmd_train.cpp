// tpp train / tpp eval.
#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "checks.h"
#include "commands.h"
#include "tpp/core/error.h"
#include "tpp/model/model.h"
#include "tpp/report/loss_curve.h"
#include "tpp/train/trainer.h"

namespace tpp::cli {
namespace {

// Options a resumed run keeps from its checkpoint, with the reason: changing
// any of them mid-run would make the remaining steps differ from the run's.
// (--steps / --tokens, --eval-every, --eval-tokens, --save-every, --stop-after,
// -t and -q may change; see train::ResumeOptions.)
struct Fixed {
  const char* option;
  const char* why;
};
constexpr Fixed kFixedOnResume[] = {
    {"--config", "the model is the checkpoint's"},
    {"--init", "the model is the checkpoint's"},
    {"--data", "the remaining batches are drawn from the run's data"},
    {"--val", "the run's split of --data into training and validation text would change"},
    {"--batch", "it shapes every step's batch"},
    {"--seq", "it shapes every step's batch"},
    {"--grad-accum", "it shapes every step's batch"},
    {"--seed", "it fixes the batch order"},
    {"--lr", "the learning-rate schedule is part of the run"},
    {"--min-lr", "the learning-rate schedule is part of the run"},
    {"--warmup", "the learning-rate schedule is part of the run"},
    {"--weight-decay", "the optimizer is part of the run"},
    {"--decay-embeddings", "the optimizer is part of the run"},
    {"--beta1", "the optimizer is part of the run"},
    {"--beta2", "the optimizer is part of the run"},
    {"--clip", "the optimizer is part of the run"},
    {"--bf16", "the arithmetic is part of the run"},
    {"--grad-sum", "the arithmetic is part of the run"},
};

// -t 0 under mpirun: this machine's cores shared among its ranks.
int default_threads(int threads, const train::Ranks& ranks) {
  if (threads > 0 || ranks.local_size() == 1) return threads;
  return std::max(1, int(std::thread::hardware_concurrency()) / ranks.local_size());
}

struct TrainCommand {
  train::TrainOptions t;
  std::string resume;
  bool quiet = false;
};

// One rank's part of `tpp train` (the whole run without mpirun).
int run_train(const TrainCommand& o, CLI::App& cmd, train::Ranks& ranks) {
  train::TrainResult r;
  std::string out = o.t.out;
  const int threads = default_threads(o.t.threads, ranks);
  if (!o.resume.empty()) {
    for (const auto& f : kFixedOnResume)
      if (cmd.count(f.option) > 0)
        fail("train --resume: {} cannot change in a resumed run ({}); drop it, or start a new run from the "
             "run's model with --init",
             f.option, f.why);
    TPP_CHECK(out.empty() || out == o.resume, "train: --resume DIR writes to DIR; drop --out");
    out = o.resume;
    train::ResumeOptions ro;
    ro.out = out;
    ro.steps = o.t.steps;
    ro.tokens = o.t.tokens;
    if (cmd.count("--eval-every") > 0) ro.eval_every = o.t.eval_every;
    if (cmd.count("--eval-tokens") > 0) ro.eval_tokens = o.t.eval_tokens;
    if (cmd.count("--save-every") > 0) ro.save_every = o.t.save_every;
    ro.stop_after = o.t.stop_after;
    ro.threads = threads;
    ro.grad_bucket_mb = o.t.grad_bucket_mb;
    ro.progress = !o.quiet;
    r = train::resume_training(ro, ranks);
  } else {
    TPP_CHECK(!o.t.data.empty(), "train: --data FILE is required");
    train::TrainOptions opts = o.t;
    opts.threads = threads;
    opts.progress = !o.quiet;
    r = train::run_training(opts, ranks);
  }
  if (!ranks.root()) return 0;
  report::write_loss_curve(out);
  if (!o.quiet) {
    if (r.val_loss > 0)
      fmt::print("step {}: train loss {:.4f}, validation loss {:.4f}, {:.4f} bits per byte\n", r.step, r.loss,
                 r.val_loss, r.val_bpb);
    fmt::print("throughput {:.0f} tokens/s; activations {:.1f} MB; peak memory {:.1f} MB\n", r.tokens_per_s,
               double(r.graph_bytes) / 1e6, double(r.peak_rss) / 1e6);
    fmt::print("wrote {}/ ({}, metrics.jsonl, loss.svg)\n", out,
               r.step == r.steps ? "model, checkpoint" : fmt::format("checkpoint; {} of {} steps", r.step, r.steps));
  }
  return 0;
}

struct EvalCommand {
  std::string model;
  std::vector<std::string> data;
  int64_t seq = 0, batch = 0, max_tokens = 0;
  int threads = 0;
  bool held_out = false, allow_longer = false;
};

// One rank's part of `tpp eval`.
int run_eval(const EvalCommand& o, train::Ranks& ranks) {
  const Model model = load_model(o.model);
  const ModelConfig& c = model.config;
  const train::TextTokenizer tokenizer = train::TextTokenizer::for_model(o.model);
  tokenizer.check_fits(c.vocab_size, "eval");
  const int64_t seq = o.seq > 0 ? o.seq : c.max_seq_len;
  if (seq > c.max_seq_len) {
    TPP_CHECK(c.pos_encoding != PosEncoding::learned,
              "eval: --seq {} exceeds the model's max_seq_len {}, the positions it has learned embeddings for",
              seq, c.max_seq_len);
    TPP_CHECK(o.allow_longer,
              "eval: --seq {} exceeds the model's max_seq_len {}: it would measure positions the model was not "
              "trained on; pass --allow-longer to do so",
              seq, c.max_seq_len);
    fmt::print(stderr,
               "warning: windows of {} tokens exceed the model's max_seq_len {}: the figures include positions "
               "the model was not trained on\n",
               seq, c.max_seq_len);
  }
  const auto layout = train::make_layout(c);
  const auto params = train::params_from_model(model, layout);
  train::TextData data = train::load_text_files(o.data, tokenizer);
  if (o.held_out) {
    train::TextData kept, held;
    train::split_train_val(data, kept, held);
    data = std::move(held);
  }
  ThreadPool pool(default_threads(o.threads, ranks));
  train::Graph<float> graph(c, layout);
  const int64_t batch = o.batch > 0 ? o.batch : std::max<int64_t>(1, 4096 / seq);
  const auto r = train::evaluate(graph, params.data(), data, seq, batch,
                                 o.max_tokens > 0 ? o.max_tokens : int64_t(data.tokens.size()), pool, ranks);
  if (!ranks.root()) return 0;
  fmt::print("tokenizer   {}\n", tokenizer.name());
  fmt::print("window      {} tokens (max_seq_len {})\n", std::min<int64_t>(seq, int64_t(data.tokens.size()) - 1),
             c.max_seq_len);
  fmt::print("tokens      {}\n", r.tokens);
  fmt::print("bytes       {}\n", r.bytes);
  fmt::print("loss        {:.4f} nats per token\n", r.loss);
  fmt::print("perplexity  {:.3f}\n", std::exp(r.loss));
  fmt::print("bpb         {:.4f} bits per byte\n", r.bits_per_byte);
  return 0;
}

}  // namespace

Run add_train(CLI::App& app) {
  auto o = std::make_shared<TrainCommand>();
  train::TrainOptions& t = o->t;
  app.add_option("--config", t.config, "model config JSON: train from scratch");
  app.add_option("--init", t.init,
                 "model directory to start from (fine-tuning, uptraining); its tokenizer files are copied to --out");
  app.add_option("--resume", o->resume,
                 "continue the run whose checkpoints are in DIR; may change --steps/--tokens, --eval-every, "
                 "--eval-tokens, --save-every, --stop-after, --grad-bucket-mb, -t, -q and refuses the other options");
  app.add_option("--data", t.data, "training text file(s)")->expected(1, -1)->default_str("");
  app.add_option("--val", t.val, "validation text file(s)")->expected(1, -1)->default_str("every 10th block of --data");
  app.add_option("--out", t.out, "output directory: model, checkpoints, metrics.jsonl, loss.svg");
  auto* steps = app.add_option("--steps", t.steps, "optimizer steps")->check(positive())->default_str("");
  app.add_option("--tokens", t.tokens, "token budget (sets the steps)")
      ->check(positive())
      ->default_str("")
      ->excludes(steps);
  app.add_option("--batch", t.batch, "sequences per micro-batch")->check(positive());
  app.add_option("--seq", t.seq, "tokens per sequence")->check(positive());
  app.add_option("--lr", t.lr, "peak learning rate")->check(above(0));
  app.add_option("--min-lr", t.min_lr, "final learning rate of the cosine decay")->check(at_least(0))->default_str("lr/10");
  app.add_option("--warmup", t.warmup, "linear warm-up steps")->check(non_negative())->default_str("5% of the steps");
  app.add_option("--weight-decay", t.weight_decay, "AdamW decoupled weight decay")->check(at_least(0));
  app.add_flag("--decay-embeddings", t.decay_embeddings, "also decay the embedding matrices");
  app.add_option("--beta1", t.beta1, "AdamW beta1")->check(number_in(0, false, 1, true));
  app.add_option("--beta2", t.beta2, "AdamW beta2")->check(number_in(0, false, 1, true));
  app.add_option("--clip", t.clip, "global gradient-norm clipping; 0 = off")->check(at_least(0));
  app.add_option("--grad-accum", t.grad_accum, "micro-batches per step (on each rank under mpirun)")->check(positive());
  app.add_flag("--bf16", t.bf16, "bf16 compute (f32 master weights and optimizer state)");
  app.add_option("--grad-sum", t.grad_sum,
                 "under mpirun: ordered = one process's bits for any number of ranks; local = each rank sums its "
                 "micro-batches first (fewer bytes with --grad-accum > 1, bits depend on the ranks)")
      ->check(CLI::IsMember({"ordered", "local"}));
  app.add_option("--grad-bucket-mb", t.grad_bucket_mb,
                 "under mpirun: MB of gradients per exchange message; smaller ones start earlier in the backward "
                 "(0 = 16, more with many ranks; the bits do not depend on it)")
      ->check(at_least(0));
  app.add_option("--seed", t.seed, "seed of the initialisation and the batch order");
  app.add_option("--eval-every", t.eval_every, "steps between evaluations; 0 = at the end only")
      ->check(non_negative())
      ->default_str("10 per run");
  app.add_option("--eval-tokens", t.eval_tokens, "validation tokens per evaluation")->check(positive());
  app.add_option("--save-every", t.save_every, "steps between checkpoints; 0 = at the end only")
      ->check(non_negative())
      ->default_str("10 per run");
  app.add_option("--stop-after", t.stop_after,
                 "end after N steps as if interrupted (the schedule still plans --steps); 0 = off")
      ->check(non_negative());
  app.add_option("-t,--threads", t.threads, "threads; 0 = all cores (under mpirun: shared among a machine's ranks)")
      ->check(non_negative());
  app.add_flag("-q,--quiet", o->quiet, "no progress output");
  CLI::App* cmd = &app;  // main() keeps the app alive while the command runs
  return [o, cmd] {
    // Under mpirun every rank runs this; a rank that fails stops them all
    // (returning would leave the others waiting in a collective).
    train::Ranks ranks = train::Ranks::join_environment();
    try {
      return run_train(*o, *cmd, ranks);
    } catch (const std::exception& e) {
      if (ranks.size() > 1) ranks.abort(e.what());
      throw;
    }
  };
}

Run add_eval(CLI::App& app) {
  auto o = std::make_shared<EvalCommand>();
  app.add_option("-m,--model", o->model, "model directory (tpp or Hugging Face) or GGUF file")->required();
  app.add_option("--data", o->data, "text file(s) to evaluate on")->required()->expected(1, -1)->default_str("");
  app.add_option("--seq", o->seq, "tokens per window; beyond max_seq_len only with --allow-longer")
      ->check(positive())
      ->default_str("max_seq_len");
  app.add_flag("--allow-longer", o->allow_longer,
               "allow --seq beyond the model's max_seq_len (positions it was not trained on), with a warning");
  app.add_option("--batch", o->batch, "windows per forward pass")
      ->check(positive())
      ->default_str("4096/seq");
  app.add_option("--max-tokens", o->max_tokens, "evaluate at most this many tokens; 0 = all")
      ->check(non_negative());
  app.add_flag("--held-out", o->held_out,
               "evaluate only the part of --data that tpp train holds out for validation when given no --val");
  app.add_option("-t,--threads", o->threads, "threads; 0 = all cores")->check(non_negative());
  return [o] {
    // Under mpirun the windows are shared among the ranks; rank 0 prints.
    train::Ranks ranks = train::Ranks::join_environment();
    try {
      return run_eval(*o, ranks);
    } catch (const std::exception& e) {
      if (ranks.size() > 1) ranks.abort(e.what());
      throw;
    }
  };
}

}  // namespace tpp::cli
