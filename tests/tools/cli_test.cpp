// End-to-end: the tpp binary as a user runs it.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/test_util.h"
#include "tpp/core/utf8.h"
#include "tpp/model/kv_cache.h"
#include "tpp/model/model.h"

namespace tpp::test {
namespace {

std::string tpp(const std::string& args, int* code) {
  std::string out;
  *code = run_command(tpp_binary() + " " + args, &out);
  return out;
}

void write(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

int count_of(const std::string& s, const std::string& what) {
  int n = 0;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}

TEST(CliTest, KvCacheReproducesTheSeedFigures) {
  int code;
  // LLaMA-2-7B shape at 1,024 tokens in 16-bit: 536,870,912 bytes; GQA-8 (Mistral-7B) 134 MB; MQA 16.8 MB.
  auto out = tpp("kv-cache --config " + source_path("configs/llama2_7b.json") + " --tokens 1024 --dtype f16", &code);
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("536870912 bytes"), std::string::npos) << out;
  out = tpp("kv-cache --config " + source_path("configs/mistral_7b.json") + " --tokens 1024", &code);
  EXPECT_NE(out.find("134217728 bytes"), std::string::npos) << out;
  out = tpp("kv-cache --config " + source_path("configs/llama2_7b_mqa.json") + " --tokens 1024", &code);
  EXPECT_NE(out.find("16777216 bytes"), std::string::npos) << out;
  // Mistral's window caps every layer at 4,096 positions.
  out = tpp("kv-cache --config " + source_path("configs/mistral_7b.json") + " --tokens 32768 --dtype f32", &code);
  EXPECT_NE(out.find(std::to_string(2LL * 32 * 8 * 128 * 4096 * 4) + " bytes"), std::string::npos) << out;
  // q8_0: 34 bytes per 32 values, what the engine allocates (KvCacheTypeTest checks KvCache's own arrays).
  out = tpp("kv-cache --config " + source_path("configs/llama2_7b.json") + " --tokens 1024 --kv-type q8_0", &code);
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find(std::to_string(2LL * 32 * 32 * 1024 * 128 / 32 * 34) + " bytes"), std::string::npos) << out;
  EXPECT_EQ(kv_cache_bytes(load_config_file(source_path("configs/llama2_7b.json")), 1024, DType::q8_0),
            2LL * 32 * 32 * 1024 * 136);
}

TEST(CliTest, KvCacheCountsClaAndPerLayerHeads) {
  const std::string dir = temp_dir("cli_kv");
  write(dir + "/cfg.json", R"({"d_model": 64, "n_layers": 4, "n_heads": 4, "n_kv_heads": [4, 4, 2, 2],
                               "cla_share": 2, "sliding_window": 8, "layer_types": ["local", "local", "global", "global"]})");
  int code;
  const auto out = tpp("kv-cache --config " + dir + "/cfg.json --tokens 100 --dtype f32", &code);
  // Layer 0 owns 4 heads x 16 dims capped at 8 positions; layer 2 owns 2 heads x 16 at 100.
  const long expected = 2L * (4 * 16 * 8 + 2 * 16 * 100) * 4;
  EXPECT_NE(out.find(std::to_string(expected) + " bytes"), std::string::npos) << out;
}

TEST(CliTest, InitThenGenerateGreedyIsDeterministic) {
  const std::string dir = temp_dir("cli_gen");
  int code;
  auto out = tpp("init --config " + source_path("configs/tiny.json") + " --out " + dir + "/m --seed 3", &code);
  ASSERT_EQ(code, 0) << out;
  ASSERT_TRUE(std::filesystem::exists(dir + "/m/model.safetensors"));
  const std::string gen = "generate -m " + dir + "/m --prompt-ids 5,6,7 -n 12 --temp 0 --ids -t 2";
  const auto a = tpp(gen, &code);
  ASSERT_EQ(code, 0) << a;
  EXPECT_EQ(tpp(gen, &code), a);
  EXPECT_EQ(std::count(a.begin(), a.end(), ','), 11) << a;
  // Text through the byte tokenizer, sampled with a seed: repeatable too.
  const std::string sampled = "generate -m " + dir + "/m -p \"Hello\" -n 8 --temp 0.9 --top-k 20 --top-p 0.9 --min-p 0.01 --repeat-penalty 1.1 --seed 4";
  const auto s1 = tpp(sampled, &code);
  ASSERT_EQ(code, 0) << s1;
  EXPECT_EQ(tpp(sampled, &code), s1);
}

TEST(CliTest, BadInputsFailCleanly) {
  const std::string dir = temp_dir("cli_bad");
  int code;
  write(dir + "/bad.json", R"({"n_heads": 8, "n_kv_heads": 3})");
  auto out = tpp("init --config " + dir + "/bad.json --out " + dir + "/m", &code);
  EXPECT_EQ(code, 1);
  EXPECT_NE(out.find("n_kv_heads"), std::string::npos) << out;
  EXPECT_NE(out.find("got 3"), std::string::npos) << out;
  write(dir + "/broken.json", R"({"n_heads": 8,)");
  out = tpp("init --config " + dir + "/broken.json --out " + dir + "/m", &code);
  EXPECT_EQ(code, 1);
  EXPECT_NE(out.find("malformed JSON"), std::string::npos) << out;
  out = tpp("generate -m " + dir + "/nonexistent -p hi", &code);
  EXPECT_EQ(code, 1);
  EXPECT_NE(out.find("nonexistent"), std::string::npos) << out;
  out = tpp("generate -m " + dir + " --prompt-ids 1,x", &code);
  EXPECT_NE(code, 0);
}

TEST(CliTest, VersionNamesTheSimdPath) {
  int code;
  const auto out = tpp("--version", &code);
  EXPECT_EQ(code, 0);
  EXPECT_NE(out.find("SIMD"), std::string::npos) << out;
}

// `tpp bench -o json` is one object a script can read, with figures that
// agree with each other (ops = 2 x matrix elements per token x tokens/s).
TEST(CliTest, BenchPrintsOneJsonObjectForScripts) {
  int code;
  const std::string dir = temp_dir("cli_bench");
  auto out = tpp("init --config " + source_path("configs/tiny.json") + " --out " + dir + "/m --dtype bf16", &code);
  ASSERT_EQ(code, 0) << out;
  out = tpp("bench -m " + dir + "/m -p 16 -n 4 -r 3 -t 1 -o json", &code);
  ASSERT_EQ(code, 0) << out;
  const auto j = nlohmann::json::parse(out);
  EXPECT_EQ(j.at("dtype"), "bf16");
  EXPECT_EQ(j.at("prompt_tokens"), 16);
  EXPECT_EQ(j.at("decode_tokens"), 4);
  for (const char* k : {"load_s", "prefill_tokens_per_s", "prefill_matmul_gops", "decode_tokens_per_s",
                        "weight_bytes_per_token", "bandwidth_gb_per_s", "roofline"})
    EXPECT_GT(j.at(k).get<double>(), 0) << k;
  for (const char* k : {"prefill_tokens_per_s", "decode_tokens_per_s"}) {
    const std::string key(k);
    EXPECT_LE(j.at(key + "_mean").get<double>(), j.at(key).get<double>()) << "the best of 3 is at least their mean";
    EXPECT_GE(j.at(key + "_sd").get<double>(), 0) << key;
  }
  EXPECT_NEAR(j.at("decode_ms_per_token").get<double>() * j.at("decode_tokens_per_s").get<double>(), 1e3, 1e-6);
  const Model m = load_model(dir + "/m");
  EXPECT_EQ(j.at("weight_bytes_per_token").get<double>(), double(m.weights.matrix_bytes_per_token()));
  EXPECT_NEAR(j.at("prefill_matmul_gops").get<double>(),
              2e-9 * double(m.weights.matrix_elements_per_token()) * j.at("prefill_tokens_per_s").get<double>(), 1e-9);
  EXPECT_NE(tpp("bench -m " + dir + "/m -o yaml", &code).find("yaml"), std::string::npos);
  EXPECT_NE(code, 0);
}

}  // namespace
}  // namespace tpp::test

namespace tpp::test {
namespace {

// `tpp config --check` reads every kind of config without loading weights: a
// tpp config, a Hugging Face config.json (file or directory, here one with no
// weights at all), the gemma3 multimodal wrapper, and a GGUF file.
TEST(CliTest, ConfigCheckReadsTppHfAndGgufConfigs) {
  int code;
  auto out = tpp("config --check " + source_path("configs/tiny.json"), &code);
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("# tpp config"), std::string::npos) << out;
  EXPECT_NE(out.find("\"d_model\""), std::string::npos) << out;

  const std::string smollm = source_path("tests/data/hf_configs/smollm2_135m.json");
  out = tpp("config --check " + smollm, &code);
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("model_type \"llama\""), std::string::npos) << out;
  EXPECT_NE(out.find("\"d_model\": 576"), std::string::npos) << out;
  EXPECT_NE(out.find("\"n_kv_heads\": 3"), std::string::npos) << out;

  const std::string dir = temp_dir("cli_config_check");
  std::filesystem::create_directories(dir + "/smollm");
  std::filesystem::copy_file(smollm, dir + "/smollm/config.json", std::filesystem::copy_options::overwrite_existing);
  EXPECT_EQ(tpp("config --check " + dir + "/smollm", &code), out);
  EXPECT_EQ(code, 0);

  out = tpp("config --check " + source_path("tests/golden/models/hf_qwen3_f32"), &code);
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("model_type \"qwen3\""), std::string::npos) << out;
  EXPECT_NE(out.find("\"qk_norm\": true"), std::string::npos) << out;

  out = tpp("config --check " + source_path("tests/data/hf_configs/gemma3_4b_it.json"), &code);
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("vision"), std::string::npos) << out;
  EXPECT_NE(out.find("other towers skipped"), std::string::npos) << out;
  EXPECT_NE(out.find("\"d_model\": 2560"), std::string::npos) << out;

  out = tpp("config --check " + source_path("tests/golden/gguf/gemma2_f32.gguf"), &code);
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("GGUF file, architecture gemma2"), std::string::npos) << out;
  EXPECT_NE(out.find("\"norm_placement\": \"sandwich\""), std::string::npos) << out;

  out = tpp("config --check " + source_path("tests/data/hf_configs/gemma3_1b_pt_mlx_6bit.json"), &code);
  EXPECT_NE(code, 0);
  EXPECT_NE(out.find("quantization"), std::string::npos) << out;
}

TEST(CliTest, ConfigDocsAreGeneratedFromTheFieldList) {
  int code;
  const auto out = tpp("config --markdown", &code);
  ASSERT_EQ(code, 0);
  std::ifstream in(source_path("docs/config.md"));
  const std::string doc((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(doc, out) << "docs/config.md is stale: regenerate with `tpp config --markdown > docs/config.md`";
}

// A run killed with SIGKILL at arbitrary moments (checkpoints are written
// every step, so some kills land mid-write) resumes from its last good
// checkpoint and ends with the uninterrupted run's exact losses and model.
TEST(CliTest, TrainKilledAnywhereResumesToTheSameResult) {
  const std::string dir = temp_dir("cli_train_kill");
  std::string text;
  for (int i = 0; i < 300; ++i) text += "It was the best of times, it was the worst of times " + std::to_string(i) + ".\n";
  write(dir + "/corpus.txt", text);
  write(dir + "/cfg.json", R"({"d_model": 48, "n_layers": 2, "n_heads": 4, "n_kv_heads": 2, "d_ff": 96,
                               "vocab_size": 260, "max_seq_len": 64, "tie_embeddings": true})");
  const std::string common = "train --config " + dir + "/cfg.json --data " + dir +
                             "/corpus.txt --steps 40 --batch 4 --seq 32 --save-every 1 --eval-every 0 -t 2 -q";
  int code;
  auto out = tpp(common + " --out " + dir + "/full", &code);
  ASSERT_EQ(code, 0) << out;
  out = tpp(common + " --out " + dir + "/killed --stop-after 2", &code);  // a first checkpoint
  ASSERT_EQ(code, 0) << out;
  for (const char* after : {"0.15", "0.3", "0.45"})
    run_command("timeout -s KILL " + std::string(after) + " " + tpp_binary() + " train --resume " + dir + "/killed -q -t 2",
                &out);
  out = tpp("train --resume " + dir + "/killed -q -t 2", &code);
  ASSERT_EQ(code, 0) << out;
  auto read = [](const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  };
  EXPECT_EQ(read(dir + "/full/model.safetensors"), read(dir + "/killed/model.safetensors"));
  // The metrics keep one line per step, with the same losses.
  auto losses = [&](const std::string& path) {
    std::vector<std::string> out;
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
      const auto at = line.find("\"loss\":");
      if (at != std::string::npos) out.push_back(line.substr(at, line.find(',', at) - at));
    }
    return out;
  };
  const auto a = losses(dir + "/full/metrics.jsonl"), b = losses(dir + "/killed/metrics.jsonl");
  EXPECT_EQ(a.size(), 40u);
  EXPECT_EQ(a, b);
}

TEST(CliTest, EvalPrintsLossPerplexityAndBitsPerByte) {
  const std::string dir = temp_dir("cli_eval");
  int code;
  auto out = tpp("init --config " + source_path("configs/tiny.json") + " --out " + dir + "/m", &code);
  ASSERT_EQ(code, 0) << out;
  write(dir + "/text.txt", "A short held-out text, evaluated in windows of a few bytes each.\n");
  out = tpp("eval -m " + dir + "/m --data " + dir + "/text.txt --seq 16 -t 2", &code);
  ASSERT_EQ(code, 0) << out;
  EXPECT_NE(out.find("bits per byte"), std::string::npos) << out;
  EXPECT_NE(out.find("perplexity"), std::string::npos) << out;
  // An untrained byte model is near uniform over 260 ids: ~8 bits per byte.
  const auto at = out.find("bpb");
  ASSERT_NE(at, std::string::npos);
  EXPECT_NEAR(std::stod(out.substr(at + 3)), std::log2(260.0), 0.3) << out;
  EXPECT_NE(out.find("tokenizer   byte-level"), std::string::npos) << out;
  out = tpp("eval -m " + dir + "/m --data " + dir + "/missing.txt", &code);
  EXPECT_NE(code, 0);
  EXPECT_NE(out.find("missing.txt"), std::string::npos) << out;
}

TEST(CliTest, QuantizeThenPerplexityAgainstTheBase) {
  const std::string dir = temp_dir("cli_quantize");
  int code;
  auto out = tpp("init --config " + source_path("configs/tiny.json") + " --out " + dir + "/m", &code);
  ASSERT_EQ(code, 0) << out;
  out = tpp("quantize -m " + dir + "/m --type q8_0 --out " + dir + "/m-q8_0.gguf", &code);
  ASSERT_EQ(code, 0) << out;
  EXPECT_NE(out.find("blk.0.attn_q.weight"), std::string::npos) << out;
  EXPECT_NE(out.find("8.500 bits per matrix weight"), std::string::npos) << out;
  std::string text;
  for (int i = 0; i < 40; ++i) text += "Every chunk of this text is scored in its second half. ";
  write(dir + "/text.txt", text);
  out = tpp("perplexity -m " + dir + "/m-q8_0.gguf --kld-base " + dir + "/m -f " + dir +
                "/text.txt --ctx 128 --chunks 3 -o json -t 2",
            &code);
  ASSERT_EQ(code, 0) << out;
  const auto j = nlohmann::json::parse(out.substr(out.find('{')));
  EXPECT_EQ(j["chunks"], 3);
  EXPECT_EQ(j["tokens"], 3 * 63);
  EXPECT_NEAR(j["ppl"]["value"].get<double>(), 260.0, 80.0);  // an untrained byte model: near uniform
  EXPECT_LT(j["kld"]["value"].get<double>(), 1e-3);
  EXPECT_GE(j["same_top"]["value"].get<double>(), 0.5);
  out = tpp("perplexity -m " + dir + "/m -f " + dir + "/text.txt --ctx 128", &code);
  ASSERT_EQ(code, 0) << out;
  EXPECT_NE(out.find("perplexity  "), std::string::npos) << out;
  EXPECT_EQ(out.find("KLD"), std::string::npos) << out;
  out = tpp("quantize -m " + dir + "/m --type q3_k --out " + dir + "/x.gguf", &code);
  EXPECT_NE(code, 0);
  EXPECT_NE(out.find("--type"), std::string::npos) << out;
}

// --kv-type reaches the cache: against the same model with an f32 cache the
// KL divergence is exactly 0 for f32 and grows as the type narrows.
TEST(CliTest, KvTypeOptionSetsTheCacheType) {
  const std::string dir = temp_dir("cli_kv_type");
  int code;
  auto out = tpp("init --config " + source_path("configs/tiny.json") + " --out " + dir + "/m --seed 5", &code);
  ASSERT_EQ(code, 0) << out;
  std::string text;
  for (int i = 0; i < 30; ++i) text += "The cache holds each key and value in the type asked for. ";
  write(dir + "/text.txt", text);
  std::map<std::string, double> kld;
  for (const std::string t : {"f32", "f16", "bf16", "q8_0"}) {
    out = tpp("perplexity -m " + dir + "/m --kld-base " + dir + "/m -f " + dir + "/text.txt --ctx 128 --chunks 2 -o json --kv-type " + t, &code);
    ASSERT_EQ(code, 0) << out;
    const auto j = nlohmann::json::parse(out.substr(out.find('{')));
    EXPECT_EQ(j["kv_type"], t);
    kld[t] = j["kld"]["value"].get<double>();
  }
  EXPECT_EQ(kld["f32"], 0.0);
  EXPECT_GT(kld["f16"], 0.0);
  EXPECT_LT(kld["f16"], kld["bf16"]);
  EXPECT_LT(kld["f16"], kld["q8_0"]);
  EXPECT_LT(kld["q8_0"], 1e-3);
  const std::string gen = "generate -m " + dir + "/m --prompt-ids 5,6,7 -n 6 --temp 0 --ids --kv-type q8_0";
  out = tpp(gen, &code);
  EXPECT_EQ(code, 0) << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), ','), 5) << out;
  out = tpp("generate -m " + dir + "/m --prompt-ids 5 -n 1 --kv-type q4_0", &code);
  EXPECT_NE(code, 0);
  EXPECT_NE(out.find("--kv-type"), std::string::npos) << out;
  out = tpp("bench -m " + dir + "/m -p 8 -n 4 -r 1 -o json --kv-type bf16", &code);
  ASSERT_EQ(code, 0) << out;
  const auto b = nlohmann::json::parse(out.substr(out.find('{')));
  EXPECT_EQ(b["kv_type"], "bf16");
  EXPECT_EQ(b["kv_bytes_per_position"], 4 * 2 * 2 * 32 * 2);  // layers x K,V x kv heads x head_dim x 2 bytes
}

TEST(CliTest, TokenizePrintsIdsAndHonoursTheSpecialFlags) {
  const std::string dir = source_path("data/tokenizers/llama3");
  if (!std::filesystem::exists(dir + "/tokenizer.json"))
    GTEST_SKIP() << dir << "/tokenizer.json is absent: run scripts/get_tokenizers.sh";
  int code;
  auto out = tpp("tokenize -m " + dir + " --ids -p \"Hello, world!<|eot_id|>\"", &code);
  ASSERT_EQ(code, 0) << out;
  EXPECT_EQ(out, "9906,11,1917,0,128009\n");
  out = tpp("tokenize -m " + dir + " --ids --no-parse-special -p \"<|eot_id|>\"", &code);
  EXPECT_EQ(code, 0) << out;
  EXPECT_EQ(out.find("128009"), std::string::npos) << out;
  out = tpp("tokenize -m " + dir + " -p \"Hello\"", &code);
  EXPECT_NE(out.find("\"Hello\""), std::string::npos) << out;
  out = tpp("tokenize -m " + source_path("configs") + " -p x", &code);
  EXPECT_NE(code, 0);
  EXPECT_NE(out.find("tokenizer.json"), std::string::npos) << out;
}

// A model directory with a tokenizer.json: generate encodes the prompt with it
// and streams whole UTF-8 characters (a random model emits arbitrary byte
// tokens: invalid sequences print as U+FFFD, never as broken bytes).
TEST(CliTest, GenerateUsesTheModelsTokenizer) {
  const std::string tok = source_path("data/tokenizers/qwen3");
  if (!std::filesystem::exists(tok + "/tokenizer.json"))
    GTEST_SKIP() << tok << "/tokenizer.json is absent: run scripts/get_tokenizers.sh";
  const std::string dir = temp_dir("cli_gen_tok");
  write(dir + "/cfg.json", R"({"d_model": 16, "n_layers": 1, "n_heads": 2, "d_ff": 32, "vocab_size": 151669,
                               "max_seq_len": 64, "tie_embeddings": true})");
  int code;
  auto out = tpp("init --config " + dir + "/cfg.json --out " + dir + "/m", &code);
  ASSERT_EQ(code, 0) << out;
  std::filesystem::copy_file(tok + "/tokenizer.json", dir + "/m/tokenizer.json");
  std::filesystem::copy_file(tok + "/tokenizer_config.json", dir + "/m/tokenizer_config.json");
  out = tpp("generate -m " + dir + "/m -p \"你好，世界\" -n 24 --temp 1 --seed 5 -t 2", &code);
  ASSERT_EQ(code, 0) << out;
  // Valid UTF-8 throughout: no character cut between two tokens.
  EXPECT_EQ(utf8::valid_prefix(out), out.size()) << "ill-formed UTF-8 from byte " << utf8::valid_prefix(out);
}

// A GGUF file runs as it is: tokenize, generate (plain and --chat) and an
// interactive chat whose second turn reuses the first turn's cache.
TEST(CliTest, GgufFileTokenizesGeneratesAndChats) {
  const std::string q8 = source_path("tests/golden/gguf/qwen3_q8_0.gguf");
  int code;
  auto out = tpp("tokenize -m " + q8 + " -p \"the cat\" --ids", &code);
  ASSERT_EQ(code, 0) << out;
  EXPECT_EQ(out, "10,14\n");
  out = tpp("tokenize -m " + source_path("tests/golden/gguf/tokenizer_spm.gguf") + " -p \"the cat sat\" --ids", &code);
  ASSERT_EQ(code, 0) << out;
  EXPECT_EQ(out, "1,268,271,273\n");

  const std::string greedy = tpp("generate -m " + q8 + " -p \"the cat\" -n 6 --ids -t 1", &code);
  ASSERT_EQ(code, 0) << greedy;
  EXPECT_EQ(greedy, tpp("generate -m " + q8 + " -p \"the cat\" -n 6 --ids -t 2", &code)) << "deterministic";
  // --chat renders <|im_start|>the cat<|im_end|><|im_start|> before generating.
  const std::string chat = tpp("generate -m " + q8 + " -p \"the cat\" --chat -n 6 --ids -t 1", &code);
  ASSERT_EQ(code, 0) << chat;
  EXPECT_NE(chat, greedy) << "the template changes the prompt";
  out = tpp("generate -m " + q8 + " --prompt-ids 18,10,14,19,18 -n 6 --ids -t 1", &code);
  EXPECT_EQ(out, chat) << "--chat equals the rendered ids given by hand";

  // Two turns; --stats reports how many prompt tokens each turn prefilled.
  out = tpp("chat -m " + q8 + " -n 3 --temp 0 --stats -t 1 < /dev/null", &code);
  EXPECT_EQ(code, 0) << out;
  const std::string dir = temp_dir("cli_chat");
  write(dir + "/in.txt", "the cat\nsat\n");
  out = tpp("chat -m " + q8 + " -n 3 --temp 0 --stats -t 1 < " + dir + "/in.txt", &code);
  ASSERT_EQ(code, 0) << out;
  EXPECT_NE(out.find("[prefill 5 tokens"), std::string::npos) << out;
  // Turn 2 prefills only what follows the cached turn 1 (the reply, its end
  // and the new user turn), not the whole conversation again.
  const size_t second = out.find("[prefill", out.find("[prefill") + 1);
  ASSERT_NE(second, std::string::npos) << out;
  const int prefilled = std::stoi(out.substr(second + 9));
  EXPECT_LT(prefilled, 9) << out;

  out = tpp("chat -m " + source_path("tests/golden/models/hf_llama_f32") + " < /dev/null", &code);
  EXPECT_NE(code, 0);
  EXPECT_NE(out.find("has no tokenizer"), std::string::npos) << out;
}


// The number after `label` on its line of `out` (e.g. "tokens      1234").
double figure(const std::string& out, const std::string& label) {
  const auto at = out.find("\n" + label);
  if (at == std::string::npos) return NAN;
  return std::stod(out.substr(at + 1 + label.size()));
}

std::string line_with(const std::string& out, const std::string& what) {
  const auto at = out.find(what);
  if (at == std::string::npos) return "";
  const auto begin = out.rfind('\n', at), end = out.find('\n', at);
  return out.substr(begin == std::string::npos ? 0 : begin + 1, end - (begin == std::string::npos ? 0 : begin + 1));
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// eval measures at the length the model was trained for unless told otherwise:
// --seq defaults to max_seq_len; beyond it only with --allow-longer, and a warning.
TEST(CliTest, EvalDefaultsToTheTrainedLengthAndRefusesLonger) {
  const std::string dir = temp_dir("cli_eval_len");
  write(dir + "/cfg.json", R"({"d_model": 32, "n_layers": 1, "n_heads": 4, "d_ff": 64, "vocab_size": 260,
                               "max_seq_len": 32, "tie_embeddings": true})");
  int code;
  auto out = tpp("init --config " + dir + "/cfg.json --out " + dir + "/m", &code);
  ASSERT_EQ(code, 0) << out;
  std::string text;
  for (int i = 0; i < 20; ++i) text += "Some held-out text, line " + std::to_string(i) + ".\n";
  write(dir + "/text.txt", text);
  const std::string eval = "eval -m " + dir + "/m --data " + dir + "/text.txt -t 2";
  out = tpp(eval, &code);
  ASSERT_EQ(code, 0) << out;
  EXPECT_NE(out.find("window      32 tokens (max_seq_len 32)"), std::string::npos) << out;
  EXPECT_EQ(out.find("warning"), std::string::npos) << out;
  out = tpp(eval + " --seq 64", &code);
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("max_seq_len 32"), std::string::npos) << out;
  EXPECT_NE(out.find("--allow-longer"), std::string::npos) << out;
  out = tpp(eval + " --seq 64 --allow-longer", &code);
  ASSERT_EQ(code, 0) << out;
  EXPECT_NE(out.find("warning: windows of 64 tokens exceed the model's max_seq_len 32"), std::string::npos) << out;
  EXPECT_NE(out.find("window      64 tokens"), std::string::npos) << out;
}

// A model directory with a tokenizer.json: eval and train --init tokenize with
// it (and say so), bits per byte counts the text's bytes, and the trained
// model carries the tokenizer files.
TEST(CliTest, EvalAndTrainUseTheModelsTokenizer) {
  const std::string dir = temp_dir("cli_tok_train");
  write(dir + "/cfg.json", R"({"d_model": 32, "n_layers": 1, "n_heads": 4, "d_ff": 64, "vocab_size": 264,
                               "max_seq_len": 512, "tie_embeddings": true})");
  int code;
  auto out = tpp("init --config " + dir + "/cfg.json --out " + dir + "/base --seed 2", &code);
  ASSERT_EQ(code, 0) << out;
  write_test_tokenizer(dir + "/base");
  std::string text = "A";
  for (int i = 0; i < 12; ++i) text += " the cat sat on the mat, caf\u00e9 " + std::to_string(i) + ".";
  write(dir + "/text.txt", text);
  out = tpp("eval -m " + dir + "/base --data " + dir + "/text.txt -t 2", &code);
  ASSERT_EQ(code, 0) << out;
  EXPECT_NE(out.find("tokenizer   tokenizer.json (263 tokens)"), std::string::npos) << out;
  // One window covers the whole text: every byte but the first token's "A" is a target's.
  EXPECT_EQ(figure(out, "bytes"), double(text.size() - 1)) << out;
  const double tokens = figure(out, "tokens"), loss = figure(out, "loss");
  EXPECT_LT(tokens, double(text.size()) * 0.7) << out;
  EXPECT_NEAR(figure(out, "bpb"), loss * tokens / std::log(2.0) / double(text.size() - 1), 2e-3) << out;

  std::string corpus;
  for (int i = 0; i < 20; ++i) corpus += text + "\n";
  write(dir + "/corpus.txt", corpus);
  out = tpp("train --init " + dir + "/base --data " + dir + "/corpus.txt --out " + dir +
                "/tuned --steps 3 --batch 2 --seq 32 --eval-tokens 256 -t 2",
            &code);
  ASSERT_EQ(code, 0) << out;
  EXPECT_NE(out.find("tokenizer tokenizer.json (263 tokens)"), std::string::npos) << out;
  for (const char* f : {"tokenizer.json", "tokenizer_config.json"})
    EXPECT_EQ(read_file(dir + "/tuned/" + f), read_file(dir + "/base/" + f)) << f;
  EXPECT_NE(read_file(dir + "/tuned/loss.svg").find("<polyline"), std::string::npos);
  out = tpp("eval -m " + dir + "/tuned --data " + dir + "/text.txt -t 2", &code);
  ASSERT_EQ(code, 0) << out;
  EXPECT_NE(out.find("tokenizer   tokenizer.json (263 tokens)"), std::string::npos) << out;
  // A byte-level run into the same directory leaves no stale tokenizer behind.
  write(dir + "/cfg260.json", R"({"d_model": 32, "n_layers": 1, "n_heads": 4, "d_ff": 64, "vocab_size": 260,
                                  "max_seq_len": 64, "tie_embeddings": true})");
  out = tpp("train --config " + dir + "/cfg260.json --data " + dir + "/corpus.txt --out " + dir +
                "/tuned --steps 2 --batch 2 --seq 32 --eval-tokens 256 -t 2 -q",
            &code);
  ASSERT_EQ(code, 0) << out;
  EXPECT_FALSE(std::filesystem::exists(dir + "/tuned/tokenizer.json"));
}

// --resume keeps the run's data, batch shape, schedule and optimizer (and says
// so by name when asked to change them) and honours a new length and cadence.
TEST(CliTest, ResumeHonoursLengthAndRefusesFixedOptions) {
  const std::string dir = temp_dir("cli_resume_opts");
  std::string text;
  for (int i = 0; i < 200; ++i) text += "It was the best of times, it was the worst of times " + std::to_string(i) + ".\n";
  write(dir + "/corpus.txt", text);
  write(dir + "/cfg.json", R"({"d_model": 32, "n_layers": 1, "n_heads": 4, "d_ff": 64, "vocab_size": 260,
                               "max_seq_len": 64, "tie_embeddings": true})");
  int code;
  auto out = tpp("train --config " + dir + "/cfg.json --data " + dir + "/corpus.txt --out " + dir +
                     "/run --steps 6 --batch 2 --seq 16 --save-every 2 --eval-every 0 --eval-tokens 256 -t 2 -q",
                 &code);
  ASSERT_EQ(code, 0) << out;
  auto steps_logged = [&] {
    const std::string m = read_file(dir + "/run/metrics.jsonl");
    return count_of(m, "\"loss\":");
  };
  EXPECT_EQ(steps_logged(), 6);
  for (const std::string& fixed : std::vector<std::string>{"--batch 4", "--seq 8", "--lr 0.01", "--data " + dir +
                                                          "/corpus.txt", "--seed 3", "--clip 0.5", "--warmup 1", "--bf16"}) {
    out = tpp("train --resume " + dir + "/run -q -t 2 " + fixed, &code);
    EXPECT_EQ(code, 1) << fixed << ": " << out;
    const std::string name = fixed.substr(0, fixed.find(' '));
    EXPECT_NE(out.find(name + " cannot change in a resumed run"), std::string::npos) << out;
  }
  // More steps, a new checkpoint cadence, stopped early: all honoured.
  out = tpp("train --resume " + dir + "/run --steps 12 --save-every 1 --stop-after 3 -q -t 2", &code);
  ASSERT_EQ(code, 0) << out;
  EXPECT_EQ(steps_logged(), 9);
  EXPECT_NE(read_file(dir + "/run/checkpoint.json").find("\"step\": 9"), std::string::npos)
      << read_file(dir + "/run/checkpoint.json");
  out = tpp("train --resume " + dir + "/run -q -t 2", &code);  // the new length is the run's now
  ASSERT_EQ(code, 0) << out;
  EXPECT_EQ(steps_logged(), 12);
}

// --help shows every default (generate samples at 0.8, chat at 0.7), and the
// CLI refuses exactly what the sampler and the trainer refuse, by the option's name.
TEST(CliTest, HelpShowsDefaultsAndRangesMatchTheLibrary) {
  int code;
  auto out = tpp("generate --help", &code);
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(line_with(out, "--temp").find("0.8"), std::string::npos) << out;
  EXPECT_NE(line_with(out, "--top-p").find("0.95"), std::string::npos) << out;
  EXPECT_NE(line_with(out, "--top-k").find("40"), std::string::npos) << out;
  out = tpp("chat --help", &code);
  EXPECT_NE(line_with(out, "--temp").find("0.7"), std::string::npos) << out;
  EXPECT_NE(line_with(out, "--top-p").find("0.9"), std::string::npos) << out;
  out = tpp("train --help", &code);
  EXPECT_NE(line_with(out, "--lr").find("0.001"), std::string::npos) << out;
  EXPECT_NE(line_with(out, "--min-lr").find("lr/10"), std::string::npos) << out;
  EXPECT_NE(line_with(out, "--batch").find("16"), std::string::npos) << out;
  out = tpp("eval --help", &code);
  EXPECT_NE(line_with(out, "--seq").find("max_seq_len"), std::string::npos) << out;

  const std::string gen = "generate -m " + temp_dir("cli_ranges") + "/none -p hi ";
  for (const char* bad : {"--top-p 0", "--top-p 1.5", "--min-p 1", "--temp -1", "--repeat-penalty 0",
                          "--repeat-last-n -1", "--top-k -2"}) {
    out = tpp(gen + bad, &code);
    EXPECT_NE(code, 0) << bad;
    const std::string name = std::string(bad).substr(0, std::string(bad).find(' '));
    EXPECT_EQ(out.rfind(name + ": ", 0), 0u) << bad << " must be refused by the CLI: " << out;
  }
  for (const char* good : {"--top-p 1", "--min-p 0", "--temp 0", "--top-p 0.01"}) {
    out = tpp(gen + good, &code);
    EXPECT_NE(out.find("none"), std::string::npos) << good << " passes the CLI and fails at the missing model: " << out;
  }
  const std::string train = "train --config none.json --data none.txt --out " + temp_dir("cli_ranges_train") + " ";
  for (const char* bad : {"--beta1 1", "--beta2 -0.1", "--lr 0", "--clip -1", "--weight-decay -0.5", "--eval-tokens 0"}) {
    out = tpp(train + bad, &code);
    EXPECT_NE(code, 0) << bad;
    const std::string name = std::string(bad).substr(0, std::string(bad).find(' '));
    EXPECT_EQ(out.rfind(name + ": ", 0), 0u) << bad << " must be refused by the CLI: " << out;
  }
}

// bench/compare.sh against a stand-in llama-bench that prints llama-bench's
// JSON (pp 100 tokens/s, tg 20): the table carries tpp's own figures and
// their ratios to the stand-in's.
TEST(CliTest, CompareScriptPrintsRatiosToLlamaBench) {
  std::string out;
  if (run_command("python3 -c pass", &out) != 0) GTEST_SKIP() << "python3 is not installed (bench/compare.sh needs it)";
  const std::string dir = temp_dir("cli_compare");
  write(dir + "/llama-bench", "#!/bin/sh\necho '[{\"n_prompt\": 16, \"n_gen\": 0, \"avg_ts\": 100.0}, "
                               "{\"n_prompt\": 0, \"n_gen\": 4, \"avg_ts\": 20.0}]'\n");
  ASSERT_EQ(run_command("chmod +x " + dir + "/llama-bench", &out), 0) << out;
  const std::string model = source_path("tests/golden/gguf/llama_q8_0.gguf");
  ASSERT_EQ(run_command("TPP=" + tpp_binary() + " PROMPT=16 GEN=4 ROUNDS=2 THREADS=1 " +
                            source_path("bench/compare.sh") + " " + dir + "/llama-bench " + model,
                        &out),
            0)
      << out;
  const size_t row = out.find("| llama_q8_0.gguf | q8_0 | 100.0 | ");
  ASSERT_NE(row, std::string::npos) << out;
  std::vector<std::string> cells;
  std::string line = out.substr(row, out.find('\n', row) - row);
  for (size_t at = 1, next; (next = line.find(" |", at)) != std::string::npos; at = next + 2)
    cells.push_back(line.substr(at + 1, next - at - 1));
  ASSERT_EQ(cells.size(), 10u) << line;
  EXPECT_EQ(cells[5], "20.0") << line;
  EXPECT_NEAR(std::stod(cells[4]), std::stod(cells[3]) / 100.0, 0.006) << line;
  EXPECT_NEAR(std::stod(cells[7]), std::stod(cells[6]) / 20.0, 0.006) << line;
  EXPECT_NE(run_command(source_path("bench/compare.sh") + " " + dir + "/missing " + model, &out), 0);
  EXPECT_NE(out.find("is not an executable llama-bench"), std::string::npos) << out;
}

}  // namespace
}  // namespace tpp::test
