// Training data: text files tokenised with the model's own tokenizer (or the
// byte-level one for models without a tokenizer), a deterministic
// train/validation split, and batches sampled as a pure function of
// (seed, step), so a resumed run sees exactly the batches an uninterrupted
// run would have seen.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace tpp {
class BpeTokenizer;
}

namespace tpp::train {

// How text becomes tokens for training and evaluation: a model's tokenizer
// (tokenizer.json in its directory, or a GGUF file's tokenizer.ggml.*) when
// it has one, else the byte-level tokenizer (ids 0-255 the bytes, <eos> 257).
class TextTokenizer {
 public:
  TextTokenizer();  // byte-level
  // The tokenizer of the model at `model_path` (a directory or a GGUF file);
  // byte-level when the model has none.
  static TextTokenizer for_model(const std::string& model_path);

  bool byte_level() const { return bpe_ == nullptr; }
  // What the output says: "byte-level" or "tokenizer.json (50257 tokens)".
  const std::string& name() const { return name_; }
  // Ids are below this.
  int64_t vocab_size() const;
  // Refuses a model whose vocabulary cannot hold the tokenizer's ids
  // (`who`: "train", "eval").
  void check_fits(int64_t model_vocab_size, std::string_view who) const;

  // One document: its tokens with the tokenizer's template tokens (e.g. a
  // BOS; none for byte-level), special-token text in it read as plain text;
  // and the bytes of the text each token accounts for (see TextData).
  void encode_document(std::string_view text, std::vector<int32_t>& tokens, std::vector<int32_t>& bytes) const;
  // The token between two documents: the tokenizer's EOS, or -1 for none.
  int32_t separator() const { return separator_; }
  // The BOS that encode_document puts first, or -1 when it adds none.
  int32_t bos() const { return bos_; }

 private:
  std::shared_ptr<const BpeTokenizer> bpe_;
  std::string name_;
  int32_t separator_;
  int32_t bos_ = -1;
};

struct TextData {
  std::vector<int32_t> tokens;
  // [tokens.size()]: the UTF-8 bytes of the text token i accounts for, so
  // bits per byte counts the text's real bytes whatever the tokenizer. A
  // token is charged the bytes it decodes to; template and separator tokens
  // nothing; the first tokens of a document absorb the difference between
  // that sum and the file's byte count (the space a SentencePiece tokenizer
  // prepends, a normalizer's changes), so each document's bytes are exact.
  std::vector<int32_t> token_bytes;
  int64_t bytes = 0;  // the sum of token_bytes
};

// Each file's text becomes one document; documents are joined by the
// tokenizer's separator. Errors name the file (missing, unreadable, empty).
TextData load_text_files(const std::vector<std::string>& paths, const TextTokenizer& tokenizer = TextTokenizer());

// Deterministic split without --val: blocks of kSplitBlock tokens, every
// tenth block (by position) held out, so both sets mix the whole corpus.
inline constexpr int64_t kSplitBlock = 8192;
void split_train_val(const TextData& all, TextData& train, TextData& val);

// Windows of T + 1 tokens: inputs are the first T, targets the last T.
class BatchSampler {
 public:
  BatchSampler(const std::vector<int32_t>& tokens, uint64_t seed);
  // Row b of micro-batch `micro` of step `step`: a window start, uniform over
  // the data, a pure function of (seed, step, micro, b).
  void sample(int64_t step, int micro, int64_t B, int64_t T, std::vector<int32_t>& inputs,
              std::vector<int32_t>& targets) const;

 private:
  const std::vector<int32_t>& tokens_;
  uint64_t seed_;
};

}  // namespace tpp::train
