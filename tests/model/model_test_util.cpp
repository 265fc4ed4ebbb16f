#include "model/model_test_util.h"

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "common/test_util.h"
#include "tpp/core/error.h"
#include "tpp/io/safetensors.h"

namespace tpp::test {

std::vector<float> forward_logits(const Model& model, const std::vector<int32_t>& tokens,
                                  const ForwardOptions& o) {
  const int64_t T = int64_t(tokens.size()), V = model.config.vocab_size;
  ThreadPool pool(o.threads);
  Transformer tr(model, o.max_chunk);
  tr.set_naive_attention(o.naive_attention);
  KvCache cache(model.config, T, o.kv_type, o.rolling);
  std::vector<float> logits(static_cast<size_t>(T * V));
  const int64_t piece = o.token_by_token ? 1 : (o.chunk > 0 ? o.chunk : T);
  for (int64_t done = 0; done < T; done += piece) {
    const int64_t n = std::min(piece, T - done);
    tr.forward(cache, std::span(tokens.data() + done, size_t(n)), logits.data() + done * V, true, pool);
  }
  return logits;
}

std::vector<std::string> golden_cases() {
  namespace fs = std::filesystem;
  std::vector<std::string> out;
  const fs::path root = source_path("tests/golden/models");
  if (!fs::is_directory(root)) return out;
  for (const auto& e : fs::directory_iterator(root))
    if (e.is_directory() && fs::exists(e.path() / "golden.safetensors")) out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

namespace {
template <class T>
std::vector<T> read_tensor(const io::SafeTensors& st, const std::string& name, DType dtype, bool required) {
  const auto* t = st.find(name);
  if (!t) {
    if (required) fail("{}: missing '{}'", st.path(), name);
    return {};
  }
  if (t->dtype != dtype) fail("{}: '{}' has dtype {}", st.path(), name, dtype_name(t->dtype));
  std::vector<T> v(static_cast<size_t>(t->numel()));
  std::memcpy(v.data(), t->data, v.size() * sizeof(T));
  return v;
}
}  // namespace

Golden load_golden(const std::string& case_dir) {
  const auto st = io::SafeTensors::open(case_dir + "/golden.safetensors");
  Golden g;
  g.tokens = read_tensor<int32_t>(st, "tokens", DType::i32, true);
  g.logits = read_tensor<float>(st, "logits", DType::f32, true);
  g.logits_prefix = read_tensor<float>(st, "logits_prefix", DType::f32, false);
  return g;
}

}  // namespace tpp::test
