// The text of one reply as it streams: token bytes go in, text that is safe
// to show comes out. Text is held back while it could still become a stop
// string (a stop string is matched across token boundaries and never shown,
// not even in part) or while it ends inside a UTF-8 character.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace tpp::serve {

class TextStream {
 public:
  explicit TextStream(std::vector<std::string> stops = {});

  // Appends one token's bytes; returns the text that became safe to show.
  // After a stop string matched, stopped() is true and the text ends before it.
  std::string push(std::string_view bytes);
  // The held-back rest, at the end of the reply (no stop string matched).
  std::string finish();

  bool stopped() const { return stopped_; }
  // The whole reply so far (up to the stop string once one matched).
  const std::string& text() const { return text_; }

 private:
  std::vector<std::string> stops_;
  std::string text_;
  size_t sent_ = 0;
  bool stopped_ = false;
};

// The length of s's longest prefix that does not end inside a UTF-8 character.
size_t utf8_complete_prefix(std::string_view s);

}  // namespace tpp::serve
