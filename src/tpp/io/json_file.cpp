#include "tpp/io/json_file.h"

#include "tpp/core/error.h"
#include "tpp/io/mapped_file.h"

namespace tpp::io {

nlohmann::json read_json_file(const std::string& path) {
  const std::string text = read_text_file(path);
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    fail("{}: malformed JSON at byte {}: {}", path, e.byte, e.what());
  }
}

}  // namespace tpp::io
