// Jinja values: Python's str/repr/==/< and json.dumps over them, JSON import,
// and Python's view of a UTF-8 string as code points (on core/utf8.h).
#include "tpp/jinja/value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>

#include <fmt/format.h>

#include "tpp/core/utf8.h"

namespace tpp::jinja {

const Value* Dict::find(std::string_view key) const {
  for (const auto& [k, v] : items_)
    if (k == key) return &v;
  return nullptr;
}

Value* Dict::find(std::string_view key) {
  for (auto& [k, v] : items_)
    if (k == key) return &v;
  return nullptr;
}

void Dict::set(std::string_view key, Value value) {
  if (Value* v = find(key)) {
    *v = std::move(value);
    return;
  }
  items_.emplace_back(std::string(key), std::move(value));
}

namespace {

template <class Items>
void measure(const Items& items, int* depth, bool* has_namespace) {
  int deepest = 0;
  for (const Value& v : items) {
    deepest = std::max(deepest, value_depth(v));
    *has_namespace = *has_namespace || holds_namespace(v);
  }
  if (deepest + 1 > kMaxValueDepth) throw EvalError(fmt::format("value nested deeper than {} levels", kMaxValueDepth));
  *depth = deepest + 1;
}

struct DictValues {  // a Dict's values as a range of Value
  const Dict& d;
  struct It {
    std::vector<std::pair<std::string, Value>>::const_iterator i;
    const Value& operator*() const { return i->second; }
    It& operator++() {
      ++i;
      return *this;
    }
    bool operator!=(const It& o) const { return i != o.i; }
  };
  It begin() const { return {d.items().begin()}; }
  It end() const { return {d.items().end()}; }
};

void check_namespace_attrs(const Dict& attrs) {
  for (const auto& [k, v] : attrs.items())
    if (holds_namespace(v))
      throw EvalError(fmt::format("namespace attribute '{}' cannot hold a namespace in this Jinja subset", k));
}

}  // namespace

Value::Value(List l) {
  measure(l, &l.depth, &l.has_namespace);
  v_ = std::make_shared<const List>(std::move(l));
}

Value::Value(Dict d) {
  measure(DictValues{d}, &d.depth, &d.has_namespace);
  v_ = std::make_shared<const Dict>(std::move(d));
}

Value Value::make_namespace(Dict attrs) {
  check_namespace_attrs(attrs);
  measure(DictValues{attrs}, &attrs.depth, &attrs.has_namespace);
  return Value(Namespace{std::make_shared<Dict>(std::move(attrs))});
}

int value_depth(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::list: return v.list().depth;
    case Value::Kind::dict: return v.dict().depth;
    case Value::Kind::ns: {  // mutable: measured now (its attributes hold no namespace)
      int deepest = 0;
      for (const auto& [k, x] : v.ns().items()) deepest = std::max(deepest, value_depth(x));
      return deepest + 1;
    }
    default: return 0;
  }
}

bool holds_namespace(const Value& v) {
  return v.is_namespace() || (v.is_list() && v.list().has_namespace) || (v.is_dict() && v.dict().has_namespace);
}

double Value::number() const {
  switch (kind()) {
    case Kind::boolean: return as_bool() ? 1.0 : 0.0;
    case Kind::integer: return double(as_int());
    default: return as_real();
  }
}

std::string type_name(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::undefined: return "Undefined";
    case Value::Kind::none: return "NoneType";
    case Value::Kind::boolean: return "bool";
    case Value::Kind::integer: return "int";
    case Value::Kind::real: return "float";
    case Value::Kind::string: return "str";
    case Value::Kind::list: return "list";
    case Value::Kind::dict: return "dict";
    case Value::Kind::ns: return "Namespace";
    case Value::Kind::callable: return "function";
  }
  return "?";
}

bool truthy(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::undefined:
    case Value::Kind::none: return false;
    case Value::Kind::boolean: return v.as_bool();
    case Value::Kind::integer: return v.as_int() != 0;
    case Value::Kind::real: return v.as_real() != 0.0;
    case Value::Kind::string: return !v.str().empty();
    case Value::Kind::list: return !v.list().empty();
    case Value::Kind::dict: return v.dict().size() != 0;
    case Value::Kind::ns:
    case Value::Kind::callable: return true;
  }
  return false;
}

std::string format_float(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d < 0 ? "-inf" : "inf";
  // Shortest round-trip digits in scientific form, then Python's repr layout:
  // fixed notation for decimal exponents in [-4, 16), else d.ddde+XX.
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  const size_t e = sci.find('e');
  std::string mantissa = sci.substr(0, e);
  const int exp = std::stoi(sci.substr(e + 1));
  const bool negative = mantissa[0] == '-';
  if (negative) mantissa.erase(0, 1);
  std::string digits;
  for (char c : mantissa)
    if (c != '.') digits += c;
  std::string out = negative ? "-" : "";
  if (exp >= -4 && exp < 16) {
    if (exp < 0) {
      out += "0." + std::string(size_t(-exp - 1), '0') + digits;
    } else if (size_t(exp) + 1 >= digits.size()) {
      out += digits + std::string(size_t(exp) + 1 - digits.size(), '0') + ".0";
    } else {
      out += digits.substr(0, size_t(exp) + 1) + "." + digits.substr(size_t(exp) + 1);
    }
    return out;
  }
  out += digits.substr(0, 1);
  if (digits.size() > 1) out += "." + digits.substr(1);
  out += fmt::format("e{}{:02d}", exp < 0 ? '-' : '+', std::abs(exp));
  return out;
}

namespace {

std::string repr_string(const std::string& s) {
  // Python picks single quotes unless the text has ' and no ".
  const bool has_single = s.find('\'') != std::string::npos;
  const bool has_double = s.find('"') != std::string::npos;
  const char quote = has_single && !has_double ? '"' : '\'';
  std::string out(1, quote);
  for (char32_t c : decode_utf8(s)) {
    if (c == char32_t(quote) || c == U'\\') {
      out += '\\';
      out += char(c);
    } else if (c == U'\n') {
      out += "\\n";
    } else if (c == U'\r') {
      out += "\\r";
    } else if (c == U'\t') {
      out += "\\t";
    } else if (c < 0x20 || (c >= 0x7f && c <= 0xa0) || (c >= 0xdc80 && c <= 0xdcff)) {
      out += fmt::format("\\x{:02x}", unsigned(c & 0xff));
    } else {
      out += encode_utf8(std::u32string_view(&c, 1));
    }
  }
  out += quote;
  return out;
}

// Limits for what a render builds outside the Interp's own checks: the text
// of one value (the render's max_output_bytes, see TextLimit) and the
// characters of a string turned into a list (as the default loop budget).
thread_local size_t max_text_bytes = size_t(256) << 20;
constexpr size_t kMaxStringItems = 10'000'000;

void check_built(const std::string& out) {
  if (out.size() > max_text_bytes)
    throw EvalError(fmt::format("a value's text exceeds the limit of {} bytes", max_text_bytes));
}

}  // namespace

TextLimit::TextLimit(size_t bytes) : saved_(max_text_bytes) { max_text_bytes = bytes; }
TextLimit::~TextLimit() { max_text_bytes = saved_; }

List to_list(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::undefined: return {};
    case Value::Kind::list: {
      List items = v.list();
      items.tuple = false;
      return items;
    }
    case Value::Kind::dict: {
      List keys;
      for (const auto& [k, x] : v.dict().items()) keys.emplace_back(k);
      return keys;
    }
    case Value::Kind::string: {
      const std::u32string cps = decode_utf8(v.str());
      if (cps.size() > kMaxStringItems)
        throw EvalError(fmt::format("a string of {} characters is too long to iterate (limit {})", cps.size(),
                                    kMaxStringItems));
      List chars;
      for (char32_t c : cps) chars.emplace_back(encode_utf8(std::u32string_view(&c, 1)));
      return chars;
    }
    default: throw EvalError(fmt::format("'{}' object is not iterable", type_name(v)));
  }
}

std::string to_str(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::undefined: return "";
    case Value::Kind::none: return "None";
    case Value::Kind::boolean: return v.as_bool() ? "True" : "False";
    case Value::Kind::integer: return fmt::format("{}", v.as_int());
    case Value::Kind::real: return format_float(v.as_real());
    case Value::Kind::string: return v.str();
    case Value::Kind::list: {
      const List& l = v.list();
      std::string out = l.tuple ? "(" : "[";
      for (size_t i = 0; i < l.size(); ++i) {
        out += (i ? ", " : "") + repr(l[i]);
        check_built(out);
      }
      return out + (l.tuple ? (l.size() == 1 ? ",)" : ")") : "]");
    }
    case Value::Kind::dict: {
      std::string out = "{";
      bool first = true;
      for (const auto& [k, x] : v.dict().items()) {
        out += (first ? "" : ", ") + repr_string(k) + ": " + repr(x);
        check_built(out);
        first = false;
      }
      return out + "}";
    }
    case Value::Kind::ns: {
      std::string out = "<Namespace {";
      bool first = true;
      for (const auto& [k, x] : v.ns().items()) {
        out += (first ? "" : ", ") + repr_string(k) + ": " + repr(x);
        first = false;
      }
      return out + "}>";
    }
    case Value::Kind::callable: return "<function " + v.callable().name() + ">";
  }
  return "";
}

std::string repr(const Value& v) { return v.is_string() ? repr_string(v.str()) : to_str(v); }

bool equals(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_real() || b.is_real()) return a.number() == b.number();
    const int64_t x = a.is_bool() ? int64_t(a.as_bool()) : a.as_int();
    const int64_t y = b.is_bool() ? int64_t(b.as_bool()) : b.as_int();
    return x == y;
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Value::Kind::undefined:
    case Value::Kind::none: return true;
    case Value::Kind::string: return a.str() == b.str();
    case Value::Kind::list: {
      const List &x = a.list(), &y = b.list();
      if (x.size() != y.size() || x.tuple != y.tuple) return false;
      for (size_t i = 0; i < x.size(); ++i)
        if (!equals(x[i], y[i])) return false;
      return true;
    }
    case Value::Kind::dict: {
      const Dict &x = a.dict(), &y = b.dict();
      if (x.size() != y.size()) return false;
      for (const auto& [k, v] : x.items()) {
        const Value* w = y.find(k);
        if (!w || !equals(v, *w)) return false;
      }
      return true;
    }
    case Value::Kind::ns: return &a.ns() == &b.ns();
    case Value::Kind::callable: return &a.callable() == &b.callable();
    default: return false;
  }
}

bool less(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_real() || b.is_real()) return a.number() < b.number();
    const int64_t x = a.is_bool() ? int64_t(a.as_bool()) : a.as_int();
    const int64_t y = b.is_bool() ? int64_t(b.as_bool()) : b.as_int();
    return x < y;
  }
  // UTF-8 byte order is code point order, which is how Python orders str.
  if (a.is_string() && b.is_string()) return a.str() < b.str();
  if (a.is_list() && b.is_list() && a.list().tuple == b.list().tuple) {
    const List &x = a.list(), &y = b.list();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (equals(x[i], y[i])) continue;
      return less(x[i], y[i]);
    }
    return x.size() < y.size();
  }
  require_defined(a);
  require_defined(b);
  throw EvalError(fmt::format("'<' not supported between instances of '{}' and '{}'", type_name(a), type_name(b)));
}

void require_defined(const Value& v) {
  if (v.is_undefined()) throw EvalError(v.undefined_hint());
}

namespace {

void json_string(std::string& out, const std::string& s, bool ensure_ascii) {
  out += '"';
  for (char32_t c : decode_utf8(s)) {
    switch (c) {
      case U'"': out += "\\\""; break;
      case U'\\': out += "\\\\"; break;
      case U'\n': out += "\\n"; break;
      case U'\r': out += "\\r"; break;
      case U'\t': out += "\\t"; break;
      case U'\b': out += "\\b"; break;
      case U'\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          out += fmt::format("\\u{:04x}", unsigned(c));
        } else if (ensure_ascii && c > 0x7f) {
          if (c > 0xffff) {
            const char32_t u = c - 0x10000;
            out += fmt::format("\\u{:04x}\\u{:04x}", unsigned(0xd800 + (u >> 10)), unsigned(0xdc00 + (u & 0x3ff)));
          } else {
            out += fmt::format("\\u{:04x}", unsigned(c));
          }
        } else {
          out += encode_utf8(std::u32string_view(&c, 1));
        }
    }
  }
  out += '"';
}

void json_value(std::string& out, const Value& v, const JsonStyle& st, int level) {
  const bool pretty = st.indent >= 0 || !st.indent_text.empty();
  const std::string unit = !st.indent_text.empty() ? st.indent_text : std::string(size_t(std::max(st.indent, 0)), ' ');
  const std::string item_sep = !st.item_separator.empty() ? st.item_separator : pretty ? "," : ", ";
  const std::string key_sep = !st.key_separator.empty() ? st.key_separator : ": ";
  auto newline = [&](int depth) {
    if (!pretty) return;
    out += '\n';
    for (int i = 0; i < depth; ++i) out += unit;
  };
  switch (v.kind()) {
    case Value::Kind::none: out += "null"; return;
    case Value::Kind::boolean: out += v.as_bool() ? "true" : "false"; return;
    case Value::Kind::integer: out += fmt::format("{}", v.as_int()); return;
    case Value::Kind::real: {
      const double d = v.as_real();
      out += std::isnan(d) ? "NaN" : std::isinf(d) ? (d < 0 ? "-Infinity" : "Infinity") : format_float(d);
      return;
    }
    case Value::Kind::string: json_string(out, v.str(), st.ensure_ascii); return;
    case Value::Kind::list: {
      const List& l = v.list();
      if (l.empty()) {
        out += "[]";
        return;
      }
      out += '[';
      for (size_t i = 0; i < l.size(); ++i) {
        if (i) out += item_sep;
        newline(level + 1);
        json_value(out, l[i], st, level + 1);
        check_built(out);
      }
      newline(level);
      out += ']';
      return;
    }
    case Value::Kind::dict: {
      auto items = v.dict().items();
      if (items.empty()) {
        out += "{}";
        return;
      }
      if (st.sort_keys)
        std::stable_sort(items.begin(), items.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
      out += '{';
      for (size_t i = 0; i < items.size(); ++i) {
        if (i) out += item_sep;
        newline(level + 1);
        json_string(out, items[i].first, st.ensure_ascii);
        out += key_sep;
        json_value(out, items[i].second, st, level + 1);
        check_built(out);
      }
      newline(level);
      out += '}';
      return;
    }
    default:
      throw EvalError(fmt::format("Object of type {} is not JSON serializable", type_name(v)));
  }
}

template <class Json>
Value from_json_impl(const Json& j, int depth = 0) {
  if (depth >= kMaxValueDepth) throw EvalError(fmt::format("value nested deeper than {} levels", kMaxValueDepth));
  switch (j.type()) {
    case nlohmann::json::value_t::null: return Value::none();
    case nlohmann::json::value_t::boolean: return Value(j.template get<bool>());
    case nlohmann::json::value_t::number_integer: return Value(j.template get<int64_t>());
    case nlohmann::json::value_t::number_unsigned: {
      const uint64_t u = j.template get<uint64_t>();
      return u <= uint64_t(INT64_MAX) ? Value(int64_t(u)) : Value(double(u));
    }
    case nlohmann::json::value_t::number_float: return Value(j.template get<double>());
    case nlohmann::json::value_t::string: return Value(j.template get<std::string>());
    case nlohmann::json::value_t::array: {
      List l;
      l.reserve(j.size());
      for (const auto& x : j) l.push_back(from_json_impl(x, depth + 1));
      return Value(std::move(l));
    }
    case nlohmann::json::value_t::object: {
      Dict d;
      for (auto it = j.begin(); it != j.end(); ++it) d.set(it.key(), from_json_impl(it.value(), depth + 1));
      return Value(std::move(d));
    }
    default: throw EvalError("unsupported JSON value (binary or discarded)");
  }
}

}  // namespace

std::string to_json(const Value& v, const JsonStyle& style) {
  std::string out;
  json_value(out, v, style, 0);
  return out;
}

Value from_json(const nlohmann::ordered_json& j) { return from_json_impl(j); }
Value from_json(const nlohmann::json& j) { return from_json_impl(j); }

std::u32string decode_utf8(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const utf8::Decoded d = utf8::decode(s, i);
    if (d.ok()) {
      out += d.cp;
      i += d.len;
    } else {
      out += char32_t(0xdc00 + uint8_t(s[i]));  // surrogateescape: the lone byte
      i += 1;
    }
  }
  return out;
}

std::string encode_utf8(std::u32string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s) {
    if (c >= 0xdc80 && c <= 0xdcff)
      out += char(c - 0xdc00);
    else
      utf8::append(out, c);
  }
  return out;
}

size_t utf8_length(std::string_view s) { return decode_utf8(s).size(); }

bool is_py_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f || c == 0x3000;
}

}  // namespace tpp::jinja
