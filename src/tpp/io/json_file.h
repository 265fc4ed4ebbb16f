// Reading a JSON file with errors that name the file and the byte offset.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace tpp::io {

// Throws tpp::Error "<path>: malformed JSON at byte N: ..." or a read error.
nlohmann::json read_json_file(const std::string& path);

}  // namespace tpp::io
