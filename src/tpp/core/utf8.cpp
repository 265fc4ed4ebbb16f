#include "tpp/core/utf8.h"

namespace tpp::utf8 {

Decoded decode(std::string_view s, size_t i) {
  const auto b0 = uint8_t(s[i]);
  if (b0 < 0x80) return {b0, 1, Decoded::Status::ok};
  // Unicode Table 3-7: the sequence length and the range of the second byte
  // follow from the lead byte; later bytes are always 80..BF.
  size_t n = 0;
  uint8_t lo = 0x80, hi = 0xbf;
  if (b0 >= 0xc2 && b0 <= 0xdf) {
    n = 2;
  } else if (b0 >= 0xe0 && b0 <= 0xef) {
    n = 3;
    if (b0 == 0xe0) lo = 0xa0;  // no overlong forms
    if (b0 == 0xed) hi = 0x9f;  // no surrogates
  } else if (b0 >= 0xf0 && b0 <= 0xf4) {
    n = 4;
    if (b0 == 0xf0) lo = 0x90;  // no overlong forms
    if (b0 == 0xf4) hi = 0x8f;  // nothing above U+10FFFF
  } else {
    return {0, 1, Decoded::Status::invalid};  // a continuation byte, C0, C1 or F5..FF
  }
  char32_t cp = b0 & (0xff >> (n + 1));
  for (size_t k = 1; k < n; ++k) {
    if (i + k == s.size()) return {0, k, Decoded::Status::truncated};
    const auto b = uint8_t(s[i + k]);
    if (b < lo || b > hi) return {0, k, Decoded::Status::invalid};
    cp = (cp << 6) | (b & 0x3f);
    lo = 0x80;
    hi = 0xbf;
  }
  return {cp, n, Decoded::Status::ok};
}

void append(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xc0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += char(0xe0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3f));
    out += char(0x80 | (cp & 0x3f));
  } else {
    out += char(0xf0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3f));
    out += char(0x80 | ((cp >> 6) & 0x3f));
    out += char(0x80 | (cp & 0x3f));
  }
}

size_t valid_prefix(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    if (uint8_t(s[i]) < 0x80) {
      ++i;
      continue;
    }
    const Decoded d = decode(s, i);
    if (!d.ok()) break;
    i += d.len;
  }
  return i;
}

size_t floor_boundary(std::string_view s, size_t n) {
  if (n >= s.size()) return s.size();
  while (n > 0 && (uint8_t(s[n]) & 0xc0) == 0x80) --n;
  return n;
}

std::string take_lossy(std::string& pending, bool final) {
  std::string out;
  size_t i = 0;
  while (i < pending.size()) {
    const Decoded d = decode(pending, i);
    if (d.status == Decoded::Status::truncated && !final) break;  // the rest comes with the next piece
    if (d.ok())
      out.append(pending, i, d.len);
    else
      out += kReplacement;
    i += d.len;
  }
  pending.erase(0, i);
  return out;
}

}  // namespace tpp::utf8
