// Constrained decoding for JSON output: a byte-level pushdown automaton for
// JSON text that also follows a schema (OpenAI's response_format), so a
// reply decoded through it always parses and validates.
//
// The schema subset real clients send is compiled; anything else is refused
// by name (SchemaError names the keyword's path):
//   type: object | array | string | number | integer | boolean | null
//   object: properties, required, additionalProperties (false, or absent:
//           the reply holds only the listed properties, each at most once)
//   array: items, minItems, maxItems
//   enum, const (any JSON values); title, description, default, $schema,
//   examples and strict are accepted and change nothing
// A schema of {} (or json_object mode) is any JSON value; the reply's top
// level must be an object.
//
// Property keys are written without escapes (a schema's names must be
// printable ASCII without '"' or '\'). At most 64 properties per object and
// 64 enum values. Whitespace between tokens is allowed, at most 8 bytes in a
// row (a model cannot loop on spaces forever).
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace tpp::serve {

struct SchemaError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class JsonGrammar {
 public:
  struct Frame {
    int32_t node = 0;    // schema node
    uint8_t kind = 0;    // Frame kind (json_grammar.cpp)
    uint8_t phase = 0;
    uint16_t pos = 0;    // bytes matched (literals, keys)
    int32_t count = 0;   // array: items so far; object: the property whose value comes
    uint64_t mask = 0;   // literals: candidates; object: properties seen
    uint64_t cand = 0;   // object: keys that match what was typed of a key
  };
  struct State {
    std::vector<Frame> stack;
    uint8_t ws = 0;      // whitespace bytes in a row
    uint8_t utf8 = 0;    // continuation bytes still expected in a string
    bool done = false;   // the top-level value is complete
  };

  // Any JSON object (response_format json_object).
  static std::shared_ptr<const JsonGrammar> any_object();
  // A schema; throws SchemaError naming what is not supported.
  static std::shared_ptr<const JsonGrammar> from_schema(const nlohmann::json& schema);

  State initial() const;
  // Feeds bytes; false (state then unspecified) when they cannot continue a
  // valid reply.
  bool feed(State& s, std::string_view bytes) const;
  // Whether these bytes may come next (the state is left unchanged).
  bool accepts(const State& s, std::string_view bytes) const;

  struct Node;

 private:
  JsonGrammar() = default;
  int compile(const nlohmann::json& schema, const std::string& path, bool root);
  bool step(State& s, unsigned char c) const;
  bool start_value(State& s, int node, unsigned char c) const;
  void value_done(State& s) const;

  std::vector<Node> nodes_;
};

}  // namespace tpp::serve
