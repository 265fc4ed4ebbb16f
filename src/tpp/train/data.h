// Training data: text files tokenised with the byte-level tokenizer, a
// deterministic train/validation split, and batches sampled as a pure
// function of (seed, step), so a resumed run sees exactly the batches an
// uninterrupted run would have seen.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tpp::train {

struct TextData {
  std::vector<int32_t> tokens;
  int64_t bytes = 0;  // UTF-8 bytes the tokens encode (for bits per byte)
};

// Each file's bytes become one document; documents are joined by an EOS token.
// Errors name the file (missing, unreadable, empty).
TextData load_text_files(const std::vector<std::string>& paths);

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
