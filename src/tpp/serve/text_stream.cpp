#include "tpp/serve/text_stream.h"

#include <algorithm>

namespace tpp::serve {

TextStream::TextStream(std::vector<std::string> stops) : stops_(std::move(stops)) {
  std::erase_if(stops_, [](const std::string& s) { return s.empty(); });
}

size_t utf8_complete_prefix(std::string_view s) {
  // Look back at most 3 bytes for the lead byte of a character that the
  // string cuts short.
  const size_t n = s.size();
  for (size_t back = 1; back <= std::min<size_t>(n, 4); ++back) {
    const auto c = static_cast<unsigned char>(s[n - back]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte
    const size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    return len > back && c >= 0xC0 && c < 0xF8 ? n - back : n;
  }
  return n;
}

std::string TextStream::push(std::string_view bytes) {
  if (stopped_) return {};
  text_.append(bytes);
  // The earliest stop string that now appears in the unsent text (nothing
  // sent can be part of one: a possible start is always held back).
  size_t hit = std::string::npos;
  for (const auto& s : stops_) hit = std::min(hit, text_.find(s, sent_));
  if (hit != std::string::npos) {
    text_.resize(hit);
    stopped_ = true;
    std::string out = text_.substr(sent_);
    sent_ = text_.size();
    return out;
  }
  // Hold back the longest tail that is the start of a stop string.
  size_t hold = 0;
  for (const auto& s : stops_)
    for (size_t len = std::min(s.size() - 1, text_.size() - sent_); len > hold; --len)
      if (std::string_view(text_).substr(text_.size() - len) == std::string_view(s).substr(0, len)) {
        hold = len;
        break;
      }
  const size_t end = utf8_complete_prefix(std::string_view(text_).substr(0, text_.size() - hold));
  if (end <= sent_) return {};
  std::string out = text_.substr(sent_, end - sent_);
  sent_ = end;
  return out;
}

std::string TextStream::finish() {
  std::string out = text_.substr(sent_);
  sent_ = text_.size();
  return out;
}

}  // namespace tpp::serve
