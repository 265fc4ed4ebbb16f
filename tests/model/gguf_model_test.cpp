// GGUF model files (tests/golden/gguf, written by tools/golden/gen_gguf.py
// independently of tpp, the way llama.cpp's converter writes them) give the
// logits of the independent float64 reference: the HF checkpoint's goldens
// for f32 / f16 / bf16 files, and goldens computed from the dequantised
// weights for q8_0 / q4_0 files. Tolerance: max abs 1e-4 (kModelLogitsF32),
// as for the HF checkpoints: both sides use the identical stored weights.
// On a level with int8 (bf16 dot) kernels, q8_0 / q4_0 (bf16) matmuls also
// round their activations to 8-bit blocks (to bf16), as llama.cpp does, and
// the reference does not: there the bound is an NMSE (model_logits_close).
#include <filesystem>
#include <cmath>
#include <fstream>
#include <functional>

#include <gtest/gtest.h>

#include "common/test_util.h"
#include "model/model_test_util.h"
#include "tpp/core/error.h"
#include "tpp/io/gguf.h"
#include "tpp/kernels/api.h"
#include "tpp/model/gguf_model.h"

namespace tpp::test {
namespace {

namespace fs = std::filesystem;

struct GgufCase {
  std::string name;    // tests/golden/gguf/<name>.gguf
  std::string golden;  // directory or file holding golden.safetensors
  DType matrix_dtype;  // the attention matrices' storage type
};

void PrintTo(const GgufCase& c, std::ostream* os) { *os << c.name; }

std::vector<GgufCase> gguf_cases() {
  const std::string g = source_path("tests/golden/gguf/"), m = source_path("tests/golden/models/");
  return {
      {"llama_f32", m + "hf_llama_f32", DType::f32},
      {"llama_f16", m + "hf_llama_f16", DType::f16},
      {"llama_q8_0", g + "llama_q8_0.golden.safetensors", DType::q8_0},
      {"llama_q4_0", g + "llama_q4_0.golden.safetensors", DType::q4_0},
      {"llama3_tied_bf16", m + "hf_llama_tied_bf16", DType::bf16},
      {"mistral_f32", m + "hf_mistral_f32", DType::f32},
      {"qwen2_bf16", m + "hf_qwen2_bf16", DType::bf16},
      {"qwen3_f32", m + "hf_qwen3_f32", DType::f32},
      {"qwen3_q8_0", g + "qwen3_q8_0.golden.safetensors", DType::q8_0},
      {"phi3_q8_0", g + "phi3_q8_0.golden.safetensors", DType::q8_0},
      {"gemma2_f32", m + "hf_gemma2_f32", DType::f32},
      {"gemma3_bf16", m + "hf_gemma3_bf16", DType::bf16},
  };
}

std::string gguf_path(const std::string& name) { return source_path("tests/golden/gguf/" + name + ".gguf"); }

Golden golden_of(const GgufCase& c) {
  if (fs::is_directory(c.golden)) return load_golden(c.golden);
  // A golden file next to the .gguf: copy it into a case-shaped directory.
  const std::string dir = temp_dir("gguf_golden_" + c.name);
  fs::copy_file(c.golden, dir + "/golden.safetensors", fs::copy_options::overwrite_existing);
  return load_golden(dir);
}

// The logits against the golden's, with the bound of the model's activation
// rounding on levels that round them.
::testing::AssertionResult logits_match(const Model& model, const Golden& g, const ForwardOptions& o = {}) {
  return model_logits_close(model, forward_logits(model, g.tokens, o), g.logits);
}

class GgufModelTest : public ::testing::TestWithParam<GgufCase> {};

TEST_P(GgufModelTest, LogitsMatchReferenceOnEverySimdPath) {
  const Model model = load_model(gguf_path(GetParam().name));
  EXPECT_EQ(model.naming, NameStyle::gguf);
  EXPECT_EQ(model.weights.layers[0][TensorId::attn_q].dtype, GetParam().matrix_dtype) << "weights are used as stored";
  const Golden g = golden_of(GetParam());
  for (auto isa : kernels::supported_isas()) {
    kernels::set_isa(isa);
    EXPECT_TRUE(logits_match(model, g)) << "isa " << kernels::isa_name(isa);
  }
  kernels::set_isa(kernels::supported_isas().back());
}

TEST_P(GgufModelTest, DecodeThroughTheCacheMatchesToo) {
  const Model model = load_model(gguf_path(GetParam().name));
  const Golden g = golden_of(GetParam());
  ForwardOptions o;
  o.token_by_token = true;
  EXPECT_TRUE(logits_match(model, g, o));
}

// The check can fail: one perturbed weight must break it.
TEST_P(GgufModelTest, PerturbedWeightIsDetected) {
  Model model = load_model(gguf_path(GetParam().name));
  const Golden g = golden_of(GetParam());
  model.weights.mutable_vec(TensorId::attn_norm, 0)[1] += 0.5f;
  EXPECT_FALSE(logits_match(model, g));
}

INSTANTIATE_TEST_SUITE_P(Files, GgufModelTest, ::testing::ValuesIn(gguf_cases()),
                         [](const ::testing::TestParamInfo<GgufCase>& info) { return info.param.name; });

// The same weights as HF safetensors and as GGUF give the same config, up to
// what llama.cpp's conversion changes (RoPE layout, Gemma's 1 + w norms).
TEST(GgufConfigTest, MappingUndoesTheConversion) {
  const auto llama = config_from_gguf(io::GgufFile::open(gguf_path("llama_f32")));
  EXPECT_EQ(llama.rope_layout, RopeLayout::interleaved);
  EXPECT_EQ(llama.n_kv_heads, std::vector<int>{2});
  EXPECT_FALSE(llama.tie_embeddings);
  const auto qwen2 = config_from_gguf(io::GgufFile::open(gguf_path("qwen2_bf16")));
  EXPECT_EQ(qwen2.rope_layout, RopeLayout::half);
  EXPECT_TRUE(qwen2.qkv_bias);
  EXPECT_TRUE(qwen2.tie_embeddings);
  const auto gemma3 = config_from_gguf(io::GgufFile::open(gguf_path("gemma3_bf16")));
  EXPECT_FALSE(gemma3.norm_one_plus);
  EXPECT_TRUE(gemma3.qk_norm);
  EXPECT_EQ(gemma3.norm_placement, NormPlacement::sandwich);
  EXPECT_EQ(gemma3.rope_scaling.type, RopeScalingType::linear);
  EXPECT_EQ(gemma3.layer_types.size(), 3u);
  EXPECT_EQ(gemma3.rope_local_theta, 10000.0);
  const auto mistral = config_from_gguf(io::GgufFile::open(gguf_path("mistral_f32")));
  EXPECT_EQ(mistral.sliding_window, std::optional<int>(4));
}

// --- refusals: a GGUF rewritten with one change -------------------------

// Rewrites a golden file with `edit` applied to its metadata and tensors.
using Meta = std::vector<std::pair<std::string, io::GgufValue>>;
std::string rewrite(const std::string& name, const std::string& out_name,
                    const std::function<void(Meta&, std::vector<io::GgufWriteTensor>&)>& edit) {
  const io::GgufFile f = io::GgufFile::open(gguf_path(name));
  Meta meta;
  for (const auto& k : f.keys()) meta.emplace_back(k, *f.find(k));
  std::vector<io::GgufWriteTensor> tensors;
  for (const auto& t : f.tensors())
    tensors.push_back({t.name, t.type, t.shape(), std::span(t.data, size_t(t.nbytes))});
  edit(meta, tensors);
  const std::string path = temp_dir("gguf_refuse") + "/" + out_name + ".gguf";
  io::write_gguf(path, meta, tensors);
  return path;
}

void set(Meta& meta, const std::string& key, io::GgufValue v) {
  for (auto& [k, value] : meta)
    if (k == key) {
      value = std::move(v);
      return;
    }
  meta.emplace_back(key, std::move(v));
}

std::string load_error(const std::string& path) {
  try {
    load_model(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(GgufRefuseTest, RewrittenCopyLoadsUnchanged) {
  // The rewriting itself keeps the model intact (so the refusals below are
  // caused by their one change).
  const std::string path = rewrite("qwen3_q8_0", "copy", [](Meta&, auto&) {});
  const Model model = load_model(path);
  const GgufCase c{"qwen3_q8_0", source_path("tests/golden/gguf/qwen3_q8_0.golden.safetensors"), DType::q8_0};
  const Golden g = golden_of(c);
  EXPECT_TRUE(logits_match(model, g));
}

TEST(GgufRefuseTest, UnknownArchitectureIsNamed) {
  const auto path = rewrite("llama_f32", "arch", [](Meta& m, auto&) { set(m, "general.architecture", io::gguf_string("falcon")); });
  const std::string e = load_error(path);
  EXPECT_NE(e.find("general.architecture"), std::string::npos) << e;
  EXPECT_NE(e.find("falcon"), std::string::npos) << e;
}

TEST(GgufRefuseTest, UnknownArchitectureKeyIsNamed) {
  const auto path = rewrite("llama_f32", "key", [](Meta& m, auto&) { set(m, "llama.attention.clamp_kqv", io::gguf_f32(8)); });
  const std::string e = load_error(path);
  EXPECT_NE(e.find("llama.attention.clamp_kqv"), std::string::npos) << e;
}

TEST(GgufRefuseTest, UnsupportedRopeScalingIsNamed) {
  const auto path = rewrite("llama_f32", "rope", [](Meta& m, auto&) {
    set(m, "llama.rope.scaling.type", io::gguf_string("longrope"));
    set(m, "llama.rope.scaling.factor", io::gguf_f32(4));
  });
  const std::string e = load_error(path);
  EXPECT_NE(e.find("llama.rope.scaling.type"), std::string::npos) << e;
  EXPECT_NE(e.find("longrope"), std::string::npos) << e;
}

TEST(GgufRefuseTest, MixtureOfExpertsIsRefused) {
  const auto path = rewrite("llama_f32", "moe", [](Meta& m, auto&) { set(m, "llama.expert_count", io::gguf_u32(8)); });
  EXPECT_NE(load_error(path).find("llama.expert_count"), std::string::npos);
}

TEST(GgufRefuseTest, UnsupportedTensorTypeIsNamed) {
  // Relabel a Q8_0 matrix as Q4_1 (same block size, 20 bytes a block): a
  // valid file whose type tpp cannot compute with.
  const auto path = rewrite("llama_q8_0", "q4_1", [](Meta&, std::vector<io::GgufWriteTensor>& ts) {
    static std::vector<std::byte> bytes;
    for (auto& t : ts)
      if (t.name == "blk.0.attn_q.weight") {
        t.type = 3;  // Q4_1
        bytes.assign(size_t(t.shape[0] * t.shape[1] / 32 * 20), std::byte{0});
        t.bytes = bytes;
      }
  });
  const std::string e = load_error(path);
  EXPECT_NE(e.find("blk.0.attn_q.weight"), std::string::npos) << e;
  EXPECT_NE(e.find("Q4_1"), std::string::npos) << e;
}

TEST(GgufRefuseTest, MissingExtraAndMisshapenTensorsAreNamed) {
  auto drop = rewrite("qwen3_f32", "drop", [](Meta&, std::vector<io::GgufWriteTensor>& ts) {
    std::erase_if(ts, [](const auto& t) { return t.name == "blk.1.ffn_up.weight"; });
  });
  EXPECT_NE(load_error(drop).find("missing tensor 'blk.1.ffn_up.weight'"), std::string::npos) << load_error(drop);
  auto extra = rewrite("qwen3_f32", "extra", [](Meta&, std::vector<io::GgufWriteTensor>& ts) {
    auto t = ts.back();
    t.name = "blk.0.attn_sinks.weight";
    ts.push_back(t);
  });
  EXPECT_NE(load_error(extra).find("unexpected tensor 'blk.0.attn_sinks.weight'"), std::string::npos);
  auto freqs = rewrite("llama_f32", "freqs", [](Meta&, std::vector<io::GgufWriteTensor>& ts) {
    auto t = ts.back();
    t.name = "rope_freqs.weight";
    ts.push_back(t);
  });
  EXPECT_NE(load_error(freqs).find("rope_freqs.weight"), std::string::npos) << "not F32 [rotary_dim / 2]";
  auto kv = rewrite("qwen3_f32", "kv", [](Meta& m, auto&) { set(m, "qwen3.attention.head_count_kv", io::gguf_u32(4)); });
  const std::string e = load_error(kv);
  EXPECT_NE(e.find("blk.0.attn_k.weight"), std::string::npos) << e;
  EXPECT_NE(e.find("shape"), std::string::npos) << e;
}

// rope_freqs.weight with blended pairs: the recovered llama3 parameters give
// the same logits as the HF directory whose config.json states them.
TEST(GgufRopeFreqsTest, FactorsWithABlendMatchTheStatedScaling) {
  const double theta = 10000, factor = 8, low = 1, high = 64, orig = 2048;
  std::vector<float> freqs;
  int blended = 0;
  for (int i = 0; i < 8; i += 2) {
    const double wavelen = 2 * M_PI * std::pow(theta, i / 8.0);
    if (wavelen < orig / high) {
      freqs.push_back(1);
    } else if (wavelen > orig / low) {
      freqs.push_back(float(factor));
    } else {
      const double smooth = (orig / wavelen - low) / (high - low);
      freqs.push_back(float(1 / ((1 - smooth) / factor + smooth)));
      ++blended;
    }
  }
  ASSERT_EQ(blended, 2);
  const auto path = rewrite("llama_f32", "freqs_blend", [&](Meta&, std::vector<io::GgufWriteTensor>& ts) {
    ts.push_back({"rope_freqs.weight", 0, {4}, std::as_bytes(std::span(freqs))});
  });
  const Model gguf = load_model(path);
  EXPECT_EQ(gguf.config.rope_scaling.type, RopeScalingType::llama3);
  EXPECT_NEAR(gguf.config.rope_scaling.factor, factor, 1e-6);

  const std::string dir = temp_dir("gguf_freqs_hf");
  const std::string src = source_path("tests/golden/models/hf_llama_f32");
  fs::copy_file(src + "/model.safetensors", dir + "/model.safetensors");
  std::ifstream in(src + "/config.json");
  std::string cfg((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string from = "\"rope_scaling\": null";
  ASSERT_NE(cfg.find(from), std::string::npos);
  cfg.replace(cfg.find(from), from.size(),
              R"("rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, )"
              R"("high_freq_factor": 64.0, "original_max_position_embeddings": 2048})");
  std::ofstream(dir + "/config.json") << cfg;
  const Model hf = load_model(dir);
  const Golden g = load_golden(src);
  const auto a = forward_logits(gguf, g.tokens), b = forward_logits(hf, g.tokens);
  EXPECT_TRUE(all_close(a, b, kModelLogitsF32));
  EXPECT_FALSE(all_close(a, g.logits, kModelLogitsF32)) << "the scaling changes the logits";

  // Factors that follow no llama3 rule are refused, naming the tensor: a
  // higher frequency scaled more than a lower one.
  std::swap(freqs[1], freqs[2]);
  const auto bad = rewrite("llama_f32", "freqs_bad", [&](Meta&, std::vector<io::GgufWriteTensor>& ts) {
    ts.push_back({"rope_freqs.weight", 0, {4}, std::as_bytes(std::span(freqs))});
  });
  const std::string e = load_error(bad);
  EXPECT_NE(e.find("rope_freqs.weight"), std::string::npos) << e;
}

// Mistral is written as llama; its window comes from llama.attention.sliding_window
// and matters for the golden sequence (without it the logits differ).
TEST(GgufWindowTest, MistralWithoutTheWindowKeyAttendsToEverything) {
  const auto path = rewrite("mistral_f32", "no_window", [](Meta& m, auto&) {
    std::erase_if(m, [](const auto& kv) { return kv.first == "llama.attention.sliding_window"; });
  });
  const Model model = load_model(path);
  EXPECT_FALSE(model.config.sliding_window);
  const Golden g = load_golden(source_path("tests/golden/models/hf_mistral_f32"));
  EXPECT_FALSE(all_close(forward_logits(model, g.tokens), g.logits, kModelLogitsF32));
}

// general.alignment may be as small as 1: f32 tensors may then start at any
// byte. They are copied to element alignment and give the same logits.
TEST(GgufAlignmentTest, MisalignedFloatTensorsAreCopied) {
  bool misaligned = false;
  for (int pad = 0; pad < 4 && !misaligned; ++pad) {
    const auto path = rewrite("llama_f32", "align1", [&](Meta& m, auto&) {
      set(m, "general.alignment", io::gguf_u32(1));
      set(m, "general.description", io::gguf_string(std::string(size_t(pad), 'x')));
    });
    const io::GgufFile f = io::GgufFile::open(path);
    if (reinterpret_cast<uintptr_t>(f.find_tensor("blk.0.attn_q.weight")->data) % 4 == 0) continue;
    misaligned = true;
    const Model model = load_model(path);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(model.weights.layers[0][TensorId::attn_q].data) % 4, 0u);
    const Golden g = load_golden(source_path("tests/golden/models/hf_llama_f32"));
    EXPECT_TRUE(all_close(forward_logits(model, g.tokens), g.logits, kModelLogitsF32));
  }
  EXPECT_TRUE(misaligned) << "no padding gave a misaligned tensor";
}

TEST(GgufRefuseTest, EmbeddingOfTheWrongRankIsNamed) {
  const auto path = rewrite("llama_f32", "embd", [](Meta&, std::vector<io::GgufWriteTensor>& ts) {
    for (auto& t : ts)
      if (t.name == "token_embd.weight") t.shape = {t.shape[0] * t.shape[1]};
  });
  const std::string e = load_error(path);
  EXPECT_NE(e.find("tensor 'token_embd.weight': ne ["), std::string::npos) << e;
}

TEST(GgufRefuseTest, IsGgufFileLooksAtTheMagic) {
  EXPECT_TRUE(is_gguf_file(gguf_path("llama_f32")));
  EXPECT_FALSE(is_gguf_file(source_path("tests/golden/models/hf_llama_f32/model.safetensors")));
  EXPECT_FALSE(is_gguf_file(source_path("tests/golden/models/hf_llama_f32")));
}

}  // namespace
}  // namespace tpp::test
