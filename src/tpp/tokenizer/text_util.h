// Small text helpers shared by the tokenizer's loaders (internal to tokenizer/);
// UTF-8 itself is core/utf8.h.
#pragma once

#include <string_view>

namespace tpp::tok {

inline constexpr std::string_view kMetaspace = "\u2581";  // ▁, SentencePiece's space

// The byte a "<0xXX>" token stands for, or -1 when the text is not of that form.
inline int byte_token_value(std::string_view p) {
  if (p.size() != 6 || p.substr(0, 3) != "<0x" || p[5] != '>') return -1;
  auto hex = [](char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1; };
  const int hi = hex(p[3]), lo = hex(p[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

}  // namespace tpp::tok
