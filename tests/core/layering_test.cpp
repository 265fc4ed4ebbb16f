// Dependencies run one way: core -> kernels -> ops -> model -> infer / train,
// with io on core, tokenizer on io and core only, and jinja (the chat-template engine) on core
// only, used by infer; corpus preparation and run reports on io; convert (checkpoint surgery and
// quantisation to GGUF) on model and quant; experiment (the seeds' experiments) on train, convert and
// report; serve (the HTTP server) on infer; quant (on kernels) by model (the KV cache's q8_0 rows), convert,
// tests and benchmarks.
// Every #include "tpp/<dir>/..." is checked.
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include <gtest/gtest.h>

#include "common/test_util.h"

namespace tpp::test {
namespace {

TEST(LayeringTest, IncludesOnlyPointDown) {
  const std::map<std::string, std::set<std::string>> allowed = {
      {"core", {"core"}},
      {"kernels", {"core", "kernels"}},
      {"io", {"core", "io"}},
      {"jinja", {"core", "jinja"}},
      {"quant", {"core", "kernels", "quant"}},
      {"tokenizer", {"core", "io", "tokenizer"}},
      {"ops", {"core", "kernels", "ops"}},
      {"model", {"core", "kernels", "io", "ops", "quant", "model"}},
      {"infer", {"core", "kernels", "io", "ops", "model", "tokenizer", "jinja", "infer"}},
      {"serve", {"core", "kernels", "io", "ops", "model", "tokenizer", "jinja", "infer", "serve"}},
      {"train", {"core", "kernels", "io", "ops", "model", "tokenizer", "train"}},
      {"corpus", {"core", "io", "corpus"}},
      {"report", {"core", "io", "report"}},
      {"convert", {"core", "kernels", "io", "ops", "model", "quant", "convert"}},
      {"experiment",
       {"core", "kernels", "io", "ops", "model", "tokenizer", "train", "quant", "convert", "report", "corpus", "experiment"}},
  };
  const std::string prefix = "#include \"tpp/";
  namespace fs = std::filesystem;
  int checked = 0;
  for (const auto& entry : fs::recursive_directory_iterator(source_path("src/tpp"))) {
    if (!entry.is_regular_file()) continue;
    const auto rel = fs::relative(entry.path(), source_path("src/tpp"));
    const std::string layer = rel.begin()->string();
    ASSERT_TRUE(allowed.count(layer)) << "unknown layer directory " << layer;
    std::ifstream in(entry.path());
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind(prefix, 0) != 0) continue;
      const std::string target = line.substr(prefix.size(), line.find('/', prefix.size()) - prefix.size());
      ++checked;
      EXPECT_TRUE(allowed.at(layer).count(target)) << rel.string() << " includes tpp/" << target << "/ (upward)";
    }
  }
  EXPECT_GT(checked, 20);
}

}  // namespace
}  // namespace tpp::test
