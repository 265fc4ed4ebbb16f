// The byte-level tokenizer for tiny experiments: ids 0..255 are the bytes of
// the UTF-8 text, followed by special tokens. Any text round-trips exactly.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tpp {

class ByteTokenizer {
 public:
  static constexpr int32_t kBos = 256;
  static constexpr int32_t kEos = 257;
  static constexpr int32_t kPad = 258;
  static constexpr int32_t kUnk = 259;
  static constexpr int32_t kVocabSize = 260;

  std::vector<int32_t> encode(std::string_view text, bool add_bos) const;
  // Specials decode to nothing; ids >= kVocabSize decode to nothing as well.
  std::string decode(const std::vector<int32_t>& ids) const;
  std::string decode_one(int32_t id) const;
};

}  // namespace tpp
