// tpp::Error and the always-on precondition checks used at every boundary.
//
// I/O, parsing and configuration errors throw tpp::Error with a message that
// names the file, the field or tensor, the expected value and the actual value.
// Library code never calls exit(); the CLI catches Error, prints it, exits 1.
#pragma once

#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace tpp {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

template <class... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace tpp

// Always on (never compiled out): preconditions at op entry and input validation.
#define TPP_CHECK(cond, ...)                                         \
  do {                                                               \
    if (!(cond)) [[unlikely]] ::tpp::fail(__VA_ARGS__);              \
  } while (0)

#ifndef NDEBUG
#define TPP_DCHECK(cond)                                                                   \
  do {                                                                                     \
    if (!(cond)) [[unlikely]]                                                              \
      ::tpp::fail("internal check failed: {} ({}:{})", #cond, __FILE__, __LINE__);         \
  } while (0)
#else
#define TPP_DCHECK(cond) \
  do {                   \
  } while (0)
#endif
