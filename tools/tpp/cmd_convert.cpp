// tpp convert: MHA -> GQA / MQA checkpoint conversion (the GQA paper).
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "checks.h"
#include "commands.h"
#include "tpp/convert/kv_heads.h"
#include "tpp/core/error.h"
#include "tpp/model/kv_cache.h"

namespace tpp::cli {
namespace {

// "8", or "8,8,4,4" when layers differ.
std::string kv_heads_str(const ModelConfig& c) {
  std::vector<int> g;
  for (int l = 0; l < c.n_layers; ++l) g.push_back(c.kv_heads(l));
  if (std::equal(g.begin() + 1, g.end(), g.begin())) return std::to_string(g[0]);
  return fmt::format("{}", fmt::join(g, ","));
}

}  // namespace

Run add_convert(CLI::App& app) {
  struct Opts {
    std::string model, out, method = "mean", dtype = "source";
    std::vector<int> kv_heads;
    uint64_t seed = 0;
  };
  auto o = std::make_shared<Opts>();
  app.add_option("-m,--model", o->model, "model to convert: tpp or Hugging Face directory, or GGUF file")->required();
  app.add_option("--kv-heads", o->kv_heads,
                 "G: KV heads after conversion, dividing the current ones; a comma-separated list gives one per layer")
      ->required()
      ->delimiter(',')
      ->default_str("");
  app.add_option("--method", o->method,
                 "new heads from each group: mean (the GQA paper) | first (first head) | random (re-initialised)");
  app.add_option("--seed", o->seed, "seed of --method random");
  app.add_option("--out", o->out,
                 "output tpp model directory (tokenizer files copied); FILE.gguf for a GGUF source")
      ->required();
  app.add_option("--dtype", o->dtype, "matrix dtype of a directory: source | f32 | bf16 | f16");
  return [o] {
    convert::KvHeadsOptions opts;
    const auto method = convert::parse_kv_init(o->method);
    if (!method) fail("--method: got \"{}\", expected mean, first or random", o->method);
    opts.method = *method;
    opts.kv_heads = o->kv_heads;
    opts.seed = o->seed;
    const Model model = load_model(o->model);
    DType dtype = model.weights.layers.at(0)[TensorId::attn_q].dtype;
    if (is_block_dtype(dtype)) dtype = DType::f32;
    if (o->dtype != "source") {
      const auto d = parse_dtype(o->dtype);
      if (!d || (*d != DType::f32 && *d != DType::bf16 && *d != DType::f16))
        fail("--dtype: got \"{}\", expected source, f32, bf16 or f16", o->dtype);
      dtype = *d;
    }
    const Model converted = convert::convert_kv_heads(model, opts);
    convert::save_converted(converted, o->model, o->out, dtype);
    const int64_t before = kv_cache_bytes(model.config, 1, DType::f16);
    const int64_t after = kv_cache_bytes(converted.config, 1, DType::f16);
    fmt::print("{}: KV heads {} -> {} ({}), KV cache {} -> {} bytes per token in f16 ({:.2f}x smaller)\n", o->out,
               kv_heads_str(model.config), kv_heads_str(converted.config), o->method,
               before, after, double(before) / double(after));
    fmt::print("parameters {} -> {}\n", model.config.n_params(), converted.config.n_params());
    return 0;
  };
}

}  // namespace tpp::cli
