// tpp quantize: the GGUF it writes loads back as the same model (Q/K rows in
// llama.cpp's order), each matrix is byte-identical to quantize_row of the
// source rows, a GGUF source keeps its metadata, and configs GGUF cannot
// express are refused by name without touching `out`. A small trained model
// gives real quality thresholds: q8_0 costs far less KL divergence than q4_0.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "common/test_util.h"
#include "model/model_test_util.h"
#include "tpp/convert/quantize.h"
#include "tpp/infer/perplexity.h"
#include "tpp/io/gguf.h"
#include "tpp/model/model.h"
#include "tpp/quant/quant.h"
#include "tpp/train/data.h"
#include "tpp/train/trainer.h"

namespace tpp {
namespace {

namespace fs = std::filesystem;
using namespace test;

ModelConfig small_config() {
  ModelConfig c;
  c.d_model = 64;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = {2};
  c.d_ff = 96;
  c.vocab_size = 260;
  c.max_seq_len = 64;
  c.rope_theta = 10000.0;
  c.tie_embeddings = true;
  c.validate();
  return c;
}

std::vector<float> logits_of(const Model& m, const std::vector<int32_t>& tokens) {
  return forward_logits(m, tokens, {.threads = 2});
}

std::vector<int32_t> some_tokens(int n) {
  std::vector<int32_t> t;
  for (int i = 0; i < n; ++i) t.push_back((i * 37 + 11) % 256);
  return t;
}

TEST(QuantizeTest, F32FileFromADirectoryComputesTheSameLogits) {
  const std::string dir = temp_dir("quantize_f32");
  for (bool untied : {false, true}) {
    ModelConfig c = small_config();
    c.tie_embeddings = !untied;
    c.qkv_bias = untied;  // biases are permuted with their rows
    const Model m = init_model(c, 5, DType::f32, 3.0);
    save_model(m, dir + "/src");
    const auto s = convert::quantize_model(dir + "/src", dir + "/m.gguf", {DType::f32, false});
    EXPECT_EQ(s.fallback, 0);
    const Model back = load_model(dir + "/m.gguf");
    EXPECT_EQ(back.config.rope_layout, RopeLayout::interleaved);  // llama.cpp's order, rows permuted
    const auto tokens = some_tokens(40);
    const auto want = logits_of(load_model(dir + "/src"), tokens), got = logits_of(back, tokens);
    ASSERT_EQ(got.size(), want.size());
    double worst = 0;
    for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, double(std::abs(got[i] - want[i])));
    EXPECT_LT(worst, 1e-4) << "untied " << untied;  // f32 rounding of a different summation order only
  }
}

TEST(QuantizeTest, MatricesAreQuantizeRowOfTheSourceRows) {
  const std::string dir = temp_dir("quantize_rows");
  const Model m = init_model(small_config(), 6, DType::f32, 3.0);
  save_model(m, dir + "/src");
  for (bool pure : {false, true}) {
    const std::string out = dir + (pure ? "/pure.gguf" : "/mix.gguf");
    convert::quantize_model(dir + "/src", out, {DType::q4_0, pure});
    const io::GgufFile f = io::GgufFile::open(out);
    EXPECT_EQ(f.get_int("general.file_type"), 2);  // MOSTLY_Q4_0
    const io::GgufTensor* down = f.find_tensor("blk.1.ffn_down.weight");
    ASSERT_NE(down, nullptr);
    ASSERT_EQ(down->type, 2u);
    const MatrixRef& w = m.weights.layers[1][TensorId::ffn_down];
    std::vector<float> row(static_cast<size_t>(w.cols));
    std::vector<std::byte> want(size_t(dtype_bytes(DType::q4_0, w.cols)));
    for (int64_t r = 0; r < w.rows; ++r) {
      w.row_f32(r, row.data());
      quant::quantize_row(DType::q4_0, row.data(), w.cols, want.data());
      ASSERT_EQ(std::memcmp(want.data(), down->data + r * int64_t(want.size()), want.size()), 0) << "row " << r;
    }
    // The tied embedding is the output matrix: q8_0 unless --pure.
    EXPECT_EQ(f.find_tensor("token_embd.weight")->type, pure ? 2u : 8u);
    EXPECT_EQ(f.find_tensor("output_norm.weight")->type, 0u);  // vectors stay f32
  }
}

TEST(QuantizeTest, GgufSourceKeepsItsMetadata) {
  const std::string dir = temp_dir("quantize_gguf");
  save_model(init_model(small_config(), 7, DType::f32, 3.0), dir + "/src");
  convert::quantize_model(dir + "/src", dir + "/f16.gguf", {DType::f16, false});
  const auto s = convert::quantize_model(dir + "/f16.gguf", dir + "/q8.gguf", {DType::q8_0, false});
  const io::GgufFile a = io::GgufFile::open(dir + "/f16.gguf"), b = io::GgufFile::open(dir + "/q8.gguf");
  EXPECT_EQ(a.keys(), b.keys());
  for (const auto& k : a.keys()) {
    if (k == "general.file_type") continue;
    EXPECT_EQ(a.find(k)->s, b.find(k)->s) << k;
    EXPECT_EQ(a.find(k)->u, b.find(k)->u) << k;
    EXPECT_EQ(a.find(k)->f, b.find(k)->f) << k;
  }
  EXPECT_EQ(b.get_int("general.file_type"), 7);
  EXPECT_EQ(s.tensors, int64_t(a.tensors().size()));
  for (const auto& t : b.tensors()) EXPECT_EQ(t.type, t.ne.size() == 2 ? 8u : 0u) << t.name;
  // And it runs: within q8_0's error of the f16 file.
  const auto tokens = some_tokens(32);
  const auto want = logits_of(load_model(dir + "/f16.gguf"), tokens);
  const auto got = logits_of(load_model(dir + "/q8.gguf"), tokens);
  EXPECT_LT(nmse(got, want), 1e-3);
}

TEST(QuantizeTest, RefusesWhatGgufCannotSayAndKeepsTheOldOutput) {
  const std::string dir = temp_dir("quantize_refuse");
  ModelConfig c = small_config();
  c.norm = NormKind::layernorm;
  save_model(init_model(c, 8, DType::f32), dir + "/ln");
  std::ofstream(dir + "/out.gguf") << "precious";
  const std::string msg = error_message([&] { convert::quantize_model(dir + "/ln", dir + "/out.gguf", {}); });
  EXPECT_NE(msg.find("'norm'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("llama"), std::string::npos) << msg;
  std::ifstream in(dir + "/out.gguf");
  std::string kept;
  in >> kept;
  EXPECT_EQ(kept, "precious");
  EXPECT_FALSE(fs::exists(dir + "/out.gguf.partial"));

  save_model(init_model(small_config(), 8, DType::f32), dir + "/ok");
  EXPECT_NE(error_message([&] { convert::quantize_model(dir + "/ok", dir + "/x.bin", {}); }).find(".gguf"),
            std::string::npos);
  EXPECT_NE(error_message([&] { convert::quantize_model(dir + "/ok", dir + "/x.gguf", {DType::i32, false}); })
                .find("q4_0"),
            std::string::npos);
  write_test_tokenizer(dir + "/ok");
  EXPECT_NE(error_message([&] { convert::quantize_model(dir + "/ok", dir + "/x.gguf", {}); }).find("tokenizer.json"),
            std::string::npos);
}

// A model trained briefly on repetitive text: its predictions are confident
// enough for the formats' costs to separate.
TEST(QuantizeTest, TrainedModelQ8KeepsTopTokensAndCostsFarLessThanQ4) {
  const std::string dir = temp_dir("quantize_quality");
  std::string text;
  for (int i = 0; i < 300; ++i)
    text += "The quick brown fox jumps over the lazy dog " + std::to_string(i % 23) + ". Pack my box with jugs.\n";
  std::ofstream(dir + "/corpus.txt") << text;
  std::ofstream(dir + "/config.json") << config_to_string(small_config());
  train::TrainOptions o;
  o.config = dir + "/config.json";
  o.data = {dir + "/corpus.txt"};
  o.out = dir + "/run";
  o.steps = 60;
  o.batch = 4;
  o.seq = 64;
  o.lr = 5e-3;
  o.eval_every = 0;
  o.save_every = 0;
  o.threads = 2;
  o.progress = false;
  train::run_training(o);
  for (const char* t : {"q8_0", "q4_0"})
    convert::quantize_model(o.out, dir + "/" + t + ".gguf", {*parse_dtype(t), true});
  const Model base = load_model(o.out);
  const train::TextData data = train::load_text_files({dir + "/corpus.txt"});
  PerplexityOptions opts;
  opts.ctx = 64;
  opts.max_chunks = 24;
  ThreadPool pool(2);
  const auto q8 = perplexity(load_model(dir + "/q8_0.gguf"), &base, data.tokens, opts, pool);
  const auto q4 = perplexity(load_model(dir + "/q4_0.gguf"), &base, data.tokens, opts, pool);
  EXPECT_LT(q8.base_ppl.value, 6.0) << "the model did not learn the text";  // uniform: 260
  std::printf("base ppl %.3f; q8_0 KLD %.6f same top %.4f; q4_0 KLD %.6f same top %.4f\n", q8.base_ppl.value,
              q8.kld.value, q8.same_top.value, q4.kld.value, q4.same_top.value);
  EXPECT_GE(q8.same_top.value, 0.95);
  EXPECT_LT(q8.kld.value * 10, q4.kld.value) << q8.kld.value << " vs " << q4.kld.value;
  EXPECT_LT(q8.kld.value, 0.01);
  EXPECT_LT(std::abs(q8.ln_ratio.value), 0.02);
  EXPECT_GT(q4.kld.value, 0);
}

}  // namespace
}  // namespace tpp
