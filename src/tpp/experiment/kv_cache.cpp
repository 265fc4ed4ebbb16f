// The seeds' KV-cache table (SPEC §2): 2 * layers * g * k * T * bytes for a
// LLaMA-2-7B shape with 32 (MHA), 8 (GQA, as Mistral-7B) and 1 (MQA) KV
// heads, 1k to 32k tokens, in 16-bit; and the engine measured against the
// formula: the resident memory a cache takes when it is made, and the
// resident growth per token of a real decode run.
#include <malloc.h>

#include <string>

#include <fmt/format.h>

#include "tpp/core/error.h"
#include "tpp/core/thread_pool.h"
#include "tpp/experiment/experiments.h"
#include "tpp/model/kv_cache.h"
#include "tpp/model/model.h"
#include "tpp/model/transformer.h"
#include "tpp/report/chart.h"
#include "tpp/train/trainer.h"

namespace tpp::experiment {
namespace {

using nlohmann::json;

ModelConfig llama2_7b(int kv_heads) {
  ModelConfig c;
  c.d_model = 4096;
  c.n_layers = 32;
  c.n_heads = 32;
  c.n_kv_heads = {kv_heads};
  c.d_ff = 11008;
  c.vocab_size = 32000;
  c.max_seq_len = 32768;
  c.validate("LLaMA-2-7B shape");
  return c;
}

struct Shape {
  const char* name;
  int kv_heads;
  int64_t seed_bytes_1k;  // the seeds' figure at 1,024 tokens in 16-bit
};
constexpr Shape kShapes[] = {{"MHA (LLaMA-2-7B)", 32, 536870912},
                             {"GQA-8 (Mistral-7B)", 8, 134217728},
                             {"MQA", 1, 16777216}};

std::string mb(int64_t b) { return fmt::format("{:.1f} MB", double(b) / 1e6); }

}  // namespace

void run_kv_cache(Lab& lab) {
  const bool quick = lab.options().quick;
  const std::vector<int64_t> lengths = {1024, 2048, 4096, 8192, 16384, 32768};

  // 1. The formula, checked against the seeds' figures.
  std::vector<std::vector<std::string>> t1;
  for (const Shape& s : kShapes) {
    const ModelConfig c = llama2_7b(s.kv_heads);
    const int64_t at1k = kv_cache_bytes(c, 1024, DType::f16);
    TPP_CHECK(at1k == s.seed_bytes_1k, "kv-cache: {} at 1,024 tokens: the formula gives {} bytes, the seeds {}",
              s.name, at1k, s.seed_bytes_1k);
    std::vector<std::string> row = {s.name};
    for (int64_t T : lengths) row.push_back(mb(kv_cache_bytes(c, T, DType::f16)));
    t1.push_back(row);
  }

  // 2. The engine's cache (f32 elements) as allocated: resident memory before and after making it.
  const json& alloc = lab.once("allocation", json::object(), [&] {
    json out = json::array();
    for (const Shape& s : kShapes) {
      const ModelConfig c = llama2_7b(s.kv_heads);
      for (int64_t T : quick ? std::vector<int64_t>{1024} : std::vector<int64_t>{1024, 4096}) {
        const int64_t formula = kv_cache_bytes(c, T, DType::f32);
        if (formula > (int64_t(5) << 30)) continue;  // stay well inside the machine's memory
        const int64_t before = train::rss_bytes();
        int64_t engine = 0, after = 0;
        {
          KvCache cache(c, T);
          engine = cache.bytes();
          after = train::rss_bytes();
        }
        out.push_back({{"shape", s.name}, {"tokens", T}, {"formula_f32", formula}, {"engine_bytes", engine},
                       {"resident_growth", after - before}});
        lab.say(fmt::format("{} at {} tokens: formula {} bytes, resident growth {}", s.name, T, formula, after - before));
      }
    }
    return json{{"caches", out}};
  });

  // 3. A real decode run: resident growth per token between two context lengths.
  const json& run = lab.once("decode_growth", json::object(), [&] {
    // Every buffer of 16 KiB or more gets pages of its own from the kernel (a
    // fixed mmap threshold, so freed caches are not reused from the heap and
    // each run's cache shows up whole in the resident set).
    mallopt(M_MMAP_THRESHOLD, 16 << 10);
    json out = json::array();
    const int64_t t1 = quick ? 256 : 512, t2 = quick ? 768 : 1536;
    ThreadPool pool(lab.options().threads);
    for (int g : {8, 2, 1}) {
      ModelConfig c;
      c.d_model = 256;
      c.n_layers = 4;
      c.n_heads = 8;
      c.n_kv_heads = {g};
      c.d_ff = 512;
      c.vocab_size = 260;
      c.max_seq_len = int(t2);
      const Model m = init_model(c, 1);
      Transformer tf(m);
      // Freed heap pages go back to the kernel before each reading, so what
      // the forward pass allocated and freed does not blur the cache's growth.
      auto resident = [] {
        malloc_trim(0);
        return train::rss_bytes();
      };
      auto grow = [&](int64_t T) {
        const int64_t before = resident();
        KvCache cache(c, T);
        std::vector<float> logits(size_t(c.vocab_size));
        std::vector<int32_t> prompt(size_t(T - 8));
        for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = int32_t(i % 256);
        tf.forward(cache, prompt, logits.data(), false, pool);
        for (int32_t i = 0; i < 8; ++i) tf.forward(cache, std::span<const int32_t>(&i, 1), logits.data(), false, pool);
        return resident() - before;
      };
      grow(t2);  // the first run pays for the scratch buffers, which persist
      const int64_t g1 = grow(t1), g2 = grow(t2);
      const double per_token = double(g2 - g1) / double(t2 - t1);
      out.push_back({{"kv_heads", g}, {"tokens", {t1, t2}}, {"growth", {g1, g2}}, {"measured_per_token", per_token},
                     {"formula_per_token_f32", kv_cache_bytes(c, 1, DType::f32)}});
      lab.say(fmt::format("d 256, 4 layers, {} KV heads: {:.0f} resident bytes per token (formula {})", g, per_token,
                          kv_cache_bytes(c, 1, DType::f32)));
    }
    return json{{"runs", out}};
  });

  std::vector<std::string> header = {"shape"};
  for (int64_t T : lengths) header.push_back(fmt::format("{} tokens", T));
  std::string md = fmt::format(
      "# KV-cache bytes, reproduced by `tpp experiment kv-cache{}`\n\n"
      "SPEC §2: bytes = 2 · Σ over layers (g_l · k) · T · bytes per element. LLaMA-2-7B shape: 32 layers, 32 query "
      "heads, head_dim 128. 16-bit elements.\n\n",
      quick ? " --quick" : "");
  md += markdown_table(header, t1);
  md += "\nThe seeds' figures at 1,024 tokens — 536,870,912 (MHA), 134,217,728 (GQA-8), 16,777,216 (MQA) bytes — "
        "are checked exactly by the command.\n\n## The engine's cache against the formula\n\n"
        "tpp's cache holds f32 elements, so the formula is taken at 4 bytes per element here.\n\n";
  std::vector<std::vector<std::string>> t2;
  for (const auto& a : alloc["caches"])
    t2.push_back({a["shape"].get<std::string>(), std::to_string(a["tokens"].get<int64_t>()),
                  std::to_string(a["formula_f32"].get<int64_t>()), std::to_string(a["engine_bytes"].get<int64_t>()),
                  std::to_string(a["resident_growth"].get<int64_t>()),
                  fmt::format("{:.4f}", double(a["resident_growth"].get<int64_t>()) / a["formula_f32"].get<double>())});
  md += markdown_table({"shape", "tokens", "formula (f32)", "engine's buffers", "resident growth", "growth / formula"}, t2);
  std::vector<std::vector<std::string>> t3;
  for (const auto& r : run["runs"])
    t3.push_back({std::to_string(r["kv_heads"].get<int>()), fmt::format("{:.0f}", r["measured_per_token"].get<double>()),
                  std::to_string(r["formula_per_token_f32"].get<int64_t>()),
                  fmt::format("{:.3f}", r["measured_per_token"].get<double>() / r["formula_per_token_f32"].get<double>())});
  md += "\nA decode run of the engine (d_model 256, 4 layers, 8 query heads of 32; prefill, then 8 decoded tokens): "
        "the resident growth of runs at two context lengths, differenced, per token. Buffers of 16 KiB or more are "
        "given fresh pages (a fixed mmap threshold), so a run's cache cannot hide in memory an earlier one freed.\n\n";
  md += markdown_table({"KV heads", "measured bytes/token", "formula (f32)", "ratio"}, t3);
  lab.write_markdown(md);

  report::Chart chart;
  chart.title = "KV-cache bytes per sequence, LLaMA-2-7B shape, 16-bit";
  chart.x_label = "tokens";
  chart.y_label = "bytes";
  chart.log_x = chart.log_y = true;
  for (const Shape& s : kShapes) {
    report::Series se{s.name};
    se.markers = true;
    for (int64_t T : lengths)
      se.x.push_back(double(T)), se.y.push_back(double(kv_cache_bytes(llama2_7b(s.kv_heads), T, DType::f16)));
    chart.series.push_back(std::move(se));
  }
  report::write_chart(chart, lab.path("kv_cache_bytes"));
  lab.say(fmt::format("wrote {} and kv_cache_bytes.svg/.png", lab.path("results.md")));
}

}  // namespace tpp::experiment
