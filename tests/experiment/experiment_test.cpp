// `tpp experiment NAME --quick`, end to end: the files each writes, the real
// properties of its entries (finite, falling losses; converted models' KV
// bytes; the seeds' KV-cache figures; the engine's cache against the
// formula), and resuming a killed experiment to the same results.
#include <cmath>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/test_util.h"
#include "tpp/experiment/lab.h"
#include "tpp/io/json_file.h"

namespace tpp::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// A small training text: the first 600 kB of the Brown corpus when it is
// installed (scripts/get_brown.sh), else text the test writes.
const std::string& corpus() {
  static const std::string path = [] {
    const std::string p = temp_dir("experiment_corpus") + "/text.txt";
    std::string text;
    std::ifstream brown(source_path("data/brown.txt"));
    if (brown) {
      text.resize(600000);
      brown.read(text.data(), std::streamsize(text.size()));
      text.resize(size_t(brown.gcount()));
    }
    for (int i = 0; text.size() < 600000; ++i)
      text += "The jury said it did find that the city executive committee, which had over-all charge of the "
              "election, deserves the praise and thanks of the city for the manner in which it was conducted " +
              std::to_string(i) + ".\n";
    std::ofstream(p) << text;
    return p;
  }();
  return path;
}

json run_quick(const std::string& name, const std::string& out, const std::string& extra = "") {
  std::string log;
  const int rc = run_command(tpp_binary() + " experiment " + name + " --quick -t 2 --out " + out + " --data " +
                                 corpus() + " " + extra,
                             &log);
  EXPECT_EQ(rc, 0) << log;
  for (const char* f : {"results.json", "results.md"}) EXPECT_TRUE(fs::exists(out + "/" + f)) << f << "\n" << log;
  return io::read_json_file(out + "/results.json");
}

void expect_plot(const std::string& base) {
  std::ifstream svg(base + ".svg"), png(base + ".png", std::ios::binary);
  ASSERT_TRUE(svg && png) << base;
  std::string head(8, '\0');
  png.read(head.data(), 8);
  EXPECT_EQ(head, std::string("\x89PNG\r\n\x1a\n", 8)) << base;
}

// Every training entry: finite held-out figures below a uniform guess over
// 260 byte tokens, and, for runs long enough to say (not the few steps of a
// quick uptraining, where one batch's noise decides), a training loss that fell.
void expect_learned(const json& e, const std::string& id) {
  const double loss = e["eval"]["loss"].get<double>();
  EXPECT_TRUE(std::isfinite(loss)) << id;
  EXPECT_LT(loss, std::log(260.0)) << id;
  const auto& curve = e["curve"];
  ASSERT_GE(curve.size(), 2u) << id;
  if (e["steps"].get<int64_t>() >= 20) {
    EXPECT_LT(curve.back()[1].get<double>(), curve.front()[1].get<double>()) << id;
  }
  EXPECT_GT(e["tokens"].get<double>(), 0) << id;
  EXPECT_GE(e["wall_s"].get<double>(), 0) << id;
}

TEST(ExperimentTest, GluTrainsSevenMatchedVariantsPerSeed) {
  const std::string out = temp_dir("exp_glu");
  const json r = run_quick("glu", out);
  const auto& e = r["entries"];
  ASSERT_EQ(e.size(), 14u);  // 7 FFNs x 2 seeds
  const int64_t params = e["relu-s1"]["params"].get<int64_t>();
  for (const auto& [id, entry] : e.items()) {
    expect_learned(entry, id);
    EXPECT_EQ(entry["params"].get<int64_t>(), params) << id << ": parameters must match across variants";
  }
  EXPECT_NE(e["relu-s1"]["eval"]["loss"], e["relu-s2"]["eval"]["loss"]);  // seeds differ
  std::ifstream md(out + "/results.md");
  const std::string text((std::istreambuf_iterator<char>(md)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("| SwiGLU |"), std::string::npos) << text;
  EXPECT_NE(text.find("GEGLU and SwiGLU lowest"), std::string::npos) << text;
  expect_plot(out + "/glu_curves");
}

TEST(ExperimentTest, GqaConvertsUptrainsAndMeasures) {
  const std::string out = temp_dir("exp_gqa");
  const json r = run_quick("gqa", out);
  const auto& e = r["entries"];
  // mha + 3 shapes x 3 methods x (converted + 2 alphas) + 3 from scratch + decode
  ASSERT_EQ(e.size(), 1u + 27u + 3u + 1u);
  for (const auto& [id, entry] : e.items())
    if (entry.contains("curve")) expect_learned(entry, id);
  const int64_t base_steps = e["mha"]["steps"].get<int64_t>();
  EXPECT_EQ(e["g2-mean-a05"]["steps"].get<int64_t>(), std::lround(0.05 * double(base_steps)));
  EXPECT_EQ(e["g2-mean-a10"]["steps"].get<int64_t>(), std::lround(0.10 * double(base_steps)));
  EXPECT_EQ(e["g1-scratch"]["steps"].get<int64_t>(), std::lround(1.10 * double(base_steps)));
  // Conversion changes the model; uptraining a random-K/V model wins back loss.
  const auto loss = [&](const char* id) { return e[id]["eval"]["loss"].get<double>(); };
  EXPECT_NE(loss("g1-mean-a00"), loss("mha"));
  EXPECT_NE(loss("g1-random-a00"), loss("g1-mean-a00"));
  EXPECT_LT(loss("g1-random-a10"), loss("g1-random-a00"));
  for (int g : {4, 2, 1}) {
    const json cfg = io::read_json_file(out + "/models/g" + std::to_string(g) + "-first/config.json");
    EXPECT_EQ(cfg["n_kv_heads"].get<int>(), g);
  }
  // The decode models: KV bytes shrink by the head factor.
  std::map<int, json> d;
  for (const auto& m : e["decode"]["runs"]) d[m["kv_heads"].get<int>()] = m;
  ASSERT_EQ(d.size(), 4u);
  for (int g : {4, 2, 1}) {
    EXPECT_EQ(d[g]["kv_bytes_f16"].get<int64_t>() * (8 / g), d[8]["kv_bytes_f16"].get<int64_t>());
    EXPECT_EQ(d[g]["kv_bytes_engine"].get<int64_t>() * (8 / g), d[8]["kv_bytes_engine"].get<int64_t>());
    EXPECT_GT(d[g]["tokens_per_s"].get<double>(), 0);
  }
  expect_plot(out + "/gqa_quality_speed");
  expect_plot(out + "/gqa_uptraining");
}

TEST(ExperimentTest, PositionsEvaluateAtOneAndTwiceTheLength) {
  const std::string out = temp_dir("exp_positions");
  const json r = run_quick("positions", out);
  const auto& e = r["entries"];
  ASSERT_EQ(e.size(), 10u);  // 5 encodings, each trained and evaluated at 2T
  for (const char* pos : {"rope", "learned", "sinusoidal", "alibi", "none"}) {
    const std::string id = std::string(pos) + "-s1";
    expect_learned(e[id], id);
    EXPECT_EQ(e[id]["config"]["pos_encoding"], pos);
    EXPECT_EQ(e[id + "-2x"]["eval"]["window"].get<int64_t>(), 2 * e[id]["seq"].get<int64_t>());
    EXPECT_TRUE(std::isfinite(e[id + "-2x"]["eval"]["loss"].get<double>()));
  }
  expect_plot(out + "/positions_curves");
}

TEST(ExperimentTest, KvCacheReproducesTheSeedsFiguresAndTheEngineAgrees) {
  const std::string out = temp_dir("exp_kv");
  const json r = run_quick("kv-cache", out);
  std::ifstream md(out + "/results.md");
  const std::string text((std::istreambuf_iterator<char>(md)), std::istreambuf_iterator<char>());
  for (const char* mb : {"536.9 MB", "134.2 MB", "16.8 MB"}) EXPECT_NE(text.find(mb), std::string::npos) << mb;
  for (const auto& c : r["entries"]["allocation"]["caches"]) {
    EXPECT_EQ(c["engine_bytes"], c["formula_f32"]);
    EXPECT_NEAR(c["resident_growth"].get<double>() / c["formula_f32"].get<double>(), 1.0, 0.02) << c.dump();
  }
  for (const auto& run : r["entries"]["decode_growth"]["runs"])
    EXPECT_NEAR(run["measured_per_token"].get<double>() / run["formula_per_token_f32"].get<double>(), 1.0, 0.1)
        << run.dump();
  expect_plot(out + "/kv_cache_bytes");
}

TEST(ExperimentTest, AKilledExperimentResumesToTheSameResults) {
  const std::string whole = temp_dir("exp_resume_whole"), killed = temp_dir("exp_resume_killed");
  const json want = run_quick("positions", whole, "--seeds 1");
  // Kill the second run as soon as it has a checkpoint.
  std::string log;
  run_command("( " + tpp_binary() + " experiment positions --quick -t 2 -q --seeds 1 --out " + killed + " --data " +
                  corpus() + " & pid=$!; while [ ! -e " + killed +
                  "/runs/learned-s1/checkpoint.json ] && kill -0 $pid 2>/dev/null; do sleep 0.02; done; "
                  "kill -9 $pid; wait $pid ) 2>/dev/null",
              &log);
  const json partial = io::read_json_file(killed + "/results.json");
  EXPECT_TRUE(partial["entries"].contains("rope-s1"));
  EXPECT_FALSE(partial["entries"].contains("learned-s1"));
  std::string again;
  ASSERT_EQ(run_command(tpp_binary() + " experiment positions --quick -t 2 --seeds 1 --out " + killed + " --data " +
                            corpus(),
                        &again),
            0)
      << again;
  EXPECT_EQ(again.find("rope-s1: training"), std::string::npos) << "a finished run was repeated\n" << again;
  EXPECT_NE(again.find("learned-s1: resuming from its checkpoint"), std::string::npos) << again;
  const json got = io::read_json_file(killed + "/results.json");
  ASSERT_EQ(got["entries"].size(), want["entries"].size());
  for (const auto& [id, entry] : want["entries"].items()) {
    EXPECT_EQ(got["entries"][id]["eval"], entry["eval"]) << id;
    if (entry.contains("curve")) {
      EXPECT_EQ(got["entries"][id]["curve"], entry["curve"]) << id;
    }
  }
  // Other settings in the same directory are refused.
  EXPECT_NE(run_command(tpp_binary() + " experiment positions -t 2 --seeds 1 --out " + killed + " --data " + corpus(),
                        &again),
            0);
  EXPECT_NE(again.find("\"quick\" is true but this invocation has false"), std::string::npos) << again;
}

TEST(ExperimentTest, UnknownNamesAndMissingDataAreRefused) {
  std::string log;
  EXPECT_NE(run_command(tpp_binary() + " experiment glx --quick --out " + temp_dir("exp_bad"), &log), 0);
  EXPECT_NE(log.find("expected one of glu, gqa, positions, kv-cache"), std::string::npos) << log;
  EXPECT_NE(run_command(tpp_binary() + " experiment glu --quick --data /nonexistent.txt --out " + temp_dir("exp_bad"),
                        &log),
            0);
  EXPECT_NE(log.find("/nonexistent.txt: no such file"), std::string::npos) << log;
}

TEST(LabTest, AStoredEntryMadeOtherwiseIsRefused) {
  experiment::Options o;
  o.out = temp_dir("lab_refuse");
  o.data = {corpus()};
  o.threads = 2;
  o.progress = false;
  experiment::Lab lab("t", o);
  experiment::TrainRun run;
  run.id = "r";
  run.config.d_model = 32;
  run.config.n_layers = 1;
  run.config.n_heads = 2;
  run.config.d_ff = 64;
  run.config.max_seq_len = 16;
  run.recipe.steps = 2;
  run.recipe.batch = 2;
  run.recipe.seq = 16;
  run.recipe.eval_tokens = 64;
  const nlohmann::json* first = &lab.train(run, 256);
  EXPECT_EQ(&lab.train(run, 256), first);  // stored, not trained again
  run.recipe.steps = 3;
  EXPECT_ERROR(lab.train(run, 256), "entry \"r\" was made with steps 2, but this experiment asks for 3");
  run.recipe.steps = 2;
  run.config.ffn = Ffn::relu;
  EXPECT_ERROR(lab.train(run, 256), "entry \"r\" was made with config");
  // A measurement made from another model is refused too.
  lab.once("m", {{"model", 1}}, [] { return nlohmann::json{{"x", 1}}; });
  EXPECT_EQ(lab.once("m", {{"model", 1}}, [] { return nlohmann::json{{"x", 2}}; })["x"], 1);
  EXPECT_ERROR(lab.once("m", {{"model", 2}}, [] { return nlohmann::json(); }), "entry \"m\" was made from");
}

TEST(ExperimentSpreadTest, PairedDifferencesBeyondTheSpread) {
  // Pairs that move together differ even when each side's own spread is wide.
  EXPECT_TRUE(experiment::differs({1.0, 2.0, 3.0}, {1.1, 2.1, 3.1}));
  EXPECT_FALSE(experiment::differs({1.0, 2.0, 3.0}, {1.1, 1.9, 3.05}));
  EXPECT_FALSE(experiment::differs({1.0}, {2.0}));  // one seed: no spread to test against
  EXPECT_ERROR(experiment::differs({1.0, 2.0}, {1.0}), "cannot be paired");
}

TEST(ExperimentSpreadTest, MeanAndSampleStandardDeviation) {
  const auto s = experiment::spread({1.0, 2.0, 3.0, 4.0});
  EXPECT_DOUBLE_EQ(s.mean, 2.5);
  EXPECT_NEAR(s.std, std::sqrt(5.0 / 3.0), 1e-12);
  EXPECT_EQ(experiment::spread({7.0}).std, 0.0);
}

}  // namespace
}  // namespace tpp::test
