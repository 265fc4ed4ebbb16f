// UTF-8, once for the whole engine: decoding one character at a time with the
// Unicode rules for ill-formed input, encoding, validation, and the lossy
// streaming decode that prints generated text.
//
// Well-formed UTF-8 is RFC 3629 / Unicode Table 3-7: no overlong forms, no
// surrogates (U+D800..U+DFFF), nothing above U+10FFFF. An ill-formed sequence
// is consumed as its "maximal subpart" (Unicode §3.9, U+FFFD substitution of
// maximal subparts): the longest prefix that could still have begun a
// well-formed character, at least one byte. Python's errors="replace", Rust's
// String::from_utf8_lossy (Hugging Face tokenizers) and WHATWG decoders all
// substitute that way, so one U+FFFD per maximal subpart matches them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace tpp::utf8 {

inline constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// One step of decoding at s[i].
struct Decoded {
  enum class Status : uint8_t {
    ok,         // a well-formed character: cp, len bytes
    invalid,    // an ill-formed maximal subpart of len >= 1 bytes
    truncated,  // the len bytes left in s begin a character but do not finish it
  };
  char32_t cp = 0;  // the code point when ok
  size_t len = 0;   // bytes consumed; >= 1 whenever i < s.size()
  Status status = Status::ok;
  bool ok() const { return status == Status::ok; }
};

// Decodes the character at s[i] (requires i < s.size()).
Decoded decode(std::string_view s, size_t i);

// Appends cp as UTF-8 (1 to 4 bytes). cp must be <= U+10FFFF; a surrogate
// code point is written as its 3-byte form, which is not well-formed UTF-8
// (callers that hold Python's surrogate-escaped bytes undo those first).
void append(std::string& out, char32_t cp);

// Length of the longest well-formed prefix of s.
size_t valid_prefix(std::string_view s);
inline bool is_valid(std::string_view s) { return valid_prefix(s) == s.size(); }

// The largest n' <= n that does not fall inside a multi-byte character of s
// (s is assumed well-formed), for cutting text to a byte budget.
size_t floor_boundary(std::string_view s, size_t n);

// Takes the printable prefix of `pending`, a stream of bytes that arrives in
// pieces (a token's bytes may end inside a character): well-formed characters
// are kept, each ill-formed maximal subpart becomes U+FFFD, and a character
// still missing bytes at the end stays in `pending` for the next piece, unless
// `final`, when it too becomes U+FFFD.
std::string take_lossy(std::string& pending, bool final);

}  // namespace tpp::utf8
