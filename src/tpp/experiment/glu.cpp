// Shazeer (2020), "GLU Variants Improve Transformer": seven FFNs at matched
// parameters and FLOPs (gated FFNs use 2/3 of the width: param_match), same
// data, steps, optimiser and schedule, several seeds; held-out log-perplexity.
#include <algorithm>
#include <cmath>
#include <map>

#include <fmt/format.h>

#include "tpp/core/error.h"
#include "tpp/experiment/experiments.h"
#include "tpp/report/chart.h"

namespace tpp::experiment {
namespace {

using nlohmann::json;

struct Variant {
  Ffn ffn;
  const char* name;
  bool gated;
  // Table 1 of the paper: held-out log-perplexity (T5 on C4) after 65,536 and
  // 524,288 steps.
  double paper_65k, paper_524k;
};
constexpr Variant kVariants[] = {
    {Ffn::relu, "ReLU", false, 1.997, 1.677},        {Ffn::gelu, "GELU", false, 1.983, 1.679},
    {Ffn::glu, "GLU", true, 1.982, 1.663},           {Ffn::bilinear, "Bilinear", true, 1.960, 1.648},
    {Ffn::reglu, "ReGLU", true, 1.953, 1.645},       {Ffn::geglu, "GEGLU", true, 1.942, 1.633},
    {Ffn::swiglu, "SwiGLU", true, 1.944, 1.636},
};

// Spearman's rank correlation of two equally long lists (no ties expected).
double spearman(const std::vector<double>& a, const std::vector<double>& b) {
  auto ranks = [](const std::vector<double>& v) {
    std::vector<size_t> idx(v.size());
    for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
    std::sort(idx.begin(), idx.end(), [&](size_t x, size_t y) { return v[x] < v[y]; });
    std::vector<double> r(v.size());
    for (size_t i = 0; i < idx.size(); ++i) r[idx[i]] = double(i);
    return r;
  };
  const auto ra = ranks(a), rb = ranks(b);
  double d2 = 0;
  for (size_t i = 0; i < a.size(); ++i) d2 += (ra[i] - rb[i]) * (ra[i] - rb[i]);
  const double n = double(a.size());
  return 1 - 6 * d2 / (n * (n * n - 1));
}

std::string pm(const Spread& s, int digits = 4) {
  return s.n > 1 ? fmt::format("{:.{}f} ± {:.{}f}", s.mean, digits, s.std, digits) : fmt::format("{:.{}f}", s.mean, digits);
}


}  // namespace

void run_glu(Lab& lab) {
  const bool quick = lab.options().quick;
  const int seeds = lab.options().seeds > 0 ? lab.options().seeds : quick ? 2 : 3;
  ModelConfig c;
  c.d_model = quick ? 48 : 128;
  c.n_layers = quick ? 2 : 4;
  c.n_heads = 4;
  c.d_ff = 4 * c.d_model;
  c.param_match = true;
  c.vocab_size = 260;
  c.rope_theta = 10000;
  c.tie_embeddings = true;
  Recipe r;
  r.steps = quick ? 40 : 1600;
  r.batch = 16;
  r.seq = quick ? 64 : 128;
  r.lr = 3e-3;
  r.eval_tokens = quick ? 2048 : 16384;
  c.max_seq_len = int(r.seq);
  const int64_t final_eval = quick ? 8192 : 262144;

  std::map<std::string, std::vector<const json*>> runs;
  for (int seed = 1; seed <= seeds; ++seed)
    for (const Variant& v : kVariants) {
      TrainRun run;
      run.config = c;
      run.config.ffn = v.ffn;
      run.id = fmt::format("{}-s{}", enum_name(v.ffn), seed);
      run.recipe = r;
      run.seed = uint64_t(seed);
      run.labels = {{"ffn", enum_name(v.ffn)}};
      runs[v.name].push_back(&lab.train(run, final_eval));
    }

  // The table.
  std::vector<std::vector<std::string>> rows;
  std::map<std::string, Spread> loss, bpb;
  std::map<std::string, std::vector<double>> per_seed;
  std::vector<double> ours, paper;
  double wall = 0;
  for (const Variant& v : kVariants) {
    std::vector<double> l, b;
    for (const json* e : runs[v.name]) {
      l.push_back((*e)["eval"]["loss"].get<double>());
      b.push_back((*e)["eval"]["bpb"].get<double>());
      wall += (*e)["wall_s"].get<double>();
    }
    loss[v.name] = spread(l);
    per_seed[v.name] = l;
    bpb[v.name] = spread(b);
    ours.push_back(loss[v.name].mean);
    paper.push_back(v.paper_65k);
  }
  std::vector<const Variant*> order;
  for (const Variant& v : kVariants) order.push_back(&v);
  std::sort(order.begin(), order.end(), [&](auto* a, auto* b) { return loss[a->name].mean < loss[b->name].mean; });
  auto rank_of = [&](const char* name) {
    for (size_t i = 0; i < order.size(); ++i)
      if (std::string(order[i]->name) == name) return int(i) + 1;
    return 0;
  };
  std::vector<const Variant*> paper_order = order;
  std::sort(paper_order.begin(), paper_order.end(), [](auto* a, auto* b) { return a->paper_65k < b->paper_65k; });
  const json& first = *runs[kVariants[0].name][0];
  for (const Variant& v : kVariants) {
    int paper_rank = 0;
    for (size_t i = 0; i < paper_order.size(); ++i)
      if (paper_order[i] == &v) paper_rank = int(i) + 1;
    const json& e = *runs[v.name][0];
    const ModelConfig vc = config_from_json(e["config"], lab.path("results.json"));
    rows.push_back({v.name, fmt::format("{}", e["params"].get<int64_t>()),
                    std::to_string(vc.ffn_width()), pm(loss[v.name]),
                    pm(bpb[v.name]), fmt::format("{:+.4f}", loss[v.name].mean - loss["ReLU"].mean),
                    std::to_string(rank_of(v.name)), fmt::format("{:.3f}", v.paper_65k),
                    fmt::format("{:.3f}", v.paper_524k), std::to_string(paper_rank)});
  }

  // The paper's findings, tested.
  const std::string best2 = fmt::format("{}, {}", order[0]->name, order[1]->name);
  const bool best_match = (std::string(order[0]->name) == "GEGLU" || std::string(order[0]->name) == "SwiGLU") &&
                          (std::string(order[1]->name) == "GEGLU" || std::string(order[1]->name) == "SwiGLU");
  std::string findings;
  findings += fmt::format("- **GEGLU and SwiGLU lowest** (the paper's headline): the two lowest here are {} — {}.\n",
                          best2, best_match ? "reproduced" : "not reproduced");
  for (const char* g : {"GLU", "Bilinear", "ReGLU", "GEGLU", "SwiGLU"})
    for (const char* base : {"ReLU", "GELU"}) {
      const double d = loss[g].mean - loss[base].mean;
      findings += fmt::format("- {} vs {}: {:+.4f} nats ({}; {} the seed spread)\n", g, base, d,
                              d < 0 ? "ahead, as in the paper" : "behind, unlike the paper",
                              differs(per_seed[g], per_seed[base]) ? "beyond" : "within");
    }
  const double rho = spearman(ours, paper);
  findings += fmt::format("- Rank correlation (Spearman) with the paper's 65,536-step column: {:.2f}.\n", rho);

  const json& cfg = first["config"];
  std::string md = fmt::format(
      "# GLU variants (Shazeer 2020), reproduced by `tpp experiment glu{}`\n\n"
      "Decoder-only Transformer++ on the held-out split of the training text (every 10th block of 8,192 tokens), "
      "byte-level tokens; d_model {}, {} layers, {} heads, d_ff {} (gated FFNs {} wide by the 2/3 rule, so every "
      "variant has the same parameters and FLOPs); {} steps of {} x {} tokens, AdamW, peak lr {}, warm-up then "
      "cosine; {} seeds. Held-out loss over {} tokens; mean ± sample std over seeds. Total training time {:.0f} s.\n\n",
      quick ? " --quick" : "", cfg["d_model"].get<int>(), cfg["n_layers"].get<int>(), cfg["n_heads"].get<int>(),
      cfg["d_ff"].get<int>(), config_from_json(runs["SwiGLU"][0]->at("config"), lab.path("results.json")).ffn_width(), r.steps, r.batch, r.seq, r.lr, seeds,
      first["eval"]["tokens"].get<int64_t>(), wall);
  md += markdown_table({"FFN", "params", "hidden", "held-out loss (nats/token)", "bits/byte", "Δ vs ReLU", "rank",
                        "paper 65k steps", "paper 524k steps", "paper rank"},
                       rows);
  md += "\nThe paper's column is log-perplexity of T5 (encoder-decoder, span corruption on C4), so only the "
        "ordering compares, not the values. \"Beyond the seed spread\": a two-sided paired t-test over the seeds "
        "(each seed gives every variant the same initialisation stream and batches) at 95 %.\n\n## Findings\n\n" +
        findings;
  lab.write_markdown(md);

  // Validation curves: mean over seeds with a min-max band.
  report::Chart chart;
  chart.title = "GLU variants: held-out loss during training (mean, band = seed range)";
  chart.x_label = "step";
  chart.y_label = "validation loss (nats/token)";
  for (const Variant& v : kVariants) {
    // From 20% of the steps: the fall from ln 260 would hide the end.
    report::Series s = seed_band(v.name, runs[v.name], "val_curve", 0.2 * double(r.steps));
    s.dashed = !v.gated;
    chart.series.push_back(std::move(s));
  }
  report::write_chart(chart, lab.path("glu_curves"));
  lab.say(fmt::format("wrote {} (table) and {}.svg/.png", lab.path("results.md"), lab.path("glu_curves")));
}

}  // namespace tpp::experiment
