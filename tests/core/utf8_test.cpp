// core/utf8: every scalar value round-trips, every string of up to three bytes
// decodes as the set of well-formed encodings says (maximal subparts included),
// and lossy decoding matches Python's bytes.decode("utf-8", "replace"),
// however the bytes are split into pieces.
#include <algorithm>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tpp/core/utf8.h"

namespace tpp::utf8 {
namespace {

bool is_surrogate(char32_t c) { return c >= 0xd800 && c <= 0xdfff; }

std::string encode(char32_t c) {
  std::string s;
  append(s, c);
  return s;
}

TEST(Utf8Test, EveryScalarValueRoundTrips) {
  for (char32_t c = 0; c <= 0x10ffff; ++c) {
    if (is_surrogate(c)) continue;
    const std::string s = encode(c);
    ASSERT_EQ(s.size(), c < 0x80 ? 1u : c < 0x800 ? 2u : c < 0x10000 ? 3u : 4u) << std::hex << uint32_t(c);
    const Decoded d = decode(s, 0);
    ASSERT_TRUE(d.ok()) << std::hex << uint32_t(c);
    ASSERT_EQ(d.cp, c);
    ASSERT_EQ(d.len, s.size());
    ASSERT_TRUE(is_valid(s));
  }
  EXPECT_EQ(encode(0x20ac), "\xE2\x82\xAC");
  EXPECT_EQ(encode(0x1f600), "\xF0\x9F\x98\x80");
  EXPECT_EQ(encode(0xdc80), "\xED\xB2\x80");  // a surrogate is written, though not well-formed
  EXPECT_FALSE(is_valid(encode(0xdc80)));
}

// Against the set of well-formed encodings, for every string of 3 bytes: a
// character is decoded exactly when a well-formed encoding starts the string,
// and otherwise the bytes consumed are the maximal subpart (a prefix of some
// well-formed encoding that the next byte does not continue).
TEST(Utf8Test, EveryThreeByteStringDecodesByTheDefinition) {
  std::vector<bool> valid[4], prefix[4];  // [k]: indexed by the first k bytes, big-endian
  for (int k = 1; k <= 3; ++k) valid[k].assign(size_t(1) << (8 * k), false), prefix[k] = valid[k];
  for (char32_t c = 0; c <= 0x10ffff; ++c) {
    if (is_surrogate(c)) continue;
    const std::string s = encode(c);
    uint32_t key = 0;
    for (size_t k = 1; k <= std::min<size_t>(3, s.size()); ++k) {
      key = (key << 8) | uint8_t(s[k - 1]);
      prefix[k][key] = true;
      if (k == s.size()) valid[k][key] = true;
    }
  }
  std::string s(3, '\0');
  for (uint32_t v = 0; v < (1u << 24); ++v) {
    s[0] = char(v >> 16), s[1] = char(v >> 8), s[2] = char(v);
    const uint32_t key[4] = {0, v >> 16, v >> 8, v};
    const Decoded d = decode(s, 0);
    size_t want_ok = 0;
    for (size_t k = 1; k <= 3 && want_ok == 0; ++k)
      if (valid[k][key[k]]) want_ok = k;
    if (want_ok) {
      ASSERT_TRUE(d.ok()) << std::hex << v;
      ASSERT_EQ(d.len, want_ok) << std::hex << v;
      ASSERT_EQ(encode(d.cp), s.substr(0, d.len)) << std::hex << v;
    } else if (prefix[3][key[3]]) {
      ASSERT_EQ(d.status, Decoded::Status::truncated) << std::hex << v;  // a 4-byte character, cut
      ASSERT_EQ(d.len, 3u);
    } else {
      ASSERT_EQ(d.status, Decoded::Status::invalid) << std::hex << v;
      ASSERT_GE(d.len, 1u);
      ASSERT_LE(d.len, 2u);
      ASSERT_TRUE(d.len == 1 || prefix[d.len][key[d.len]]) << std::hex << v;
      ASSERT_FALSE(prefix[d.len + 1][key[d.len + 1]]) << std::hex << v;
    }
  }
}

TEST(Utf8Test, DecodesInsideAString) {
  const std::string s = "a\xC3\xA9\xE2\x82";  // a, é, then the first two bytes of €
  EXPECT_EQ(decode(s, 0).cp, U'a');
  const Decoded e = decode(s, 1);
  EXPECT_TRUE(e.ok());
  EXPECT_EQ(e.cp, U'\u00e9');
  EXPECT_EQ(e.len, 2u);
  const Decoded cut = decode(s, 3);
  EXPECT_EQ(cut.status, Decoded::Status::truncated);
  EXPECT_EQ(cut.len, 2u);
  EXPECT_EQ(decode(s, 4).status, Decoded::Status::invalid);  // a continuation byte alone
}

TEST(Utf8Test, ValidPrefixStopsAtTheFirstIllFormedByte) {
  EXPECT_EQ(valid_prefix(""), 0u);
  EXPECT_EQ(valid_prefix("abc"), 3u);
  EXPECT_EQ(valid_prefix("h\xC3\xA9llo"), 6u);
  EXPECT_EQ(valid_prefix("ab\xC0\x80"), 2u);          // overlong
  EXPECT_EQ(valid_prefix("ab\xED\xA0\x80"), 2u);      // surrogate
  EXPECT_EQ(valid_prefix("ab\xF4\x90\x80\x80"), 2u);  // above U+10FFFF
  EXPECT_EQ(valid_prefix("ab\xE2\x82"), 2u);          // truncated
  EXPECT_EQ(valid_prefix(std::string("a\0b", 3)), 3u);
  EXPECT_TRUE(is_valid("\xF0\x9F\x98\x80"));
  EXPECT_FALSE(is_valid("\xFF"));
}

TEST(Utf8Test, FloorBoundaryNeverSplitsACharacter) {
  const std::string s = "a\xE2\x82\xAC" "b";  // a € b
  EXPECT_EQ(floor_boundary(s, 0), 0u);
  EXPECT_EQ(floor_boundary(s, 1), 1u);
  EXPECT_EQ(floor_boundary(s, 2), 1u);
  EXPECT_EQ(floor_boundary(s, 3), 1u);
  EXPECT_EQ(floor_boundary(s, 4), 4u);
  EXPECT_EQ(floor_boundary(s, 5), 5u);
  EXPECT_EQ(floor_boundary(s, 99), 5u);
}

// Expected strings: Python 3's bytes.decode("utf-8", "replace") of each input.
struct LossyCase {
  std::string in;
  std::string out;
};
const std::string R(kReplacement);
const std::vector<LossyCase> kLossy = {
    {"plain text", "plain text"},
    {"\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64",  // Unicode Table 3-8
     "a" + R + R + R + "b" + R + "c" + R + R + "d"},
    {"\xC0\x80", R + R},
    {"\xE0\x80\x80", R + R + R},
    {"\xED\xA0\x80", R + R + R},
    {"\xF4\x90\x80\x80", R + R + R + R},
    {"\xF0\x9F\x98", R},
    {"\xF0\x9F\x98\x80", "\xF0\x9F\x98\x80"},
    {"\xFF\xFE", R + R},
    {"\xE4\xBD\xA0\xE5\xA5\xBD", "\xE4\xBD\xA0\xE5\xA5\xBD"},
};

TEST(Utf8Test, TakeLossyMatchesPythonsReplace) {
  for (const auto& c : kLossy) {
    std::string pending = c.in;
    EXPECT_EQ(take_lossy(pending, true), c.out) << c.in;
    EXPECT_TRUE(pending.empty());
  }
}

TEST(Utf8Test, TakeLossyGivesTheSameTextHoweverTheBytesArrive) {
  for (const auto& c : kLossy) {
    for (size_t cut1 = 0; cut1 <= c.in.size(); ++cut1) {
      for (size_t cut2 = cut1; cut2 <= c.in.size(); ++cut2) {
        std::string pending, out;
        for (const auto& piece : {c.in.substr(0, cut1), c.in.substr(cut1, cut2 - cut1), c.in.substr(cut2)}) {
          pending += piece;
          const std::string got = take_lossy(pending, false);
          ASSERT_TRUE(is_valid(got));
          out += got;
        }
        out += take_lossy(pending, true);
        ASSERT_EQ(out, c.out) << c.in << " cut at " << cut1 << ", " << cut2;
      }
    }
  }
  // An unfinished character waits for its last byte unless the stream ends.
  std::string pending = "ok\xE2\x82";
  EXPECT_EQ(take_lossy(pending, false), "ok");
  EXPECT_EQ(pending, "\xE2\x82");
  pending += "\xAC";
  EXPECT_EQ(take_lossy(pending, false), "\xE2\x82\xAC");
  EXPECT_TRUE(pending.empty());
}

}  // namespace
}  // namespace tpp::utf8
