// The training loop: schedule, data, gradient accumulation, bf16 compute,
// resumption that reproduces the uninterrupted loss curve, checkpoints that
// survive interrupted writes, and a clear stop on a non-finite loss.
#include <algorithm>
#include <bit>
#include <cmath>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/test_util.h"
#include "tpp/core/error.h"
#include "tpp/kernels/api.h"
#include "tpp/model/model.h"
#include "tpp/train/checkpoint.h"
#include "tpp/train/data_parallel.h"
#include "tpp/train/optim.h"
#include "tpp/train/trainer.h"

namespace tpp::test {
namespace {

namespace fs = std::filesystem;
using namespace tpp::train;

std::string write_corpus(const std::string& dir) {
  fs::create_directories(dir);
  std::string text;
  for (int i = 0; i < 400; ++i)
    text += "The quick brown fox jumps over the lazy dog " + std::to_string(i % 37) + ". Pack my box.\n";
  const std::string path = dir + "/corpus.txt";
  std::ofstream(path) << text;
  return path;
}

std::string write_config(const std::string& dir) {
  const std::string path = dir + "/config.json";
  std::ofstream(path) << R"({"d_model": 32, "n_layers": 2, "n_heads": 4, "n_kv_heads": 2, "d_ff": 64,
                             "vocab_size": 260, "max_seq_len": 64, "rope_theta": 10000.0, "tie_embeddings": true})";
  return path;
}

TrainOptions small_run(const std::string& dir, const std::string& out) {
  TrainOptions o;
  o.config = write_config(dir);
  o.data = {write_corpus(dir)};
  o.out = out;
  o.steps = 12;
  o.batch = 3;
  o.seq = 24;
  o.lr = 3e-3;
  o.eval_every = 4;
  o.eval_tokens = 256;
  o.save_every = 4;
  o.threads = 2;
  o.progress = false;
  return o;
}

std::vector<nlohmann::json> read_metrics(const std::string& out) {
  std::vector<nlohmann::json> lines;
  std::ifstream in(out + "/metrics.jsonl");
  std::string line;
  while (std::getline(in, line)) lines.push_back(nlohmann::json::parse(line));
  return lines;
}

std::vector<double> losses(const std::vector<nlohmann::json>& metrics, const char* key) {
  std::vector<double> out;
  for (const auto& m : metrics)
    if (m.contains(key)) out.push_back(m[key].get<double>());
  return out;
}

std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(ScheduleTest, WarmupThenCosineToTheFloor) {
  EXPECT_DOUBLE_EQ(lr_at(0, 100, 10, 1.0, 0.1), 0.1);
  EXPECT_DOUBLE_EQ(lr_at(9, 100, 10, 1.0, 0.1), 1.0);
  EXPECT_DOUBLE_EQ(lr_at(10, 100, 10, 1.0, 0.1), 1.0);
  EXPECT_NEAR(lr_at(99, 100, 10, 1.0, 0.1), 0.1, 1e-12);
  EXPECT_NEAR(lr_at(54, 100, 10, 1.0, 0.1), 0.55 + 0.45 * std::cos(M_PI * 44 / 89.0), 1e-12);
  for (int s = 11; s < 100; ++s) EXPECT_LE(lr_at(s, 100, 10, 1.0, 0.1), lr_at(s - 1, 100, 10, 1.0, 0.1));
}

// Weight decay reaches the decayed ranges alone, across the pool's chunk
// boundaries (a 10,000-element vector in ranges that straddle them), and the
// rest of the update matches torch.optim.AdamW's first step: m = (1 - b1) g,
// v = (1 - b2) g^2, so p moves by lr g / (|g| + eps / sqrt(1 - b2)) = lr sign(g).
// On every SIMD level: the vector kernel where there is one, else the loop.
TEST(AdamWTest, DecaysOnlyTheDecayedRanges) {
  ThreadPool pool(2);
  const int64_t n = 10000;
  const std::vector<ParamRange> decayed = {{0, 3}, {4095, 4097}, {5000, 9000}};
  const kernels::Isa in_use = kernels::kernels().isa;
  for (const kernels::Isa isa : kernels::supported_isas()) {
    kernels::set_isa(isa);
    AdamW adam(n, decayed, {0.9, 0.95, 1e-8, 0.1});
    std::vector<float> p(size_t(n), 2.0f), g(size_t(n), 0.0f);
    for (int64_t i = 0; i < n; i += 7) g[size_t(i)] = i % 2 ? 0.5f : -0.25f;
    adam.step(p.data(), g.data(), 0.01, pool);
    for (int64_t i = 0; i < n; ++i) {
      const bool in =
          std::any_of(decayed.begin(), decayed.end(), [&](const ParamRange& r) { return i >= r.begin && i < r.end; });
      const float gi = g[size_t(i)];
      const double want = 2.0 * (in ? 1.0 - 0.01 * 0.1 : 1.0) - (gi == 0 ? 0.0 : 0.01 * (gi > 0 ? 1 : -1));
      ASSERT_NEAR(p[size_t(i)], want, 1e-6) << kernels::isa_name(isa) << " at " << i;
    }
  }
  kernels::set_isa(in_use);
}

TEST(AdamWTest, RejectsRangesOutOfOrderOrOutside) {
  EXPECT_THROW(AdamW(10, {{5, 8}, {2, 4}}, {}), Error);
  EXPECT_THROW(AdamW(10, {{5, 11}}, {}), Error);
  EXPECT_THROW(AdamW(10, {{5, 4}}, {}), Error);
  EXPECT_NO_THROW(AdamW(10, {{0, 10}}, {}));
}

TEST(ClipTest, ScalesToTheMaximumNormOnlyWhenAbove) {
  ThreadPool pool(2);
  std::vector<float> g = {3, 4};
  EXPECT_DOUBLE_EQ(clip_global_norm(g, 10, pool), 5);
  EXPECT_EQ(g[0], 3);
  EXPECT_DOUBLE_EQ(clip_global_norm(g, 1, pool), 5);
  EXPECT_NEAR(g[0], 0.6, 1e-6);
  EXPECT_NEAR(g[1], 0.8, 1e-6);
}

TEST(DataTest, SplitIsDeterministicDisjointAndCoversTheCorpus) {
  TextData all;
  for (int i = 0; i < 100000; ++i) {
    all.tokens.push_back(i % 251);
    all.token_bytes.push_back(i % 3);
    all.bytes += i % 3;
  }
  TextData a, b, c, d;
  split_train_val(all, a, b);
  split_train_val(all, c, d);
  EXPECT_EQ(a.tokens, c.tokens);
  EXPECT_EQ(b.tokens, d.tokens);
  EXPECT_EQ(a.tokens.size() + b.tokens.size(), all.tokens.size());
  EXPECT_EQ(a.token_bytes.size(), a.tokens.size());
  EXPECT_EQ(a.bytes + b.bytes, all.bytes);
  EXPECT_GT(b.tokens.size(), all.tokens.size() / 20);
  EXPECT_LT(b.tokens.size(), all.tokens.size() / 5);
}

TEST(DataTest, BatchesArePureFunctionsOfSeedAndStep) {
  std::vector<int32_t> tokens;
  for (int i = 0; i < 5000; ++i) tokens.push_back(i % 200);
  const BatchSampler s1(tokens, 5), s2(tokens, 5), s3(tokens, 6);
  std::vector<int32_t> a, at, b, bt;
  s1.sample(17, 0, 4, 16, a, at);
  s2.sample(17, 0, 4, 16, b, bt);
  EXPECT_EQ(a, b);
  for (size_t i = 0; i + 1 < 16; ++i) EXPECT_EQ(at[i], a[i + 1]);  // targets are the next tokens
  s3.sample(17, 0, 4, 16, b, bt);
  EXPECT_NE(a, b);
  s1.sample(18, 0, 4, 16, b, bt);
  EXPECT_NE(a, b);
}

// With a model's tokenizer, tokens stand for several bytes each; the byte
// counts still add up to the files' real UTF-8 bytes, documents are joined by
// the tokenizer's EOS (which stands for none).
TEST(DataTest, ModelTokenizerCountsTheTextsRealBytes) {
  const std::string dir = temp_dir("train_data_bpe");
  write_test_tokenizer(dir);
  const std::string a = "the cat sat on the mat; the cat, the hat.\n", b = "Caf\u00e9 \u00fcber the cat \U0001F600\n";
  std::ofstream(dir + "/a.txt") << a;
  std::ofstream(dir + "/b.txt") << b;
  const TextTokenizer tok = TextTokenizer::for_model(dir);
  EXPECT_FALSE(tok.byte_level());
  EXPECT_EQ(tok.name(), "tokenizer.json (263 tokens)");
  EXPECT_EQ(tok.separator(), 262);
  const TextData data = load_text_files({dir + "/a.txt", dir + "/b.txt"}, tok);
  ASSERT_EQ(data.token_bytes.size(), data.tokens.size());
  EXPECT_LT(data.tokens.size(), a.size() + b.size()) << "merges make tokens longer than a byte";
  EXPECT_EQ(data.bytes, int64_t(a.size() + b.size()));
  int64_t sum = 0;
  for (int32_t n : data.token_bytes) sum += n;
  EXPECT_EQ(sum, data.bytes);
  EXPECT_NE(std::find(data.tokens.begin(), data.tokens.end(), 258), data.tokens.end()) << "\" the\" merged";
  EXPECT_EQ(std::count(data.tokens.begin(), data.tokens.end(), 262), 1);
  // The byte-level tokenizer: one token per byte, <eos> between documents.
  const TextData bytes = load_text_files({dir + "/a.txt", dir + "/b.txt"});
  EXPECT_EQ(bytes.tokens.size(), a.size() + b.size() + 1);
  EXPECT_EQ(bytes.bytes, int64_t(a.size() + b.size()));
  // A model whose vocabulary is smaller than its tokenizer's is refused.
  try {
    tok.check_fits(200, "train");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer.json"), std::string::npos) << e.what();
  }
}

TEST(DataTest, MissingOrEmptyFilesAreNamed) {
  const std::string dir = temp_dir("train_data_errors");
  std::ofstream(dir + "/empty.txt").close();
  try {
    load_text_files({dir + "/empty.txt"});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("empty.txt: the file is empty"), std::string::npos) << e.what();
  }
  EXPECT_THROW(load_text_files({dir + "/nope.txt"}), Error);
}

// Two micro-batches of 2 accumulate to the gradient of one batch of 4.
TEST(GradAccumTest, MicroBatchesSumToTheFullBatch) {
  ModelConfig c;
  c.d_model = 16;
  c.n_layers = 1;
  c.n_heads = 2;
  c.d_ff = 24;
  c.vocab_size = 50;
  const Model m = init_model(c, 3, DType::f32, 4.0);
  const ParamLayout layout = make_layout(m.config);
  const auto pf = params_from_model(m, layout);
  const std::vector<double> p(pf.begin(), pf.end());
  std::vector<int32_t> tok, tgt;
  for (int i = 0; i < 4 * 6; ++i) {
    tok.push_back((i * 7) % 50);
    tgt.push_back((i * 11 + 3) % 50);
  }
  ThreadPool pool(2);
  Graph<double> g(m.config, layout);
  std::vector<double> full(p.size()), acc(p.size());
  g.forward(p.data(), {4, 6, tok.data(), tgt.data()}, pool);
  g.backward(p.data(), full.data(), 1.0, pool);
  g.forward(p.data(), {2, 6, tok.data(), tgt.data()}, pool);
  g.backward(p.data(), acc.data(), 0.5, pool);
  g.forward(p.data(), {2, 6, tok.data() + 12, tgt.data() + 12}, pool);
  g.backward(p.data(), acc.data(), 0.5, pool);
  EXPECT_TRUE(all_close(acc, full, {1e-12, 1e-9}));
}

// The step's gradient is one expression whatever the number of ranks: the
// left fold g_0 + g_1 + ... of the micro-batch gradients, each written into a
// zeroed buffer (tests/train_mpi checks that two ranks give the same bits).
TEST(GradientSumTest, OneRankFoldsTheMicroBatchesInOrder) {
  Ranks one;
  ThreadPool pool(2);
  const int64_t n = 10001;
  GradientSum sum(one, n, 3, pool);
  std::vector<std::vector<float>> g;
  for (int k = 0; k < 3; ++k) g.push_back(random_floats(size_t(n), uint64_t(k + 1), float(1 << (4 * k))));
  for (int k = 0; k < 3; ++k) {
    float* t = sum.target(k);
    ASSERT_TRUE(std::all_of(t, t + n, [](float v) { return v == 0.0f && !std::signbit(v); }));
    for (int64_t i = 0; i < n; ++i) t[i] += g[size_t(k)][size_t(i)];  // what a backward does
    sum.add(k);
  }
  sum.finish();
  for (int64_t i = 0; i < n; ++i) {
    const float expected = (g[0][size_t(i)] + g[1][size_t(i)]) + g[2][size_t(i)];
    ASSERT_EQ(std::bit_cast<uint32_t>(sum.grads()[size_t(i)]), std::bit_cast<uint32_t>(expected)) << i;
  }
  EXPECT_EQ(sum.bytes_sent_per_round(), 0);
}

TEST(TrainerTest, LossFallsAndTheRunWritesItsOutputs) {
  const std::string dir = temp_dir("train_basic");
  TrainOptions o = small_run(dir, dir + "/out");
  o.steps = 30;
  const TrainResult r = run_training(o);
  EXPECT_EQ(r.step, 30);
  const auto m = read_metrics(o.out);
  const auto train_losses = losses(m, "loss");
  ASSERT_EQ(train_losses.size(), 30u);
  EXPECT_LT(train_losses.back(), train_losses.front() - 1.0);
  EXPECT_EQ(losses(m, "val_loss").size(), 8u);  // every 4 steps and at the end
  EXPECT_GT(r.val_bpb, 0);
  EXPECT_NEAR(r.val_bpb, r.val_loss / std::log(2.0), 0.05 * r.val_bpb);  // byte tokens: ~1 byte each
  for (const char* f : {"config.json", "model.safetensors", "metrics.jsonl", "checkpoint.json"})
    EXPECT_TRUE(fs::exists(o.out + "/" + f)) << f;
  EXPECT_FALSE(fs::exists(o.out + "/tokenizer.json")) << "a byte-level run has no tokenizer files";
  // The saved model evaluates to the loss the run reported.
  const Model saved = load_model(o.out);
  const ParamLayout layout = make_layout(saved.config);
  const auto params = params_from_model(saved, layout);
  TextData all = load_text_files(o.data), tr, va;
  split_train_val(all, tr, va);
  ThreadPool pool(2);
  Graph<float> g(saved.config, layout);
  EXPECT_NEAR(evaluate(g, params.data(), va, o.seq, o.batch, o.eval_tokens, pool).loss, r.val_loss, 1e-9);
}

TEST(TrainerTest, ResumedRunReproducesTheUninterruptedCurve) {
  const std::string dir = temp_dir("train_resume");
  const TrainOptions full = small_run(dir, dir + "/full");
  run_training(full);
  TrainOptions part = small_run(dir, dir + "/part");
  part.stop_after = 6;  // checkpoint at 4, interrupted at 6
  EXPECT_EQ(run_training(part).step, 6);
  EXPECT_FALSE(fs::exists(part.out + "/model.safetensors"));  // no final model yet
  // Debris of a save interrupted mid-write must be ignored.
  fs::create_directories(part.out + "/ckpt-00000008");
  std::ofstream(part.out + "/ckpt-00000008/model.safetensors") << "partial";
  std::ofstream(part.out + "/checkpoint.json.tmp.12345") << "{\"dir\": \"ckpt-000";
  ResumeOptions resume;
  resume.out = part.out;
  resume.threads = 2;
  resume.progress = false;
  EXPECT_EQ(resume_training(resume).step, 12);
  const auto a = read_metrics(full.out), b = read_metrics(part.out);
  EXPECT_EQ(losses(a, "loss"), losses(b, "loss"));  // bitwise, step for step
  EXPECT_EQ(losses(a, "val_loss"), losses(b, "val_loss"));
  EXPECT_EQ(file_bytes(full.out + "/model.safetensors"), file_bytes(part.out + "/model.safetensors"));
}

// A resumed run may run longer: the steps done stay as they were, the cosine
// decay is re-planned to end at the new last step, the warm-up keeps its length.
TEST(TrainerTest, ResumeExtendsTheRunWithMoreSteps) {
  const std::string dir = temp_dir("train_extend");
  TrainOptions o = small_run(dir, dir + "/out");
  o.warmup = -1;  // the default: 5 % of the 40 planned steps = 2
  o.steps = 40;
  o.stop_after = 6;
  run_training(o);
  const auto before = losses(read_metrics(o.out), "loss");
  ResumeOptions more;
  more.out = o.out;
  more.steps = 60;
  more.stop_after = 4;  // to the checkpoint at step 8, which records the new length
  more.threads = 2;
  more.progress = false;
  const TrainResult r = resume_training(more);
  EXPECT_EQ(r.step, 8);  // resumed from the checkpoint at step 4
  EXPECT_EQ(r.steps, 60);
  const auto m = read_metrics(o.out);
  const auto after = losses(m, "loss");
  ASSERT_EQ(after.size(), 8u);
  EXPECT_EQ(std::vector<double>(after.begin(), after.begin() + 4), std::vector<double>(before.begin(), before.begin() + 4));
  EXPECT_DOUBLE_EQ(losses(m, "lr")[5], lr_at(5, 60, 2, o.lr, o.lr / 10));
  const Checkpoint c = load_checkpoint(o.out);
  EXPECT_EQ(c.state["options"]["steps"], 60);
  EXPECT_EQ(c.state["options"]["warmup"], 2);
  // Fewer steps than the run has done is refused, naming the options.
  more.steps = 7;
  try {
    resume_training(more);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--steps"), std::string::npos) << e.what();
  }
}

// --init from a model with a tokenizer: the run trains with it and copies its
// files, so the trained model (and a resumed run) keeps it.
TEST(TrainerTest, InitKeepsTheModelsTokenizer) {
  const std::string dir = temp_dir("train_init_tok");
  std::ofstream(dir + "/cfg.json") << R"({"d_model": 32, "n_layers": 1, "n_heads": 4, "d_ff": 64, "vocab_size": 264,
                                          "max_seq_len": 64, "tie_embeddings": true})";
  save_model(init_model(load_config_file(dir + "/cfg.json"), 1), dir + "/base");
  write_test_tokenizer(dir + "/base");
  std::ofstream(dir + "/base/generation_config.json") << R"({"eos_token_id": 262})";
  TrainOptions o = small_run(dir, dir + "/out");
  o.config.clear();
  o.init = dir + "/base";
  o.steps = 4;
  o.save_every = 2;
  o.stop_after = 3;
  run_training(o);
  for (const char* f : {"tokenizer.json", "tokenizer_config.json", "generation_config.json"})
    EXPECT_EQ(file_bytes(o.out + "/" + f), file_bytes(o.init + "/" + f)) << f;
  ResumeOptions r;
  r.out = o.out;
  r.threads = 2;
  r.progress = false;
  const TrainResult done = resume_training(r);
  EXPECT_EQ(done.step, 4);
  // Bits per byte over the text's bytes: fewer tokens than bytes, so bpb < nats per token / ln 2.
  const TextTokenizer tok = TextTokenizer::for_model(o.out);
  TextData all = load_text_files(o.data, tok), tr, va;
  split_train_val(all, tr, va);
  const Model saved = load_model(o.out);
  const ParamLayout layout = make_layout(saved.config);
  const auto params = params_from_model(saved, layout);
  ThreadPool pool(2);
  Graph<float> g(saved.config, layout);
  const EvalResult ev = evaluate(g, params.data(), va, o.seq, o.batch, o.eval_tokens, pool);
  EXPECT_NEAR(ev.loss, done.val_loss, 1e-9);
  EXPECT_NEAR(ev.bits_per_byte, done.val_bpb, 1e-9);
  EXPECT_LT(ev.tokens, ev.bytes);
  EXPECT_NEAR(ev.bits_per_byte, ev.loss * double(ev.tokens) / std::log(2.0) / double(ev.bytes), 1e-9);
  // A tokenizer.json swapped under a run is refused on resume.
  std::ofstream(o.out + "/tokenizer.json") << "{}";
  EXPECT_THROW(resume_training(r), Error);
}

TEST(TrainerTest, CheckpointIsAtomicAndValidated) {
  const std::string dir = temp_dir("train_ckpt");
  TrainOptions o = small_run(dir, dir + "/out");
  o.stop_after = 5;
  run_training(o);
  const Checkpoint c = load_checkpoint(o.out);
  EXPECT_EQ(c.step, 4);
  EXPECT_EQ(c.adam_steps, 4);
  EXPECT_EQ(c.state["options"]["steps"], 12);
  // A pointer to a missing directory, or a corrupted optimizer file, is a clear error.
  const std::string opt = o.out + "/ckpt-00000004/optimizer.safetensors";
  const std::string saved = file_bytes(opt);
  std::ofstream(opt, std::ios::binary) << saved.substr(0, saved.size() / 2);
  try {
    load_checkpoint(o.out);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("optimizer.safetensors"), std::string::npos) << e.what();
  }
  std::ofstream(o.out + "/checkpoint.json") << R"({"dir": "../elsewhere", "step": 4})";
  EXPECT_THROW(load_checkpoint(o.out), Error);
  EXPECT_FALSE(has_checkpoint(dir + "/none"));
  EXPECT_THROW(load_checkpoint(dir + "/none"), Error);
}

TEST(TrainerTest, NonFiniteLossStopsWithTheStepAndTensor) {
  const std::string dir = temp_dir("train_nan");
  TrainOptions o = small_run(dir, dir + "/out");
  o.lr = 1e30;
  o.warmup = 0;
  o.clip = 0;
  try {
    run_training(o);
    FAIL() << "a diverging run must stop";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("step "), std::string::npos) << msg;
    EXPECT_TRUE(msg.find("non-finite") != std::string::npos || msg.find("overflowed") != std::string::npos) << msg;
  }
}

TEST(TrainerTest, InitStartsFromTheGivenModel) {
  const std::string dir = temp_dir("train_init");
  const TrainOptions first = small_run(dir, dir + "/first");
  run_training(first);
  TrainOptions tuned = small_run(dir, dir + "/tuned");
  tuned.config.clear();
  tuned.init = first.out;
  tuned.steps = 2;
  run_training(tuned);
  // The fine-tuning run starts where the first run ended, far below a fresh model's loss.
  const double start_first = losses(read_metrics(first.out), "loss").front();
  const double start_tuned = losses(read_metrics(tuned.out), "loss").front();
  EXPECT_LT(start_tuned, start_first - 0.5);
  EXPECT_EQ(load_model(tuned.out).config, load_model(first.out).config);
}

TEST(TrainerTest, Bf16ComputeTracksF32) {
  const std::string dir = temp_dir("train_bf16");
  TrainOptions a = small_run(dir, dir + "/f32"), b = small_run(dir, dir + "/bf16");
  b.bf16 = true;
  const double la = run_training(a).val_loss, lb = run_training(b).val_loss;
  EXPECT_NEAR(la, lb, 0.05 * la);
  EXPECT_NE(la, lb);  // the switch is live
}

TEST(TrainerTest, BadOptionsAreRefusedByName) {
  const std::string dir = temp_dir("train_bad");
  TrainOptions o = small_run(dir, dir + "/out");
  o.seq = 0;
  EXPECT_THROW(run_training(o), Error);
  o = small_run(dir, dir + "/out");
  o.steps = 0;
  try {
    run_training(o);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--steps"), std::string::npos) << e.what();
  }
  o = small_run(dir, dir + "/out");
  std::ofstream(dir + "/v100.json") << R"({"d_model": 32, "n_layers": 1, "n_heads": 4, "d_ff": 64, "vocab_size": 100})";
  o.config = dir + "/v100.json";
  try {
    run_training(o);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("vocab_size is 100"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tpp::test
