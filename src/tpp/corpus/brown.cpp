#include "tpp/corpus/brown.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

#include "tpp/core/error.h"
#include "tpp/io/atomic_file.h"

namespace tpp::corpus {
namespace {

bool closes(std::string_view w) {
  static constexpr std::string_view kClosing[] = {".", ",", ";", ":", "!", "?", ")", "]", "}", "'"};
  return std::find(std::begin(kClosing), std::end(kClosing), w) != std::end(kClosing);
}
bool opens(std::string_view w) { return w == "(" || w == "[" || w == "{"; }

}  // namespace

std::string brown_to_text(std::string_view tagged) {
  std::string out;
  size_t pos = 0;
  while (pos < tagged.size()) {
    size_t end = tagged.find('\n', pos);
    if (end == std::string_view::npos) end = tagged.size();
    const std::string_view line = tagged.substr(pos, end - pos);
    pos = end + 1;
    std::string sentence;
    bool glue = true;  // no space before the next word
    std::string_view prev;
    size_t i = 0;
    while (i < line.size()) {
      while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
      size_t j = i;
      while (j < line.size() && line[j] != ' ' && line[j] != '\t' && line[j] != '\r') ++j;
      if (j == i) break;
      std::string_view token = line.substr(i, j - i);
      i = j;
      const size_t slash = token.rfind('/');
      std::string_view word = slash == std::string_view::npos || slash == 0 ? token : token.substr(0, slash);
      const std::string_view tag = slash == std::string_view::npos ? std::string_view() : token.substr(slash + 1);
      // This distribution doubles every ?, ! and ; (and some :) token.
      if (word == prev && word != "." && !tag.empty() && tag[0] == '.') continue;
      prev = word;
      if (word == "``" || word == "''") {
        const bool opening = word == "``";
        if (opening) {
          if (!glue) sentence += ' ';
          sentence += '"';
          glue = true;
        } else {
          sentence += '"';
          glue = false;
        }
        continue;
      }
      if (!glue && !closes(word)) sentence += ' ';
      sentence.append(word);
      glue = opens(word);
    }
    if (!sentence.empty()) out += sentence + "\n";
  }
  return out;
}

int prepare_brown(const std::string& in_dir, const std::string& out_file) {
  namespace fs = std::filesystem;
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(in_dir, ec)) {
    const std::string n = entry.path().filename().string();
    if (n.size() == 4 && n[0] == 'c' && n[1] >= 'a' && n[1] <= 'r' && std::isdigit(static_cast<unsigned char>(n[2])) &&
        std::isdigit(static_cast<unsigned char>(n[3])))
      files.push_back(entry.path());
  }
  if (ec) fail("{}: cannot read the corpus directory: {}", in_dir, ec.message());
  if (files.empty()) fail("{}: no Brown corpus files (named ca01 .. cr09) found", in_dir);
  std::sort(files.begin(), files.end());
  std::string text;
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    if (!in) fail("{}: cannot open", f.string());
    const std::string tagged((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!text.empty()) text += "\n";
    text += brown_to_text(tagged);
  }
  io::write_file_atomic(out_file, text);
  return int(files.size());
}

}  // namespace tpp::corpus
