// The Jinja engine's runtime values (internal to jinja*.cpp): Python's view
// of JSON data plus Jinja's Undefined, namespaces and callables.
//
// Lists, dicts and strings are shared and immutable once built (the sandbox
// HF uses forbids list.append and friends); a namespace is the one mutable
// object, changed only by {% set ns.attr = ... %}. Dicts keep insertion order
// and have string keys, as JSON objects do. Strings are UTF-8; length,
// indexing and slicing count code points, as Python does.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

namespace tpp::jinja {

class Value;
class Interp;

// Values nest at most this deep (JSON input, literals, dict(), namespace()):
// printing, comparing and freeing values recurse, and so stay within the stack.
inline constexpr int kMaxValueDepth = 256;

// A Python list, or a tuple (from a tuple literal or dict.items()): the same
// everywhere except that a tuple prints as (a, b) and never equals a list.
struct List : std::vector<Value> {
  using std::vector<Value>::vector;
  bool tuple = false;
  // Set when the list is wrapped in a Value (it is immutable from then on).
  int depth = 1;               // 1 + the deepest element's depth
  bool has_namespace = false;  // a namespace is inside
};

// An evaluation error without a location; the evaluator adds origin, line and
// column where it catches it.
class EvalError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Insertion-ordered string-keyed mapping (Python dict of a JSON object).
class Dict {
 public:
  // Set when the dict is wrapped in a Value, as for List.
  int depth = 1;
  bool has_namespace = false;

  const Value* find(std::string_view key) const;
  Value* find(std::string_view key);
  void set(std::string_view key, Value value);  // replaces in place or appends
  const std::vector<std::pair<std::string, Value>>& items() const { return items_; }
  size_t size() const { return items_.size(); }

 private:
  std::vector<std::pair<std::string, Value>> items_;
};

// Arguments of a call: positional, then keyword (in source order).
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
};

class Callable {
 public:
  virtual ~Callable() = default;
  virtual Value call(Interp& interp, CallArgs& args) const = 0;
  virtual std::string name() const = 0;
};

struct Undefined {
  std::string hint;  // the error for using it, e.g. "'foo' is undefined"
};
struct Namespace {
  std::shared_ptr<Dict> attrs;
};
using StrPtr = std::shared_ptr<const std::string>;
using ListPtr = std::shared_ptr<const List>;
using DictPtr = std::shared_ptr<const Dict>;
using CallablePtr = std::shared_ptr<const Callable>;

class Value {
 public:
  // The order matches the variant's alternatives.
  enum class Kind : uint8_t { undefined, none, boolean, integer, real, string, list, dict, ns, callable };

  Value() : v_(Undefined{}) {}
  static Value undefined(std::string hint) { return Value(Undefined{std::move(hint)}); }
  static Value none() { return Value(nullptr); }
  explicit Value(bool b) : v_(b) {}
  explicit Value(int64_t i) : v_(i) {}
  explicit Value(int i) : v_(int64_t(i)) {}
  explicit Value(double d) : v_(d) {}
  explicit Value(std::string s) : v_(std::make_shared<const std::string>(std::move(s))) {}
  explicit Value(std::string_view s) : Value(std::string(s)) {}
  explicit Value(const char* s) : Value(std::string(s)) {}
  // Throw EvalError when nested deeper than kMaxValueDepth.
  explicit Value(List l);
  explicit Value(Dict d);
  explicit Value(CallablePtr f) : v_(std::move(f)) {}
  // Throws EvalError if an attribute is or holds a namespace: namespaces are
  // the one mutable value, and this keeps them acyclic and shallow.
  static Value make_namespace(Dict attrs);

  Kind kind() const { return Kind(v_.index()); }
  bool is_undefined() const { return kind() == Kind::undefined; }
  bool is_none() const { return kind() == Kind::none; }
  bool is_bool() const { return kind() == Kind::boolean; }
  bool is_int() const { return kind() == Kind::integer; }
  bool is_real() const { return kind() == Kind::real; }
  // Python's numbers: bool is an int.
  bool is_number() const { return is_bool() || is_int() || is_real(); }
  bool is_string() const { return kind() == Kind::string; }
  bool is_list() const { return kind() == Kind::list; }
  bool is_dict() const { return kind() == Kind::dict; }
  bool is_namespace() const { return kind() == Kind::ns; }
  bool is_callable() const { return kind() == Kind::callable; }

  const std::string& undefined_hint() const { return std::get<Undefined>(v_).hint; }
  bool as_bool() const { return std::get<bool>(v_); }
  int64_t as_int() const { return std::get<int64_t>(v_); }
  double as_real() const { return std::get<double>(v_); }
  const std::string& str() const { return *std::get<StrPtr>(v_); }
  const List& list() const { return *std::get<ListPtr>(v_); }
  const Dict& dict() const { return *std::get<DictPtr>(v_); }
  Dict& ns() const { return *std::get<Namespace>(v_).attrs; }
  const Callable& callable() const { return *std::get<CallablePtr>(v_); }
  // An int (or bool, as Python's int) or float as double; precondition is_number().
  double number() const;

 private:
  using Variant = std::variant<Undefined, std::nullptr_t, bool, int64_t, double, StrPtr, ListPtr, DictPtr,
                               Namespace, CallablePtr>;
  explicit Value(Undefined u) : v_(std::move(u)) {}
  explicit Value(std::nullptr_t) : v_(nullptr) {}
  explicit Value(Namespace n) : v_(std::move(n)) {}
  Variant v_;
};

// Nesting depth (0 for scalars) and whether a namespace is or is inside `v`.
int value_depth(const Value& v);
bool holds_namespace(const Value& v);

// Python's type name of a value, for error messages ("str", "int", "dict", ...).
std::string type_name(const Value& v);
// Python truthiness; Undefined is false.
bool truthy(const Value& v);
// Python str() (what {{ }} prints); Undefined is "".
std::string to_str(const Value& v);
// Python repr(), as str() shows list and dict elements.
std::string repr(const Value& v);
// Python float repr: shortest round-trip digits, "1.0", "1e+16", "inf", "nan".
std::string format_float(double d);
// Python ==, deep on lists and dicts; 1 == 1.0 == True.
bool equals(const Value& a, const Value& b);
// Python <, for numbers, strings and lists; anything else is an EvalError.
bool less(const Value& a, const Value& b);
// Throws EvalError(undefined_hint) if v is Undefined.
void require_defined(const Value& v);
// The longest text to_str / repr / to_json build on this thread (a render
// sets its max_output_bytes for its duration, and restores the old value).
class TextLimit {
 public:
  explicit TextLimit(size_t bytes);
  ~TextLimit();
  TextLimit(const TextLimit&) = delete;
  TextLimit& operator=(const TextLimit&) = delete;

 private:
  size_t saved_;
};

// Python list(v), what a for loop visits: list elements, dict keys, string
// characters; Undefined is empty.
List to_list(const Value& v);

struct JsonStyle {
  int indent = -1;  // < 0: one line with ", " and ": "; else newlines and this many spaces
  std::string indent_text;     // a string indent (Python allows indent="\t"); used when non-empty
  std::string item_separator;  // empty: by indent (", " or ",")
  std::string key_separator;   // empty: ": "
  bool sort_keys = false;
  bool ensure_ascii = false;
};
// json.dumps(v, ...) as HF's tojson filter calls it. Undefined, namespaces and
// callables are EvalErrors ("Object of type ... is not JSON serializable").
std::string to_json(const Value& v, const JsonStyle& style);

Value from_json(const nlohmann::ordered_json& j);
Value from_json(const nlohmann::json& j);

// UTF-8 as code points (Python str indexing), decoded by core/utf8.h. Each
// byte of an ill-formed sequence decodes as one code point U+DC80..U+DCFF
// (Python's surrogateescape) and encodes back to the byte.
std::u32string decode_utf8(std::string_view s);
std::string encode_utf8(std::u32string_view s);
size_t utf8_length(std::string_view s);
// Python str.isspace() for one code point.
bool is_py_space(char32_t c);

}  // namespace tpp::jinja
