#include "tpp/train/data.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>

#include <fmt/format.h>

#include "tpp/core/error.h"
#include "tpp/core/rng.h"
#include "tpp/io/gguf.h"
#include "tpp/tokenizer/bpe_tokenizer.h"
#include "tpp/tokenizer/byte_tokenizer.h"
#include "tpp/tokenizer/gguf_read.h"

namespace tpp::train {

TextTokenizer::TextTokenizer() : name_("byte-level"), separator_(ByteTokenizer::kEos) {}

TextTokenizer TextTokenizer::for_model(const std::string& model_path) {
  namespace fs = std::filesystem;
  TextTokenizer t;
  std::error_code ec;
  std::string what;
  if (fs::is_regular_file(model_path, ec)) {
    const io::GgufFile f = io::GgufFile::open(model_path);
    if (!io::gguf_has_tokenizer(f)) return t;
    t.bpe_ = std::make_shared<const BpeTokenizer>(BpeTokenizer::from_gguf(read_gguf_vocab(f)));
    what = "the GGUF file's tokenizer";
  } else {
    if (!fs::exists(fs::path(model_path) / "tokenizer.json")) return t;
    t.bpe_ = std::make_shared<const BpeTokenizer>(BpeTokenizer::load(model_path));
    what = "tokenizer.json";
  }
  t.name_ = fmt::format("{} ({} tokens)", what, t.bpe_->vocab_size());
  t.separator_ = t.bpe_->eos_id();
  const auto none = t.bpe_->encode("", /*add_special=*/true, /*parse_special=*/false);
  if (!none.empty() && none.front() == t.bpe_->bos_id()) t.bos_ = none.front();
  return t;
}

int64_t TextTokenizer::vocab_size() const { return bpe_ ? bpe_->vocab_size() : ByteTokenizer::kVocabSize; }

void TextTokenizer::check_fits(int64_t model_vocab_size, std::string_view who) const {
  if (bpe_)
    TPP_CHECK(vocab_size() <= model_vocab_size, "{}: the model's vocab_size is {}, its {} has more ids", who,
              model_vocab_size, name_);
  else
    TPP_CHECK(model_vocab_size >= ByteTokenizer::kVocabSize,
              "{}: the model's vocab_size is {}, the byte-level tokenizer needs at least {} (the model has no "
              "tokenizer.json)",
              who, model_vocab_size, ByteTokenizer::kVocabSize);
}

void TextTokenizer::encode_document(std::string_view text, std::vector<int32_t>& tokens,
                                    std::vector<int32_t>& bytes) const {
  const size_t first = tokens.size();
  if (!bpe_) {
    const auto ids = ByteTokenizer().encode(text, false);
    tokens.insert(tokens.end(), ids.begin(), ids.end());
    bytes.resize(tokens.size(), 1);
    return;
  }
  const auto ids = bpe_->encode(text, /*add_special=*/true, /*parse_special=*/false);
  tokens.insert(tokens.end(), ids.begin(), ids.end());
  int64_t charged = 0;
  for (int32_t id : ids) {
    bytes.push_back(int32_t(bpe_->decode_token(id).size()));
    charged += bytes.back();
  }
  // Template tokens decode to their text ("<s>"), a SentencePiece tokenizer's
  // first piece to a space the file does not hold: the first tokens give back
  // what is charged beyond the text's bytes (or the first takes what is missing).
  int64_t excess = charged - int64_t(text.size());
  if (excess < 0 && bytes.size() > first) bytes[first] += int32_t(-excess);
  for (size_t i = first; excess > 0 && i < bytes.size(); ++i) {
    const int64_t take = std::min<int64_t>(bytes[i], excess);
    bytes[i] -= int32_t(take);
    excess -= take;
  }
}

TextData load_text_files(const std::vector<std::string>& paths, const TextTokenizer& tokenizer) {
  TPP_CHECK(!paths.empty(), "data: no text files given");
  TextData out;
  for (const auto& path : paths) {
    std::ifstream in(path, std::ios::binary);
    if (!in) fail("{}: cannot open the training text", path);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) fail("{}: read error", path);
    if (text.empty()) fail("{}: the file is empty; expected plain text", path);
    if (!out.tokens.empty() && tokenizer.separator() >= 0) {
      out.tokens.push_back(tokenizer.separator());
      out.token_bytes.push_back(0);
    }
    tokenizer.encode_document(text, out.tokens, out.token_bytes);
    out.bytes += int64_t(text.size());
  }
  return out;
}

void split_train_val(const TextData& all, TextData& train, TextData& val) {
  TPP_CHECK(all.token_bytes.size() == all.tokens.size(), "data: {} tokens but {} byte counts", all.tokens.size(),
            all.token_bytes.size());
  train = {};
  val = {};
  auto append = [&](TextData& dst, int64_t lo, int64_t hi) {
    dst.tokens.insert(dst.tokens.end(), all.tokens.begin() + lo, all.tokens.begin() + hi);
    dst.token_bytes.insert(dst.token_bytes.end(), all.token_bytes.begin() + lo, all.token_bytes.begin() + hi);
    for (int64_t i = lo; i < hi; ++i) dst.bytes += all.token_bytes[size_t(i)];
  };
  const int64_t n = int64_t(all.tokens.size());
  for (int64_t b = 0; b * kSplitBlock < n; ++b) {
    const int64_t lo = b * kSplitBlock, hi = std::min(n, lo + kSplitBlock);
    append(b % 10 == 9 ? val : train, lo, hi);
  }
  if (val.tokens.empty()) {
    // Under ten blocks: hold out the last tenth instead.
    train = {};
    const int64_t cut = n - std::max<int64_t>(1, n / 10);
    append(train, 0, cut);
    append(val, cut, n);
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
