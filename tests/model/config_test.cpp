// ModelConfig: JSON round trip over every visited field, strict parsing, and
// validation messages that name the key, the value and what was expected.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tpp/core/error.h"
#include "tpp/model/config.h"

namespace tpp {
namespace {

using json = nlohmann::json;

// The error message of config_from_json(j), or "" if it was accepted.
std::string error_of(const json& j) {
  try {
    config_from_json(j, "cfg.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(ConfigTest, DefaultsValidateAndRoundTrip) {
  ModelConfig c;
  c.validate();
  EXPECT_EQ(config_from_json(config_to_json(c), "x"), c);
}

TEST(ConfigTest, EveryFieldRoundTripsWithNonDefaultValues) {
  ModelConfig c;
  c.d_model = 96;
  c.n_layers = 4;
  c.n_heads = 6;
  c.n_kv_heads = {6, 3, 3, 1};
  c.head_dim = 20;
  c.d_ff = 300;
  c.vocab_size = 1000;
  c.max_seq_len = 77;
  c.norm_eps = 1e-6;
  c.embed_scale = 9.79795897;
  c.tie_embeddings = true;
  c.final_softcap = 30;
  c.pos_encoding = PosEncoding::rope;
  c.rope_theta = 1e6;
  c.rotary_dim = 10;
  c.rope_layout = RopeLayout::interleaved;
  c.rope_scaling = {RopeScalingType::yarn, 4.0, 32, 1.0, 4.0, 16.0, 2.0, 1.3};
  c.rope_local_theta = 1e4;
  c.norm = NormKind::layernorm;
  c.norm_one_plus = true;
  c.norm_placement = NormPlacement::sandwich;
  c.parallel_block = true;
  c.qkv_bias = c.o_bias = c.mlp_bias = c.qk_norm = true;
  c.attn_scale = 0.125;
  c.attn_softcap = 50;
  c.softmax = Softmax::plus_one;
  c.sliding_window = 16;
  c.layer_types = {LayerType::local, LayerType::global};
  c.cla_share = 1;
  c.ffn = Ffn::geglu;
  c.gelu_approx = GeluApprox::tanh;
  c.param_match = true;
  c.multiple_of = 32;
  c.validate();
  const json j = config_to_json(c);
  EXPECT_EQ(config_from_json(j, "x"), c) << j.dump(2);
  // Every key the visitor knows is written.
  EXPECT_EQ(j.size(), config_key_docs().size());
}

TEST(ConfigTest, PerLayerAndScalarKvHeads) {
  auto c = config_from_json(json{{"n_layers", 3}, {"n_heads", 4}, {"d_model", 32}, {"n_kv_heads", {4, 2, 1}}}, "x");
  EXPECT_EQ(c.kv_heads(0), 4);
  EXPECT_EQ(c.kv_heads(2), 1);
  c = config_from_json(json{{"n_heads", 4}, {"d_model", 32}, {"n_kv_heads", 0}}, "x");
  EXPECT_EQ(c.kv_heads(1), 4);  // 0 = n_heads
}

TEST(ConfigTest, LayerPatternRepeatsAndWindowDefaults) {
  auto c = config_from_json(json{{"n_layers", 6}, {"sliding_window", 8}, {"layer_types", {"local", "local", "global"}}}, "x");
  EXPECT_TRUE(c.is_local(3));
  EXPECT_FALSE(c.is_local(5));
  EXPECT_EQ(c.window(0), 8);
  EXPECT_EQ(c.window(2), 0);
  c = config_from_json(json{{"sliding_window", 8}}, "x");  // Mistral: all local
  EXPECT_TRUE(c.is_local(0) && c.is_local(3));
}

TEST(ConfigTest, ParamMatchedWidth) {
  auto c = config_from_json(json{{"d_ff", 3072}, {"ffn", "swiglu"}, {"param_match", true}}, "x");
  EXPECT_EQ(c.ffn_width(), 2048);  // Shazeer: 3072 -> 2048
  c = config_from_json(json{{"d_ff", 64}, {"ffn", "reglu"}, {"param_match", true}, {"multiple_of", 8}}, "x");
  EXPECT_EQ(c.ffn_width(), 48);  // 42 rounded up to a multiple of 8
  c = config_from_json(json{{"d_ff", 3072}, {"ffn", "gelu"}, {"param_match", true}}, "x");
  EXPECT_EQ(c.ffn_width(), 3072);  // 2-matrix FFNs keep d_ff
}

TEST(ConfigTest, ClaOwnership) {
  auto c = config_from_json(json{{"n_layers", 5}, {"cla_share", 2}}, "x");
  EXPECT_TRUE(c.owns_kv(0));
  EXPECT_FALSE(c.owns_kv(1));
  EXPECT_EQ(c.kv_source(3), 2);
  EXPECT_TRUE(c.owns_kv(4));
}

struct BadCase {
  json config;
  std::vector<std::string> expected;  // substrings of the message
};

TEST(ConfigTest, BadConfigsAreRefusedWithKeyValueAndExpectation) {
  const std::vector<BadCase> cases = {
      {{{"n_layer", 4}}, {"cfg.json", "unknown key 'n_layer'", "n_layers"}},
      {{{"n_heads", 8}, {"n_kv_heads", 3}}, {"'n_kv_heads'", "got 3", "divisor of n_heads = 8"}},
      {{{"ffn", "swishglu"}}, {"'ffn'", "\"swishglu\"", "relu | gelu | glu | bilinear | reglu | geglu | swiglu"}},
      {{{"sliding_window", 0}}, {"'sliding_window'", "got 0", "positive window"}},
      {{{"d_model", -4}}, {"'d_model'", "got -4", "positive integer"}},
      {{{"d_ff", 0}}, {"'d_ff'", "got 0"}},
      {{{"n_layers", "four"}}, {"'n_layers'", "\"four\"", "integer"}},
      {{{"tie_embeddings", 1}}, {"'tie_embeddings'", "true or false"}},
      {{{"n_layers", 2}, {"n_kv_heads", {8, 8, 8}}}, {"'n_kv_heads'", "list of 3", "n_layers = 2"}},
      {{{"layer_types", {"local"}}}, {"'layer_types'[0]", "sliding_window is not set"}},
      {{{"rope_scaling", {{"type", "longrope"}}}}, {"rope_scaling.type", "longrope", "llama3"}},
      {{{"rope_scaling", {{"type", "linear"}, {"factor", 0.5}}}}, {"rope_scaling", "factor", "got 0.5", ">= 1"}},
      {{{"rope_scaling", {{"type", "linear"}, {"scale", 2}}}}, {"rope_scaling.scale", "unknown key"}},
      {{{"rotary_dim", 7}, {"d_model", 64}, {"n_heads", 4}}, {"'rotary_dim'", "got 7", "even"}},
      {{{"d_model", 100}, {"n_heads", 8}}, {"'head_dim'", "d_model 100", "n_heads 8"}},
      {{{"n_layers", 2}, {"cla_share", 2}, {"n_kv_heads", {4, 2}}, {"n_heads", 4}, {"d_model", 32}},
       {"'cla_share'", "layer 1", "n_kv_heads 2 vs 4"}},
      {{{"gelu_approx", "tanh"}, {"ffn", "swiglu"}}, {"'gelu_approx'", "swiglu", "gelu or geglu"}},
      {{{"norm_eps", -1}}, {"'norm_eps'", "got -1"}},
      {{{"softmax", "sparsemax"}}, {"'softmax'", "standard | plus_one"}},
      {json::array({1, 2}), {"cfg.json", "JSON object"}},
  };
  for (const auto& bad : cases) {
    const std::string msg = error_of(bad.config);
    ASSERT_FALSE(msg.empty()) << "accepted: " << bad.config.dump();
    for (const auto& s : bad.expected) EXPECT_NE(msg.find(s), std::string::npos) << "'" << s << "' not in: " << msg;
  }
}

TEST(ConfigTest, ParameterCountMatchesLlamaShape) {
  // SmolLM2-135M: d 576, 30 layers, 9 heads, 3 KV heads, d_ff 1536, vocab 49152, tied.
  auto c = config_from_json(json{{"d_model", 576}, {"n_layers", 30}, {"n_heads", 9}, {"n_kv_heads", 3},
                                 {"d_ff", 1536}, {"vocab_size", 49152}, {"tie_embeddings", true}},
                            "x");
  EXPECT_EQ(c.n_params(), 134515008);  // the published 134.5M
}

}  // namespace
}  // namespace tpp

namespace tpp {
namespace {

// Parse text the way load_config_file does (without a file).
void parse_text(const std::string& text) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    throw Error(std::string("cfg.json: malformed JSON: ") + e.what());
  }
  config_from_json(j, "cfg.json");
}

TEST(ConfigCorruptionTest, EveryTruncationAndRandomFlipsFailCleanly) {
  ModelConfig c;
  c.sliding_window = 64;
  c.layer_types = {LayerType::local, LayerType::global};
  c.rope_scaling.type = RopeScalingType::llama3;
  c.rope_scaling.factor = 8;
  const std::string text = config_to_json(c).dump();
  ASSERT_NO_THROW(parse_text(text));
  for (size_t cut = 0; cut < text.size(); ++cut) EXPECT_THROW(parse_text(text.substr(0, cut)), Error) << cut;
  uint64_t state = 42;
  int accepted = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    std::string mutated = text;
    for (int flips = 0; flips < 3; ++flips) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      mutated[size_t(state >> 33) % mutated.size()] = char(state >> 17);
    }
    try {
      parse_text(mutated);
      ++accepted;
    } catch (const Error&) {
    }  // anything but tpp::Error escapes and fails the test
  }
  EXPECT_LT(accepted, 3000);
}

}  // namespace
}  // namespace tpp
