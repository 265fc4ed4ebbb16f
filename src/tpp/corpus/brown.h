// Corpus preparation: the Brown corpus as distributed (part-of-speech tagged
// tokens "word/tag", one sentence per tab-indented line) back to plain text.
#pragma once

#include <string>
#include <string_view>

namespace tpp::corpus {

// One tagged file to plain text: tags stripped (after each token's last '/'),
// `` and '' become ", no space before closing punctuation or after opening
// brackets and quotes, the doubled ?, !, ; tokens of this distribution made
// single, one sentence per line.
std::string brown_to_text(std::string_view tagged);

// Every corpus file of a Brown directory (names c[a-r]NN, in order) to one
// text file, documents separated by blank lines; written atomically.
// Returns the number of files converted; errors name the directory.
int prepare_brown(const std::string& in_dir, const std::string& out_file);

}  // namespace tpp::corpus
