// tpp train / tpp eval.
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "commands.h"
#include "tpp/core/error.h"
#include "tpp/model/model.h"
#include "tpp/report/loss_curve.h"
#include "tpp/train/trainer.h"

namespace tpp::cli {

Run add_train(CLI::App& app) {
  struct Opts {
    train::TrainOptions t;
    std::string resume;
    bool quiet = false;
  };
  auto o = std::make_shared<Opts>();
  train::TrainOptions& t = o->t;
  app.add_option("--config", t.config, "model config JSON: train from scratch");
  app.add_option("--init", t.init, "model directory to start from (fine-tuning, uptraining)");
  app.add_option("--resume", o->resume, "continue the run whose checkpoints are in DIR (its options are reused)");
  app.add_option("--data", t.data, "training text file(s)")->expected(1, -1);
  app.add_option("--val", t.val, "validation text file(s); default: every 10th block of --data held out")
      ->expected(1, -1);
  app.add_option("--out", t.out, "output directory: model, checkpoints, metrics.jsonl, loss.svg");
  app.add_option("--steps", t.steps, "optimizer steps")->check(CLI::PositiveNumber);
  app.add_option("--tokens", t.tokens, "token budget (sets the steps)")->check(CLI::PositiveNumber);
  app.add_option("--batch", t.batch, "sequences per micro-batch")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--seq", t.seq, "tokens per sequence")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--lr", t.lr, "peak learning rate")->capture_default_str();
  app.add_option("--min-lr", t.min_lr, "final learning rate of the cosine decay (default lr/10)");
  app.add_option("--warmup", t.warmup, "linear warm-up steps (default 5 % of the steps)");
  app.add_option("--weight-decay", t.weight_decay, "AdamW decoupled weight decay")->capture_default_str();
  app.add_flag("--decay-embeddings", t.decay_embeddings, "also decay the embedding matrices");
  app.add_option("--beta1", t.beta1, "AdamW beta1")->capture_default_str();
  app.add_option("--beta2", t.beta2, "AdamW beta2")->capture_default_str();
  app.add_option("--clip", t.clip, "global gradient-norm clipping (0 = off)")->capture_default_str();
  app.add_option("--grad-accum", t.grad_accum, "micro-batches per step")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_flag("--bf16", t.bf16, "bf16 compute (f32 master weights and optimizer state)");
  app.add_option("--seed", t.seed, "seed of the initialisation and the batch order")->capture_default_str();
  app.add_option("--eval-every", t.eval_every, "steps between evaluations (default: 10 per run; 0 = at the end)");
  app.add_option("--eval-tokens", t.eval_tokens, "validation tokens per evaluation")->capture_default_str();
  app.add_option("--save-every", t.save_every, "steps between checkpoints (default: 10 per run; 0 = at the end)");
  app.add_option("--stop-after", t.stop_after, "end after N steps as if interrupted (the schedule still plans --steps)");
  app.add_option("-t,--threads", t.threads, "threads (default: all cores)")->check(CLI::NonNegativeNumber);
  app.add_flag("-q,--quiet", o->quiet, "no progress output");
  return [o] {
    train::TrainOptions opts = o->t;
    opts.progress = !o->quiet;
    const bool resume = !o->resume.empty();
    if (resume) {
      TPP_CHECK(opts.out.empty() || opts.out == o->resume, "train: --resume DIR writes to DIR; drop --out");
      opts.out = o->resume;
    } else {
      TPP_CHECK(!opts.data.empty(), "train: --data FILE is required");
    }
    const auto r = train::run_training(opts, resume);
    report::write_loss_curve(opts.out);
    if (!o->quiet) {
      if (r.val_loss > 0)
        fmt::print("step {}: train loss {:.4f}, validation loss {:.4f}, {:.4f} bits per byte\n", r.step, r.loss,
                   r.val_loss, r.val_bpb);
      fmt::print("throughput {:.0f} tokens/s; activations {:.1f} MB; peak memory {:.1f} MB\n", r.tokens_per_s,
                 double(r.graph_bytes) / 1e6, double(r.peak_rss) / 1e6);
      fmt::print("wrote {}/ (model, checkpoint, metrics.jsonl, loss.svg)\n", opts.out);
    }
    return 0;
  };
}

Run add_eval(CLI::App& app) {
  struct Opts {
    std::string model;
    std::vector<std::string> data;
    int64_t seq = 256, batch = 8, max_tokens = 0;
    int threads = 0;
    bool held_out = false;
  };
  auto o = std::make_shared<Opts>();
  app.add_option("-m,--model", o->model, "model directory (tpp or Hugging Face) or GGUF file")->required();
  app.add_option("--data", o->data, "text file(s) to evaluate on")->required()->expected(1, -1);
  app.add_option("--seq", o->seq, "tokens per window")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--batch", o->batch, "windows per forward pass")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--max-tokens", o->max_tokens, "evaluate at most this many tokens (0 = all)");
  app.add_flag("--held-out", o->held_out,
               "evaluate only the part of --data that tpp train holds out for validation when given no --val");
  app.add_option("-t,--threads", o->threads, "threads (default: all cores)")->check(CLI::NonNegativeNumber);
  return [o] {
    const Model model = load_model(o->model);
    const auto layout = train::make_layout(model.config);
    const auto params = train::params_from_model(model, layout);
    train::TextData data = train::load_text_files(o->data);
    if (o->held_out) {
      train::TextData kept, held;
      train::split_train_val(data, kept, held);
      data = std::move(held);
    }
    ThreadPool pool(o->threads);
    train::Graph<float> graph(model.config, layout);
    int64_t seq = o->seq;
    if (model.config.pos_encoding == PosEncoding::learned) seq = std::min<int64_t>(seq, model.config.max_seq_len);
    const auto r = train::evaluate(graph, params.data(), data, seq, o->batch,
                                   o->max_tokens > 0 ? o->max_tokens : int64_t(data.tokens.size()), pool);
    fmt::print("tokens      {}\n", r.tokens);
    fmt::print("loss        {:.4f} nats per token\n", r.loss);
    fmt::print("perplexity  {:.3f}\n", std::exp(r.loss));
    fmt::print("bpb         {:.4f} bits per byte\n", r.bits_per_byte);
    return 0;
  };
}

}  // namespace tpp::cli
