// A Jinja subset for chat templates: lexer -> parser -> AST -> tree-walking
// evaluator over a JSON-like value type (value.h).
//
// It follows Python Jinja2 3.1 as Hugging Face transformers configures it for
// chat templates: an ImmutableSandboxedEnvironment with trim_blocks=True,
// lstrip_blocks=True and the loopcontrols extension (break / continue), a
// tojson that keeps key order and non-ASCII text (json.dumps with
// ensure_ascii=False), and the globals raise_exception and strftime_now.
// Undefined variables behave like Jinja's default Undefined: falsy, render as
// "", iterate as empty, `is defined` is false; any other use (attribute, call,
// arithmetic) is an error naming what was undefined.
//
// Supported: text with {{- -}} {%- -%} {%+ +%} whitespace control, comments,
// {% raw %}, if/elif/else, for (tuple targets, loop filter `if`, else, the
// loop variable), break/continue, set (names, tuples, namespace attributes,
// block set), macro (positional / keyword arguments with defaults),
// generation (rendered as its body); expressions: literals, lists, dicts,
// tuples, attribute / subscript / slice, calls, filters, tests, arithmetic,
// ~, comparisons (chained), in / not in, and / or / not, conditional
// expressions. The filters, tests and methods are listed in builtins.cpp.
// Not supported (a clean error at parse time): include / extends / block /
// import, call blocks, filter blocks, with, recursive loops, *args / **kwargs,
// filters and tests beyond those listed. Differences from Python, by design or
// simplification: integers are 64-bit (overflow is an error); range() returns
// a list; upper / lower / title / capitalize map ASCII letters only; "%"
// string formatting is an error; dict keys are strings; a namespace may not
// hold a namespace; values nest at most kMaxValueDepth levels.
//
// Errors (syntax, unknown filter or test, runtime type errors, undefined use,
// raise_exception) throw tpp::Error "<origin>:<line>:<column>: <message>".
// A Template is immutable once parsed: renders may run concurrently.
#pragma once

#include <cstddef>
#include <cstdint>
#include <ctime>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "tpp/core/error.h"

namespace tpp::jinja {

// Thrown by the template's raise_exception(message): what() is
// "<origin>:<line>:<column>: <message>", message() is the template's text.
class RaisedError : public Error {
 public:
  RaisedError(const std::string& located, std::string message)
      : Error(located), message_(std::move(message)) {}
  const std::string& message() const { return message_; }

 private:
  std::string message_;
};

struct RenderOptions {
  // strftime_now's clock: the current local time, broken down. Tests inject a
  // fixed time; by default localtime_r(time(nullptr)).
  std::function<std::tm()> now;
  // Guards against runaway templates; exceeding one is a tpp::Error.
  int max_call_depth = 200;                  // nested macro calls
  size_t max_stack_bytes = 1u << 20;         // C++ stack a render may use (deep nesting, recursion)
  int64_t max_loop_iterations = 10'000'000;  // all loops of one render together
  size_t max_output_bytes = 256u << 20;      // rendered text and any one string built
};

class Template {
 public:
  // Parses `source`; `origin` names it in errors. Throws tpp::Error on a syntax
  // error, an unknown tag, filter or test.
  Template(std::string_view source, std::string origin);
  // Renders with `context`'s keys as variables (it must be an object).
  std::string render(const nlohmann::ordered_json& context, const RenderOptions& options = {}) const;
  const std::string& origin() const;

  Template(Template&&) noexcept;
  Template& operator=(Template&&) noexcept;
  ~Template();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace tpp::jinja
