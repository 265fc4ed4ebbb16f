#include <memory>
#include <string>

#include <fmt/format.h>

#include "checks.h"
#include "commands.h"
#include "tpp/core/error.h"
#include "tpp/model/kv_cache.h"
#include "tpp/model/model.h"

namespace tpp::cli {

Run add_kv_cache(CLI::App& app) {
  struct Opts {
    std::string model, config, dtype = "f16";
    int64_t tokens = 0;
  };
  auto o = std::make_shared<Opts>();
  auto* m = app.add_option("-m,--model", o->model, "model directory (tpp or Hugging Face) or GGUF file");
  auto* c = app.add_option("--config", o->config, "model config JSON");
  m->excludes(c);
  app.add_option("--tokens", o->tokens, "sequence length T")->required()->check(positive())->default_str("");
  app.add_option("--kv-type,--dtype", o->dtype, "cache element type: f32 | f16 | bf16 | q8_0")
      ->check(CLI::IsMember({"f32", "f16", "bf16", "q8_0"}))
      ->capture_default_str();
  return [o] {
    if (o->model.empty() == o->config.empty()) fail("kv-cache: give exactly one of -m DIR or --config FILE");
    const ModelConfig cfg = o->model.empty() ? load_config_file(o->config) : load_model(o->model).config;
    const DType dtype = check_kv_type(*parse_dtype(o->dtype), cfg.head_dim_resolved(), "--kv-type");
    // What KvCache(cfg, tokens, dtype) allocates, computed without allocating it.
    const int64_t bytes = kv_cache_bytes(cfg, o->tokens, dtype);
    int owning = 0;
    for (int l = 0; l < cfg.n_layers; ++l) owning += cfg.owns_kv(l);
    fmt::print("{} bytes ({:.1f} MB, {:.1f} MiB) of KV cache for {} tokens in {}\n", bytes, bytes / 1e6,
               bytes / 1048576.0, o->tokens, o->dtype);
    fmt::print("  {} of {} layers own a cache; head_dim {}; per token {} bytes\n", owning, cfg.n_layers,
               cfg.head_dim_resolved(), kv_cache_bytes(cfg, 1, dtype));
    return 0;
  };
}

}  // namespace tpp::cli
