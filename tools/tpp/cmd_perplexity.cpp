// tpp perplexity: perplexity of a model on text, and against a base model the
// KL divergence, Δperplexity and top-token agreement (llama.cpp's figures).
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "checks.h"
#include "commands.h"
#include "tpp/core/error.h"
#include "tpp/infer/perplexity.h"
#include "tpp/model/kv_cache.h"
#include "tpp/model/model.h"
#include "tpp/train/data.h"

namespace tpp::cli {
namespace {

nlohmann::json estimate_json(const Estimate& e) { return {{"value", e.value}, {"err", e.err}}; }

}  // namespace

Run add_perplexity(CLI::App& app) {
  struct Opts {
    std::string model, base, output = "text", kv_type;
    std::vector<std::string> files;
    int64_t ctx = 0, chunks = 0;
    int threads = 0;
    bool held_out = false;
  };
  auto o = std::make_shared<Opts>();
  app.add_option("-m,--model", o->model, "model: tpp or Hugging Face directory, or GGUF file")->required();
  app.add_option("-f,--file", o->files, "text file(s) to score, joined as documents")
      ->required()
      ->expected(1, -1)
      ->default_str("");
  app.add_option("--ctx", o->ctx, "tokens per chunk; the second half of each is scored")
      ->check(at_least(4))
      ->default_str("min(512, max_seq_len)");
  app.add_option("--chunks", o->chunks, "score at most this many chunks; 0 = all")->check(non_negative());
  app.add_option("--kld-base", o->base,
                 "base model (e.g. the f32 or bf16 original) to compare with: KL divergence, Δperplexity, "
                 "top-token agreement");
  app.add_flag("--held-out", o->held_out,
               "score only the part of the text that tpp train holds out for validation when given no --val");
  add_kv_type_option(app, o->kv_type)->description(
      "the model's KV cache type: f32 | f16 | bf16 | q8_0 (the base's is f32)");
  app.add_option("-t,--threads", o->threads, "threads; 0 = all cores")->check(non_negative());
  app.add_option("-o,--output", o->output, "text | json")->check(CLI::IsMember({"text", "json"}));
  return [o] {
    const Model model = load_model(o->model);
    const ModelConfig& c = model.config;
    std::optional<Model> base;
    if (!o->base.empty()) base.emplace(load_model(o->base));
    const train::TextTokenizer tokenizer = train::TextTokenizer::for_model(o->model);
    tokenizer.check_fits(c.vocab_size, "perplexity");
    if (base) {
      // The base must read the text as the same ids.
      const train::TextTokenizer bt = train::TextTokenizer::for_model(o->base);
      TPP_CHECK(bt.byte_level() == tokenizer.byte_level() && bt.vocab_size() == tokenizer.vocab_size() &&
                    bt.bos() == tokenizer.bos(),
                "perplexity: --kld-base {} has {}, the model {}: compare models that share a tokenizer", o->base,
                bt.name(), tokenizer.name());
    }
    train::TextData data = train::load_text_files(o->files, tokenizer);
    if (o->held_out) {
      train::TextData kept, held;
      train::split_train_val(data, kept, held);
      data = std::move(held);
    }
    PerplexityOptions opts;
    opts.ctx = o->ctx > 0 ? o->ctx : std::min<int64_t>(512, c.max_seq_len);
    opts.max_chunks = o->chunks;
    opts.bos = tokenizer.bos();
    opts.kv_type = check_kv_type(*parse_dtype(o->kv_type), c.head_dim_resolved(), "--kv-type");
    ThreadPool pool(o->threads);
    const bool text = o->output == "text";
    if (text) {
      fmt::print("model       {}\n", o->model);
      if (base) fmt::print("base        {} (KV cache f32)\n", o->base);
      fmt::print("KV cache    {}\n", o->kv_type);
      fmt::print("tokenizer   {}; {} tokens of text\n", tokenizer.name(), data.tokens.size());
      fmt::print("chunks      of {} tokens, the last {} of each scored\n", opts.ctx, opts.ctx - 1 - opts.ctx / 2);
      std::fflush(stdout);
    }
    const PerplexityReport r = perplexity(model, base ? &*base : nullptr, data.tokens, opts, pool,
                                          [&](int64_t done, int64_t all, const PerplexityReport& so_far) {
                                            if (!text) return;
                                            fmt::print(stderr, "\r[{}/{}] perplexity {:.4f}", done, all,
                                                       so_far.ppl.value);
                                            if (done == all) fmt::print(stderr, "\n");
                                          });
    if (!text) {
      nlohmann::json j = {{"model", o->model},       {"kv_type", o->kv_type},     {"ctx", opts.ctx},
                          {"chunks", r.chunks},
                          {"tokens", r.tokens},      {"nll", estimate_json(r.nll)}, {"ppl", estimate_json(r.ppl)}};
      if (r.has_base) {
        j["base"] = o->base;
        j["base_nll"] = estimate_json(r.base_nll);
        j["base_ppl"] = estimate_json(r.base_ppl);
        j["ln_ppl_ratio"] = estimate_json(r.ln_ratio);
        j["dppl"] = estimate_json(r.dppl);
        j["kld"] = estimate_json(r.kld);
        j["kld_median"] = r.kld_median;
        j["kld_p99"] = r.kld_p99;
        j["kld_max"] = r.kld_max;
        j["same_top"] = estimate_json(r.same_top);
        j["rms_dp"] = r.rms_dp;
      }
      fmt::print("{}\n", j.dump(2));
      return 0;
    }
    fmt::print("scored      {} tokens in {} chunks\n", r.tokens, r.chunks);
    fmt::print("perplexity  {:.4f} ± {:.4f}  (loss {:.5f} ± {:.5f} nats per token)\n", r.ppl.value, r.ppl.err,
               r.nll.value, r.nll.err);
    if (r.has_base) {
      fmt::print("base        {:.4f} ± {:.4f}\n", r.base_ppl.value, r.base_ppl.err);
      fmt::print("Δppl        {:+.4f} ± {:.4f}  (ln(PPL/PPL_base) {:+.5f} ± {:.5f})\n", r.dppl.value, r.dppl.err,
                 r.ln_ratio.value, r.ln_ratio.err);
      fmt::print("KLD         mean {:.6f} ± {:.6f}; median {:.6f}, 99 % {:.6f}, max {:.6f}\n", r.kld.value,
                 r.kld.err, r.kld_median, r.kld_p99, r.kld_max);
      fmt::print("same top    {:.3f} ± {:.3f} % of tokens\n", 100 * r.same_top.value, 100 * r.same_top.err);
      fmt::print("RMS Δp      {:.3f} % (probability of the next token)\n", 100 * r.rms_dp);
    }
    return 0;
  };
}

}  // namespace tpp::cli
