#include "tpp/io/json_file.h"

#include "tpp/core/error.h"
#include "tpp/io/mapped_file.h"

namespace tpp::io {

namespace {

// Real configs and tokenizers nest a handful of levels; copying or printing a
// deeper document would recurse as deep as it nests.
constexpr int kMaxJsonDepth = 128;

}  // namespace

nlohmann::json read_json_file(const std::string& path) {
  const std::string text = read_text_file(path);
  auto limit_depth = [&](int depth, nlohmann::json::parse_event_t, nlohmann::json&) {
    if (depth > kMaxJsonDepth) fail("{}: JSON nested {} levels deep, expected at most {}", path, depth, kMaxJsonDepth);
    return true;
  };
  try {
    return nlohmann::json::parse(text, limit_depth);
  } catch (const nlohmann::json::parse_error& e) {
    fail("{}: malformed JSON at byte {}: {}", path, e.byte, e.what());
  }
}

}  // namespace tpp::io
