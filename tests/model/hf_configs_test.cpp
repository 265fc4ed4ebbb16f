// Real config.json files of published checkpoints (tests/data/hf_configs,
// copied verbatim; SOURCES.md says from where) map onto the switches each
// family implies. The expected values are written out per file, so a mapping
// that drifts fails here.
#include <cmath>
#include <filesystem>
#include <set>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/test_util.h"
#include "tpp/core/error.h"
#include "tpp/io/atomic_file.h"
#include "tpp/io/json_file.h"
#include "tpp/io/safetensors.h"
#include "model/model_test_util.h"
#include "tpp/model/hf_config.h"

namespace tpp::test {
namespace {

using json = nlohmann::json;

// One published config and what it must map to. `pattern` lists the first
// layers as L (local, windowed) or G (global); `qpas` is Gemma's
// query_pre_attn_scalar (0 = plain 1/sqrt(head_dim) scaling).
struct Expected {
  const char* file;
  const char* family;
  int d_model, n_layers, n_heads, n_kv_heads, head_dim, d_ff, vocab, max_seq;
  double rope_theta;
  RopeScalingType scaling;
  double scaling_factor;
  bool tie, qkv_bias, qk_norm, gemma_block;
  double attn_softcap, final_softcap;
  int window;  // 0 = none
  const char* pattern;
  int qpas;
  double norm_eps;
};

constexpr auto none = RopeScalingType::none, linear = RopeScalingType::linear, llama3 = RopeScalingType::llama3;

// clang-format off
const Expected kExpected[] = {
  // file                        family     d     L   h   g   k    d_ff   vocab   max_seq  theta     scaling f     tie    qkvb   qkn    gemma  acap  fcap  win   pattern       qpas eps
  {"smollm2_135m",              "llama",   576,  30, 9,  3,  64,  1536,  49152,  8192,    1e5,      none,   1,    true,  false, false, false, 0,    0,    0,    "GGG",        0,   1e-5},
  {"smollm2_135m_instruct",     "llama",   576,  30, 9,  3,  64,  1536,  49152,  8192,    1e5,      none,   1,    true,  false, false, false, 0,    0,    0,    "GGG",        0,   1e-5},
  {"smollm2_360m",              "llama",   960,  32, 15, 5,  64,  2560,  49152,  8192,    1e5,      none,   1,    true,  false, false, false, 0,    0,    0,    "GGG",        0,   1e-5},
  {"smollm2_1_7b_instruct",     "llama",   2048, 24, 32, 32, 64,  8192,  49152,  8192,    130000,   none,   1,    true,  false, false, false, 0,    0,    0,    "GGG",        0,   1e-5},
  {"smollm2_1_7b_linear_rope",  "llama",   2048, 24, 32, 32, 64,  8192,  49152,  32000,   130000,   linear, 3.90625, true, false, false, false, 0,  0,    0,    "GGG",        0,   1e-5},
  {"tinyllama_1_1b_chat_v0_1",  "llama",   2048, 22, 32, 4,  64,  5632,  32001,  2048,    1e4,      none,   1,    false, false, false, false, 0,    0,    0,    "GGG",        0,   1e-5},
  {"tinyllama_1_1b_chat_v1_0",  "llama",   2048, 22, 32, 4,  64,  5632,  32000,  2048,    1e4,      none,   1,    false, false, false, false, 0,    0,    0,    "GGG",        0,   1e-5},
  {"llama2_7b",                 "llama",   4096, 32, 32, 32, 128, 11008, 32000,  4096,    1e4,      none,   1,    false, false, false, false, 0,    0,    0,    "GGG",        0,   1e-5},
  {"llama3_8b",                 "llama",   4096, 32, 32, 8,  128, 14336, 128256, 8192,    5e5,      none,   1,    false, false, false, false, 0,    0,    0,    "GGG",        0,   1e-5},
  {"llama3_1_8b",               "llama",   4096, 32, 32, 8,  128, 14336, 128256, 131072,  5e5,      llama3, 8,    false, false, false, false, 0,    0,    0,    "GGG",        0,   1e-5},
  {"llama3_1_8b_instruct",      "llama",   4096, 32, 32, 8,  128, 14336, 128256, 131072,  5e5,      llama3, 8,    false, false, false, false, 0,    0,    0,    "GGG",        0,   1e-5},
  {"llama3_2_1b",               "llama",   2048, 16, 32, 8,  64,  8192,  128256, 131072,  5e5,      llama3, 32,   true,  false, false, false, 0,    0,    0,    "GGG",        0,   1e-5},
  {"llama3_2_3b",               "llama",   3072, 28, 24, 8,  128, 8192,  128256, 131072,  5e5,      llama3, 32,   true,  false, false, false, 0,    0,    0,    "GGG",        0,   1e-5},
  {"mistral_7b_instruct_v0_1",  "mistral", 4096, 32, 32, 8,  128, 14336, 32000,  32768,   1e4,      none,   1,    false, false, false, false, 0,    0,    4096, "LLL",        0,   1e-5},
  {"mistral_7b_instruct_v0_3",  "mistral", 4096, 32, 32, 8,  128, 14336, 32768,  32768,   1e6,      none,   1,    false, false, false, false, 0,    0,    0,    "GGG",        0,   1e-5},
  {"mistral_7b_v0_3",           "mistral", 4096, 32, 32, 8,  128, 14336, 32768,  32768,   1e6,      none,   1,    false, false, false, false, 0,    0,    0,    "GGG",        0,   1e-5},
  {"qwen2_0_5b_instruct",       "qwen2",   896,  24, 14, 2,  64,  4864,  151936, 32768,   1e6,      none,   1,    true,  true,  false, false, 0,    0,    0,    "GGG",        0,   1e-6},
  {"qwen2_5_0_5b",              "qwen2",   896,  24, 14, 2,  64,  4864,  151936, 32768,   1e6,      none,   1,    true,  true,  false, false, 0,    0,    0,    "GGG",        0,   1e-6},
  {"qwen2_5_1_5b_instruct",     "qwen2",   1536, 28, 12, 2,  128, 8960,  151936, 32768,   1e6,      none,   1,    true,  true,  false, false, 0,    0,    0,    "GGG",        0,   1e-6},
  {"qwen2_5_3b",                "qwen2",   2048, 36, 16, 2,  128, 11008, 151936, 32768,   1e6,      none,   1,    true,  true,  false, false, 0,    0,    0,    "GGG",        0,   1e-6},
  {"qwen2_5_7b",                "qwen2",   3584, 28, 28, 4,  128, 18944, 152064, 131072,  1e6,      none,   1,    false, true,  false, false, 0,    0,    0,    "GGG",        0,   1e-6},
  {"qwen3_0_6b",                "qwen3",   1024, 28, 16, 8,  128, 3072,  151936, 40960,   1e6,      none,   1,    true,  false, true,  false, 0,    0,    0,    "GGG",        0,   1e-6},
  {"qwen3_1_7b",                "qwen3",   2048, 28, 16, 8,  128, 6144,  151936, 40960,   1e6,      none,   1,    true,  false, true,  false, 0,    0,    0,    "GGG",        0,   1e-6},
  {"qwen3_4b",                  "qwen3",   2560, 36, 32, 8,  128, 9728,  151936, 40960,   1e6,      none,   1,    true,  false, true,  false, 0,    0,    0,    "GGG",        0,   1e-6},
  {"qwen3_8b",                  "qwen3",   4096, 36, 32, 8,  128, 12288, 151936, 40960,   1e6,      none,   1,    false, false, true,  false, 0,    0,    0,    "GGG",        0,   1e-6},
  {"gemma2_2b",                 "gemma2",  2304, 26, 8,  4,  256, 9216,  256000, 8192,    1e4,      none,   1,    true,  false, false, true,  50,   30,   4096, "LGLGLG",     256, 1e-6},
  {"gemma2_9b",                 "gemma2",  3584, 42, 16, 8,  256, 14336, 256000, 8192,    1e4,      none,   1,    true,  false, false, true,  50,   30,   4096, "LGLGLG",     256, 1e-6},
  {"gemma3_270m",               "gemma3",  640,  18, 4,  1,  256, 2048,  262144, 32768,   1e6,      none,   1,    true,  false, true,  true,  0,    0,    512,  "LLLLLGLLLLLG", 256, 1e-6},
  {"gemma3_4b_text",            "gemma3",  2560, 34, 8,  4,  256, 10240, 262208, 131072,  1e6,      linear, 8,    true,  false, true,  true,  0,    0,    1024, "LLLLLGLLLLLG", 256, 1e-6},
  {"gemma3_12b_text",           "gemma3",  3840, 48, 16, 8,  256, 15360, 262208, 131072,  1e6,      linear, 8,    true,  false, true,  true,  0,    0,    1024, "LLLLLGLLLLLG", 256, 1e-6},
  // The multimodal wrapper: its minimal text_config takes Gemma3TextConfig's defaults.
  {"gemma3_4b_it",              "gemma3",  2560, 34, 8,  4,  256, 10240, 262208, 131072,  1e6,      linear, 8,    true,  false, true,  true,  0,    0,    1024, "LLLLLGLLLLLG", 256, 1e-6},
  {"phi3_mini_4k_instruct",     "phi3",    3072, 32, 32, 32, 96,  8192,  32064,  4096,    1e4,      none,   1,    false, false, false, false, 0,    0,    2047, "LLL",        0,   1e-5},
};
// clang-format on

// Published configs tpp refuses, and the word the refusal must name.
const std::pair<const char*, const char*> kRefused[] = {
    {"gemma3_1b_pt_mlx_6bit", "quantization"},  // MLX 6-bit weights
};

std::string config_path(const std::string& name) { return source_path("tests/data/hf_configs/" + name + ".json"); }

HfMapping map_file(const std::string& name) {
  const std::string path = config_path(name);
  return map_hf_config(io::read_json_file(path), path);
}

std::string layer_pattern(const ModelConfig& c, size_t n) {
  std::string out;
  for (int l = 0; l < int(n) && l < c.n_layers; ++l) out += c.is_local(l) ? 'L' : 'G';
  return out;
}

TEST(HfConfigsTest, EveryCollectedFileIsInTheTable) {
  std::set<std::string> listed;
  for (const auto& e : kExpected) listed.insert(e.file);
  for (const auto& [file, why] : kRefused) listed.insert(file);
  std::set<std::string> present;
  for (const auto& entry : std::filesystem::directory_iterator(source_path("tests/data/hf_configs")))
    if (entry.path().extension() == ".json") present.insert(entry.path().stem().string());
  EXPECT_EQ(listed, present);
  EXPECT_GE(present.size(), 25u);
}

TEST(HfConfigsTest, PublishedConfigsMapOntoTheirFamilysSwitches) {
  for (const auto& e : kExpected) {
    SCOPED_TRACE(e.file);
    HfMapping m;
    try {
      m = map_file(e.file);
    } catch (const Error& err) {
      ADD_FAILURE() << err.what();
      continue;
    }
    const ModelConfig& c = m.config;
    ASSERT_NE(m.family, nullptr);
    EXPECT_EQ(m.family->name, e.family);
    EXPECT_EQ(c.d_model, e.d_model);
    EXPECT_EQ(c.n_layers, e.n_layers);
    EXPECT_EQ(c.n_heads, e.n_heads);
    for (int l = 0; l < c.n_layers; ++l) EXPECT_EQ(c.kv_heads(l), e.n_kv_heads) << "layer " << l;
    EXPECT_EQ(c.head_dim_resolved(), e.head_dim);
    EXPECT_EQ(c.ffn_width(), e.d_ff);
    EXPECT_EQ(c.vocab_size, e.vocab);
    EXPECT_EQ(c.max_seq_len, e.max_seq);
    EXPECT_DOUBLE_EQ(c.norm_eps, e.norm_eps);
    EXPECT_EQ(c.pos_encoding, PosEncoding::rope);
    EXPECT_EQ(c.rope_layout, RopeLayout::half);
    EXPECT_EQ(c.rotary_dim_resolved(), e.head_dim);
    EXPECT_DOUBLE_EQ(c.rope_theta, e.rope_theta);
    EXPECT_EQ(c.rope_scaling.type, e.scaling);
    if (e.scaling != none) {
      EXPECT_DOUBLE_EQ(c.rope_scaling.factor, e.scaling_factor);
    }
    if (e.scaling == llama3) {
      EXPECT_DOUBLE_EQ(c.rope_scaling.low_freq_factor, 1.0);
      EXPECT_DOUBLE_EQ(c.rope_scaling.high_freq_factor, 4.0);
      EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, 8192);
    }
    EXPECT_EQ(c.tie_embeddings, e.tie);
    EXPECT_EQ(c.qkv_bias, e.qkv_bias);
    EXPECT_FALSE(c.o_bias);
    EXPECT_FALSE(c.mlp_bias);
    EXPECT_EQ(c.qk_norm, e.qk_norm);
    EXPECT_EQ(c.norm, NormKind::rmsnorm);
    EXPECT_FALSE(c.parallel_block);
    if (e.gemma_block) {
      EXPECT_EQ(c.norm_placement, NormPlacement::sandwich);
      EXPECT_TRUE(c.norm_one_plus);
      EXPECT_EQ(c.ffn, Ffn::geglu);
      EXPECT_EQ(c.gelu_approx, GeluApprox::tanh);
      EXPECT_DOUBLE_EQ(c.embed_scale, std::sqrt(double(e.d_model)));
    } else {
      EXPECT_EQ(c.norm_placement, NormPlacement::pre);
      EXPECT_FALSE(c.norm_one_plus);
      EXPECT_EQ(c.ffn, Ffn::swiglu);
      EXPECT_DOUBLE_EQ(c.embed_scale, 1.0);
    }
    EXPECT_DOUBLE_EQ(c.attn_softcap, e.attn_softcap);
    EXPECT_DOUBLE_EQ(c.final_softcap, e.final_softcap);
    EXPECT_DOUBLE_EQ(c.attn_scale_resolved(), 1.0 / std::sqrt(double(e.qpas > 0 ? e.qpas : e.head_dim)));
    EXPECT_EQ(c.sliding_window.value_or(0), e.window);
    EXPECT_EQ(layer_pattern(c, std::string(e.pattern).size()), e.pattern);
    EXPECT_EQ(c.rope_local_theta, std::string(e.family) == "gemma3" ? 10000.0 : 0.0);
  }
}

TEST(HfConfigsTest, RefusedConfigsNameWhatTppCannotHonour) {
  for (const auto& [file, word] : kRefused) {
    SCOPED_TRACE(file);
    try {
      map_file(file);
      ADD_FAILURE() << "expected a refusal";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(word), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(std::string(file) + ".json"), std::string::npos) << e.what();
    }
  }
}

// The gemma3 wrapper maps to the same text model as the text-only export.
TEST(HfConfigsTest, Gemma3MultimodalMapsItsTextConfig) {
  const HfMapping m = map_file("gemma3_4b_it");
  EXPECT_EQ(m.model_type, "gemma3");
  EXPECT_FALSE(m.notes.empty());
  EXPECT_TRUE(m.wrapped_language_model);
  EXPECT_EQ(m.config, map_file("gemma3_4b_text").config);
}

// A multimodal Gemma 3 checkpoint loads its language model: the tiny Gemma 3
// golden rewritten as the wrapper (text_config, tensors under
// language_model.model.* or model.language_model.*, a vision tower beside
// them) gives the same logits as the text-only directory.
TEST(HfConfigsTest, Gemma3MultimodalCheckpointLoadsItsLanguageModel) {
  namespace fs = std::filesystem;
  const std::string text_dir = source_path("tests/golden/models/hf_gemma3_bf16");
  const Model text = load_model(text_dir);
  const auto st = io::SafeTensors::open(text_dir + "/model.safetensors");
  json wrapper = {{"model_type", "gemma3"}, {"architectures", {"Gemma3ForConditionalGeneration"}},
                  {"text_config", io::read_json_file(text_dir + "/config.json")},
                  {"vision_config", {{"model_type", "siglip_vision_model"}}}, {"mm_tokens_per_image", 256}};
  wrapper["text_config"].erase("architectures");
  const std::vector<std::byte> vision(16, std::byte{0});
  const std::vector<int32_t> tokens = {3, 1, 4, 1, 5, 9, 2, 6};
  const auto want = forward_logits(text, tokens);
  for (const std::string layout : {"language_model.model.", "model.language_model."}) {
    const std::string dir = temp_dir("gemma3_wrapper_" + layout.substr(0, 5));
    std::vector<io::TensorToWrite> out;
    for (const auto& t : st.tensors()) {
      std::string name = t.name;
      if (name.starts_with("model.")) name = layout + name.substr(6);
      out.push_back({name, t.dtype, t.shape, std::span(t.data, size_t(t.nbytes()))});
    }
    out.push_back({layout.starts_with("model.") ? "model.vision_tower.patch.weight" : "vision_tower.patch.weight",
                   DType::f32, {4}, vision});
    io::write_safetensors(dir + "/model.safetensors", out, {});
    io::write_file_atomic(dir + "/config.json", wrapper.dump());
    const Model wrapped = load_model(dir);
    EXPECT_TRUE(all_close(forward_logits(wrapped, tokens), want, {0, 0})) << layout;
    // Not vacuous: a tensor the language model needs, missing, is named.
    std::vector<io::TensorToWrite> fewer;
    for (const auto& t : out)
      if (t.name.find("layers.1.mlp.up_proj") == std::string::npos) fewer.push_back(t);
    io::write_safetensors(dir + "/model.safetensors", fewer, {});
    try {
      load_model(dir);
      ADD_FAILURE() << "a missing tensor must be refused";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(layout + "layers.1.mlp.up_proj.weight"), std::string::npos) << e.what();
    }
    fs::remove_all(dir);
  }
}

// The checks can fail: values that change the computation are refused by
// name and value, not ignored.
TEST(HfConfigsTest, MathChangingValuesAreRefusedByName) {
  const std::string path = config_path("smollm2_135m");
  const json base = io::read_json_file(path);
  const std::vector<std::pair<json, std::string>> cases = {
      {{{"rope_interleaved", true}}, "rope_interleaved"},
      {{{"hidden_act", "gelu"}}, "hidden_act"},
      {{{"some_new_switch", 1}}, "some_new_switch"},
      {{{"rope_scaling", {{"rope_type", "longrope"}, {"factor", 2.0}}}}, "longrope"},
      {{{"rope_scaling", {{"rope_type", "linear"}, {"type", "dynamic"}, {"factor", 2.0}}}}, "disagree"},
      {{{"sliding_window", 128}}, "sliding_window"},  // LlamaConfig has no window
  };
  for (const auto& [patch, word] : cases) {
    json cfg = base;
    cfg.update(patch);
    try {
      map_hf_config(cfg, path);
      ADD_FAILURE() << patch.dump();
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(word), std::string::npos) << patch.dump() << " -> " << e.what();
    }
  }
  json gemma = io::read_json_file(config_path("gemma2_9b"));
  gemma["sliding_window_size"] = 2048;  // disagrees with sliding_window
  EXPECT_THROW(map_hf_config(gemma, "gemma2_9b.json"), Error);
  json qwen = io::read_json_file(config_path("qwen2_5_0_5b"));
  qwen["use_mrope"] = true;
  EXPECT_THROW(map_hf_config(qwen, "qwen.json"), Error);
  // pretraining_tp only sliced matmuls into pieces with the same sum.
  json tp = base;
  tp["pretraining_tp"] = 2;
  EXPECT_EQ(map_hf_config(tp, path).config, map_hf_config(base, path).config);
}

}  // namespace
}  // namespace tpp::test
