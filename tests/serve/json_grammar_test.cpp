// The JSON grammar of constrained decoding: what it accepts byte by byte,
// what it refuses, and which schemas it refuses by name.
#include "tpp/serve/json_grammar.h"

#include <gtest/gtest.h>

namespace tpp::serve {
namespace {

using nlohmann::json;

// Whether text is a complete reply of the grammar.
bool complete(const JsonGrammar& g, const std::string& text) {
  auto s = g.initial();
  return g.feed(s, text) && s.done;
}
// Whether text can begin a reply (fed whole, not necessarily complete).
bool prefix(const JsonGrammar& g, const std::string& text) {
  auto s = g.initial();
  return g.feed(s, text);
}

TEST(JsonGrammarTest, AnyObjectAcceptsJsonObjectsOnly) {
  const auto g = JsonGrammar::any_object();
  for (const char* ok : {"{}", R"({"a": [1, -2.5e-3, 0, "x\u00e9\n", true, false, null, {}, []], "b": {"c": "\u20ac"}})",
                         " {\n  \"k\": 10E+2\n}", "{\"\xC3\xA9\": \"\xF0\x9F\x98\x80\"}"})
    EXPECT_TRUE(complete(*g, ok)) << ok;
  for (const char* bad : {"[1]", "1", "\"s\"", "{\"a\": 01}", "{\"a\" 1}", "{\"a\": tru}", "{\"a\": 1,}", "{,}",
                          "{\"a\": .5}", "{\"a\": 1.}", "{\"a\": \"\x01\"}", "{\"a\": \"\\x\"}", "{\"a\": [1 2]}",
                          "{} {}", "{\"a\": \"\xC3(\"}", "{\"a\": \"\\u12G4\"}"})
    EXPECT_FALSE(complete(*g, bad)) << bad;
  EXPECT_TRUE(prefix(*g, "{\"a\": [1, {\"b\": nu"));
  EXPECT_FALSE(prefix(*g, std::string("{") + std::string(9, ' ')));  // at most 8 spaces in a row
  EXPECT_TRUE(prefix(*g, std::string("{") + std::string(8, ' ')));
  auto s = g->initial();
  EXPECT_TRUE(g->feed(s, "{}"));
  EXPECT_FALSE(g->accepts(s, " ")) << "nothing after the object";
}

const json kSchema = json::parse(R"({
  "type": "object",
  "properties": {
    "color": {"enum": ["red", "green", "reddish"]},
    "n": {"type": "integer"},
    "x": {"type": "number"},
    "ok": {"type": "boolean"},
    "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 2},
    "inner": {"type": "object", "properties": {"v": {"type": "null"}, "w": {"const": 7}}, "required": ["w"],
              "additionalProperties": false},
    "free": {}
  },
  "required": ["color", "n"],
  "strict": true
})");

TEST(JsonGrammarTest, SchemaRepliesValidate) {
  const auto g = JsonGrammar::from_schema(kSchema);
  for (const char* ok : {R"({"color": "red", "n": -3})", R"({"n": 0, "color": "reddish", "ok": false})",
                         R"({"color":"green","n":12,"x":1.5e3,"tags":["a"],"inner":{"w":7},"free":[{"y":null}]})",
                         R"({"color": "red", "n": 1, "inner": {"v": null, "w": 7}, "tags": ["a", "b"]})"})
    EXPECT_TRUE(complete(*g, ok)) << ok;
  for (const char* bad : {R"({"color": "red"})",                      // n is required
                          R"({"color": "blue", "n": 1})",              // not in the enum
                          R"({"color": "red", "n": 1.5})",             // not an integer
                          R"({"color": "red", "n": 1, "other": 1})",   // no such property
                          R"({"color": "red", "n": 1, "n": 2})",       // twice
                          R"({"color": "red", "n": 1, "ok": 1})",      // not a boolean
                          R"({"color": "red", "n": 1, "tags": []})",   // minItems 1
                          R"({"color": "red", "n": 1, "tags": ["a", "b", "c"]})",  // maxItems 2
                          R"({"color": "red", "n": 1, "inner": {"v": null}})",     // w is required
                          R"({"color": "red", "n": 1, "inner": {"w": 8}})",        // const 7
                          R"({"color": "red", "n": 1, "x": "1"})",
                          R"({"col or": "red", "n": 1})", "{\"color\n\": \"red\", \"n\": 1}"})
    EXPECT_FALSE(complete(*g, bad)) << bad;
}

TEST(JsonGrammarTest, UnsupportedSchemasAreRefusedByName) {
  auto error = [](const json& schema) {
    try {
      JsonGrammar::from_schema(schema);
    } catch (const SchemaError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(error(json::parse(R"({"type": "object", "properties": {"a": {"type": "string", "pattern": "x"}}})"))
                .find("schema.properties.a.pattern is not supported"),
            std::string::npos);
  EXPECT_NE(error(json::parse(R"({"anyOf": []})")).find("schema.anyOf is not supported"), std::string::npos);
  EXPECT_NE(error(json::parse(R"({"type": "array"})")).find("top level must be an object"), std::string::npos);
  EXPECT_NE(error(json::parse(R"({"type": "object", "additionalProperties": true})")).find("additionalProperties"),
            std::string::npos);
  EXPECT_NE(error(json::parse(R"({"type": ["object", "null"]})")).find("type lists"), std::string::npos);
  EXPECT_NE(error(json::parse(R"({"type": "object", "properties": {"a": {}}, "required": ["b"]})"))
                .find("\"b\", which is not in its properties"),
            std::string::npos);
  EXPECT_EQ(error(kSchema), "");
}

}  // namespace
}  // namespace tpp::serve
