#include "tpp/train/data.h"

#include <fstream>
#include <iterator>

#include "tpp/core/error.h"
#include "tpp/core/rng.h"
#include "tpp/tokenizer/byte_tokenizer.h"

namespace tpp::train {

TextData load_text_files(const std::vector<std::string>& paths) {
  TPP_CHECK(!paths.empty(), "data: no text files given");
  TextData out;
  const ByteTokenizer tok;
  for (const auto& path : paths) {
    std::ifstream in(path, std::ios::binary);
    if (!in) fail("{}: cannot open the training text", path);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) fail("{}: read error", path);
    if (text.empty()) fail("{}: the file is empty; expected plain text", path);
    const auto ids = tok.encode(text, false);
    if (!out.tokens.empty()) out.tokens.push_back(ByteTokenizer::kEos);
    out.tokens.insert(out.tokens.end(), ids.begin(), ids.end());
    out.bytes += int64_t(text.size());
  }
  return out;
}

void split_train_val(const TextData& all, TextData& train, TextData& val) {
  train = {};
  val = {};
  const int64_t n = int64_t(all.tokens.size());
  for (int64_t b = 0; b * kSplitBlock < n; ++b) {
    TextData& dst = b % 10 == 9 ? val : train;
    const int64_t lo = b * kSplitBlock, hi = std::min(n, lo + kSplitBlock);
    dst.tokens.insert(dst.tokens.end(), all.tokens.begin() + lo, all.tokens.begin() + hi);
    for (int64_t i = lo; i < hi; ++i) dst.bytes += all.tokens[size_t(i)] < 256 ? 1 : 0;
  }
  if (val.tokens.empty()) {
    // Under ten blocks: hold out the last tenth instead.
    train = {};
    const int64_t cut = n - std::max<int64_t>(1, n / 10);
    train.tokens.assign(all.tokens.begin(), all.tokens.begin() + cut);
    val.tokens.assign(all.tokens.begin() + cut, all.tokens.end());
    for (int32_t t : train.tokens) train.bytes += t < 256 ? 1 : 0;
    for (int32_t t : val.tokens) val.bytes += t < 256 ? 1 : 0;
  }
}

BatchSampler::BatchSampler(const std::vector<int32_t>& tokens, uint64_t seed) : tokens_(tokens), seed_(seed) {}

void BatchSampler::sample(int64_t step, int micro, int64_t B, int64_t T, std::vector<int32_t>& inputs,
                          std::vector<int32_t>& targets) const {
  const int64_t n = int64_t(tokens_.size());
  TPP_CHECK(n >= T + 1, "data: {} tokens are too few for sequences of {} (need at least {})", n, T, T + 1);
  inputs.resize(size_t(B * T));
  targets.resize(size_t(B * T));
  const CounterRng rng(seed_, uint64_t(step) * 1024 + uint64_t(micro));
  for (int64_t b = 0; b < B; ++b) {
    const int64_t start = int64_t(rng.bits(uint64_t(b)) % uint64_t(n - T));
    for (int64_t t = 0; t < T; ++t) {
      inputs[size_t(b * T + t)] = tokens_[size_t(start + t)];
      targets[size_t(b * T + t)] = tokens_[size_t(start + t + 1)];
    }
  }
}

}  // namespace tpp::train
