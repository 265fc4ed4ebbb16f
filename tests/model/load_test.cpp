// Loading models: tpp and Hugging Face naming, single and sharded files,
// dtypes, and every kind of mismatch between config and tensors refused by
// name.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/test_util.h"
#include "model/model_test_util.h"
#include "tpp/core/error.h"
#include "tpp/io/safetensors.h"
#include "tpp/model/hf_config.h"

namespace tpp::test {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

ModelConfig llama_config() {
  ModelConfig c;
  c.d_model = 32;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = {2};
  c.d_ff = 40;
  c.vocab_size = 30;
  c.max_seq_len = 32;
  c.rope_theta = 10000;
  c.norm_eps = 1e-6;
  return c;
}

const std::vector<int32_t> kTokens = {3, 1, 4, 1, 5, 9, 2, 6};

std::string load_error(const std::string& dir) {
  try {
    load_model(dir);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

void write_text(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

// Rewrite dir/model.safetensors through `edit`, which may drop/rename/replace tensors.
struct RawTensor {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  std::vector<std::byte> bytes;
};
std::vector<RawTensor> read_all(const std::string& path) {
  const auto st = io::SafeTensors::open(path);
  std::vector<RawTensor> out;
  for (const auto& t : st.tensors())
    out.push_back({t.name, t.dtype, t.shape, std::vector<std::byte>(t.data, t.data + t.nbytes())});
  return out;
}
void write_all(const std::string& path, const std::vector<RawTensor>& ts) {
  std::vector<io::TensorToWrite> w;
  for (const auto& t : ts) w.push_back({t.name, t.dtype, t.shape, t.bytes});
  io::write_safetensors(path, w);
}

// Write `m` as a Hugging Face Llama directory (HF config keys and tensor names).
void write_hf(const Model& m, const std::string& tpp_dir, const std::string& hf_dir, int shards) {
  fs::create_directories(hf_dir);
  const ModelConfig& c = m.config;
  json cfg = {{"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"},
              {"hidden_size", c.d_model}, {"intermediate_size", c.d_ff},
              {"num_hidden_layers", c.n_layers}, {"num_attention_heads", c.n_heads},
              {"num_key_value_heads", c.kv_heads(0)}, {"vocab_size", c.vocab_size},
              {"max_position_embeddings", c.max_seq_len}, {"rms_norm_eps", c.norm_eps},
              {"rope_theta", c.rope_theta}, {"tie_word_embeddings", c.tie_embeddings},
              {"hidden_act", "silu"}, {"torch_dtype", "float32"}, {"rope_scaling", nullptr},
              {"bos_token_id", 1}, {"eos_token_id", 2}, {"attention_bias", false}};
  write_text(hf_dir + "/config.json", cfg.dump(2));
  auto tensors = read_all(tpp_dir + "/model.safetensors");
  std::map<std::string, std::string> to_hf;
  for (const auto& spec : expected_tensors(c, NameStyle::tpp))
    to_hf[spec.name] = tensor_name(*spec.row, NameStyle::hf, spec.layer);
  for (auto& t : tensors) t.name = to_hf.at(t.name);
  if (shards == 1) {
    write_all(hf_dir + "/model.safetensors", tensors);
    return;
  }
  json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", json::object()}};
  std::vector<std::vector<RawTensor>> parts(static_cast<size_t>(shards));
  for (size_t i = 0; i < tensors.size(); ++i) {
    const size_t s = i % size_t(shards);
    const std::string file = fmt::format("model-{:05d}-of-{:05d}.safetensors", s + 1, shards);
    index["weight_map"][tensors[i].name] = file;
    parts[s].push_back(tensors[i]);
  }
  for (int s = 0; s < shards; ++s)
    write_all(hf_dir + fmt::format("/model-{:05d}-of-{:05d}.safetensors", s + 1, shards), parts[size_t(s)]);
  write_text(hf_dir + "/model.safetensors.index.json", index.dump(2));
}

TEST(LoadTest, SaveLoadRoundTripIsExact) {
  const std::string dir = temp_dir("load_rt");
  const Model m = init_model(llama_config(), 9, DType::f32, 25.0);
  save_model(m, dir + "/m");
  const Model back = load_model(dir + "/m");
  EXPECT_EQ(back.config, m.config);
  EXPECT_TRUE(all_close(forward_logits(back, kTokens), forward_logits(m, kTokens), {0, 0}));
}

TEST(LoadTest, Bf16AndF16CheckpointsLoadWithoutConversion) {
  const std::string dir = temp_dir("load_16");
  const Model m = init_model(llama_config(), 9, DType::f32, 25.0);
  for (DType t : {DType::bf16, DType::f16}) {
    save_model(m, dir + "/m", t);
    const Model back = load_model(dir + "/m");
    EXPECT_EQ(back.weights.layers[0][TensorId::attn_q].dtype, t);  // matrices stay 16-bit
    // The weights' rounding, plus the activations' where bf16 dot kernels round them.
    const double bound = t == DType::bf16 ? 1e-4 + (activation_rounding(back).empty() ? 0 : kModelLogitsBf16DotNmse) : 1e-6;
    EXPECT_LT(nmse(forward_logits(back, kTokens), forward_logits(m, kTokens)), bound);
  }
}

TEST(LoadTest, HuggingFaceLlamaDirectoryMatchesTppNaming) {
  const std::string dir = temp_dir("load_hf");
  for (bool tied : {false, true}) {
    ModelConfig c = llama_config();
    c.tie_embeddings = tied;
    const Model m = init_model(c, 4, DType::f32, 25.0);
    save_model(m, dir + "/tpp");
    const auto expected = forward_logits(m, kTokens);
    for (int shards : {1, 3}) {
      const std::string hf = dir + fmt::format("/hf_{}_{}", tied, shards);
      write_hf(m, dir + "/tpp", hf, shards);
      const Model loaded = load_model(hf);
      EXPECT_EQ(loaded.naming, NameStyle::hf);
      EXPECT_EQ(loaded.config.tie_embeddings, tied);
      EXPECT_TRUE(all_close(forward_logits(loaded, kTokens), expected, {0, 0})) << "tied " << tied << " shards " << shards;
    }
  }
}

TEST(LoadTest, MismatchesAreRefusedByName) {
  const std::string dir = temp_dir("load_bad");
  const Model m = init_model(llama_config(), 1);
  save_model(m, dir + "/good");
  const auto good = read_all(dir + "/good/model.safetensors");
  struct Edit {
    std::function<void(std::vector<RawTensor>&)> apply;
    std::vector<std::string> expected;
  };
  const std::vector<Edit> edits = {
      {[](auto& ts) { std::erase_if(ts, [](auto& t) { return t.name == "blk.1.attn_k.weight"; }); },
       {"model.safetensors", "missing tensor 'blk.1.attn_k.weight'", "[16, 32]"}},
      {[](auto& ts) {
         for (auto& t : ts)
           if (t.name == "blk.0.attn_v.weight") {
             t.shape = {32, 16};
           }
       },
       {"tensor 'blk.0.attn_v.weight'", "shape [32, 16]", "expected [16, 32]", "n_kv_heads * head_dim"}},
      {[](auto& ts) { ts.push_back({"blk.9.extra.weight", DType::f32, {2}, std::vector<std::byte>(8)}); },
       {"unexpected tensor 'blk.9.extra.weight'"}},
      {[](auto& ts) {
         for (auto& t : ts)
           if (t.name == "output_norm.weight") t.dtype = DType::i32;
       },
       {"tensor 'output_norm.weight'", "dtype i32", "expected F32, BF16 or F16"}},
  };
  for (size_t i = 0; i < edits.size(); ++i) {
    const std::string d = dir + "/e" + std::to_string(i);
    fs::create_directories(d);
    fs::copy_file(dir + "/good/config.json", d + "/config.json");
    auto ts = good;
    edits[i].apply(ts);
    write_all(d + "/model.safetensors", ts);
    const std::string msg = load_error(d);
    ASSERT_FALSE(msg.empty()) << "edit " << i << " was accepted";
    for (const auto& s : edits[i].expected) EXPECT_NE(msg.find(s), std::string::npos) << "'" << s << "' not in: " << msg;
  }
}

TEST(LoadTest, TruncatedWeightsFileIsAnError) {
  const std::string dir = temp_dir("load_trunc");
  save_model(init_model(llama_config(), 1), dir + "/m");
  const auto size = fs::file_size(dir + "/m/model.safetensors");
  fs::resize_file(dir + "/m/model.safetensors", size - 7);
  const std::string msg = load_error(dir + "/m");
  EXPECT_NE(msg.find("model.safetensors"), std::string::npos) << msg;
}

TEST(LoadTest, HfConfigsTppCannotHonourAreRefused) {
  const std::string dir = temp_dir("load_hfbad");
  const Model m = init_model(llama_config(), 1);
  save_model(m, dir + "/tpp");
  write_hf(m, dir + "/tpp", dir + "/hf", 1);
  const json base = json::parse(io::read_text_file(dir + "/hf/config.json"));
  const std::vector<std::pair<json, std::string>> cases = {
      {{{"model_type", "mamba"}}, "\"mamba\""},
      {{{"rope_scaling", {{"rope_type", "longrope"}, {"factor", 2.0}}}}, "longrope"},
      {{{"hidden_act", "gelu"}}, "hidden_act"},
      {{{"quantization_config", {{"bits", 4}}}}, "quantization_config"},
      {{{"num_key_value_heads", 3}}, "n_kv_heads"},
  };
  for (const auto& [patch, expected] : cases) {
    json cfg = base;
    cfg.update(patch);
    write_text(dir + "/hf/config.json", cfg.dump());
    const std::string msg = load_error(dir + "/hf");
    EXPECT_NE(msg.find(expected), std::string::npos) << patch.dump() << " -> " << msg;
    EXPECT_NE(msg.find("config.json"), std::string::npos) << msg;
  }
}

// Family keys of the Llama-architecture families map onto switches.
TEST(LoadTest, HfFamilyKeysMapOntoSwitches) {
  const json base = {{"hidden_size", 64},       {"num_hidden_layers", 3}, {"num_attention_heads", 4},
                     {"num_key_value_heads", 2}, {"intermediate_size", 96}, {"vocab_size", 100},
                     {"hidden_act", "silu"}};
  json mistral = base;
  mistral.update({{"model_type", "mistral"}, {"sliding_window", 16}});
  ModelConfig c = config_from_hf(mistral, "mistral.json");
  EXPECT_EQ(c.sliding_window, 16);
  EXPECT_TRUE(c.is_local(0) && c.is_local(2));
  mistral["sliding_window"] = nullptr;
  EXPECT_FALSE(config_from_hf(mistral, "mistral.json").sliding_window.has_value());

  json qwen2 = base;
  qwen2.update({{"model_type", "qwen2"}, {"use_sliding_window", true}, {"sliding_window", 32},
                {"max_window_layers", 1}});
  c = config_from_hf(qwen2, "qwen2.json");
  EXPECT_TRUE(c.qkv_bias);
  EXPECT_FALSE(c.o_bias);
  EXPECT_FALSE(c.is_local(0));
  EXPECT_TRUE(c.is_local(1) && c.is_local(2));  // HF Qwen2: the window applies from max_window_layers on
  qwen2["max_window_layers"] = 7;
  try {
    config_from_hf(qwen2, "qwen2.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("max_window_layers"), std::string::npos) << e.what();
  }

  json qwen3 = base;
  qwen3.update({{"model_type", "qwen3"}, {"head_dim", 32}, {"attention_bias", false}});
  c = config_from_hf(qwen3, "qwen3.json");
  EXPECT_TRUE(c.qk_norm);
  EXPECT_EQ(c.head_dim_resolved(), 32);
  qwen3["layer_types"] = json::array({"full_attention"});
  try {
    config_from_hf(qwen3, "qwen3.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("layer_types"), std::string::npos) << e.what();
  }
  json gemma3 = base;
  gemma3.update({{"model_type", "gemma3_text"}, {"num_hidden_layers", 7}, {"head_dim", 16},
                 {"rope_local_base_freq", 10000.0}, {"query_pre_attn_scalar", 16}});
  gemma3.erase("hidden_act");
  c = config_from_hf(gemma3, "gemma3.json");
  EXPECT_TRUE(c.qk_norm && c.norm_one_plus);
  EXPECT_EQ(c.norm_placement, NormPlacement::sandwich);
  for (int l = 0; l < 7; ++l) EXPECT_EQ(c.is_local(l), l != 5) << l;  // every 6th layer is global
  EXPECT_EQ(c.rope_local_theta, 10000.0);
  EXPECT_DOUBLE_EQ(c.attn_scale, 0.25);
  EXPECT_DOUBLE_EQ(c.embed_scale, 8.0);

  json gemma = base;
  gemma["model_type"] = "gemma3";  // the multimodal wrapper; text models are gemma3_text
  try {
    config_from_hf(gemma, "gemma.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("\"gemma3\""), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("qwen3"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tpp::test
