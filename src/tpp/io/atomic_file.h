// Writing a file atomically: the bytes go to `path`.tmp.<pid>, which is
// fsynced, renamed over `path`, and then the directory is fsynced, so a reader
// (or a crash) sees either the whole old file or the whole new one, never a
// mix. On any failure the temporary file is removed, `path` is untouched and
// tpp::Error names `path` and the cause.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tpp::io {

// Write `contents` (text or any bytes) to `path` atomically.
void write_file_atomic(const std::string& path, std::string_view contents);
void write_file_atomic(const std::string& path, std::span<const std::byte> contents);

// Write the concatenation of `parts` to `path` atomically, without first
// joining them in memory (a header plus tensor data).
void write_parts_atomic(const std::string& path, const std::vector<std::span<const std::byte>>& parts);

}  // namespace tpp::io
