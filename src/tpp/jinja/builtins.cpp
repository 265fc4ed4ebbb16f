// Jinja's builtin filters, tests, global functions, and the Python str / dict
// / list methods that the sandbox HF renders chat templates in allows. Each
// follows its Jinja2 3.1 or Python 3 namesake; case mapping covers ASCII
// letters only (upper, lower, title, capitalize).
//
// Filters: abs attr capitalize count d default first float int items join last
//   length list lower map reject rejectattr replace reverse safe select
//   selectattr sort string title tojson trim unique upper indent
// Tests: defined undefined none boolean true false integer float number string
//   mapping iterable sequence callable sameas eq equalto == ne != lt < le <= gt
//   > ge >= in lower upper even odd divisibleby escaped filter test
// str: strip lstrip rstrip split rsplit splitlines startswith endswith upper
//   lower title capitalize replace find rfind count join isdigit isalpha
//   isalnum isspace isupper islower
// dict: items keys values get; list: index count
// Globals: range namespace dict raise_exception strftime_now
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <unordered_map>

#include <fmt/format.h>

#include "tpp/jinja/ast.h"

namespace tpp::jinja {
namespace {

bool given(const Value& v) { return !v.is_undefined(); }

// (key, value), as dict.items() yields.
List pair(const std::string& key, const Value& value) {
  List t{Value(key), value};
  t.tuple = true;
  return t;
}

// Binds a call's arguments to named parameters, Python-style.
std::vector<Value> bind(const CallArgs& a, std::string_view fn, std::initializer_list<std::string_view> params) {
  if (a.positional.size() > params.size())
    throw EvalError(
        fmt::format("{}() takes at most {} argument(s) ({} given)", fn, params.size(), a.positional.size()));
  std::vector<Value> out(params.size());
  for (size_t i = 0; i < a.positional.size(); ++i) out[i] = a.positional[i];
  for (const auto& [k, v] : a.keyword) {
    const auto it = std::find(params.begin(), params.end(), k);
    if (it == params.end()) throw EvalError(fmt::format("{}() got an unexpected keyword argument '{}'", fn, k));
    const size_t i = size_t(it - params.begin());
    if (i < a.positional.size()) throw EvalError(fmt::format("{}() got multiple values for argument '{}'", fn, k));
    out[i] = v;
  }
  return out;
}

const std::string& need_str(const Value& v, std::string_view what) {
  require_defined(v);
  if (!v.is_string()) throw EvalError(fmt::format("{} must be a string, not {}", what, type_name(v)));
  return v.str();
}

int64_t need_int(const Value& v, std::string_view what) {
  require_defined(v);
  if (v.is_bool()) return v.as_bool();
  if (!v.is_int()) throw EvalError(fmt::format("{} must be an integer, not {}", what, type_name(v)));
  return v.as_int();
}

std::string ascii_map(std::string s, int (*f)(int)) {
  for (char& c : s)
    if (uint8_t(c) < 0x80) c = char(f(uint8_t(c)));
  return s;
}
std::string lower(const std::string& s) { return ascii_map(s, [](int c) { return std::tolower(c); }); }
std::string upper(const std::string& s) { return ascii_map(s, [](int c) { return std::toupper(c); }); }
bool ascii_alpha(char32_t c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
char32_t up(char32_t c) { return c >= 'a' && c <= 'z' ? c - 32 : c; }
char32_t down(char32_t c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

// Python str.title(): a letter after a non-letter is upper case, others lower.
std::string py_title(const std::string& s) {
  std::u32string cps = decode_utf8(s);
  bool prev_cased = false;
  for (char32_t& c : cps) {
    c = prev_cased ? down(c) : up(c);
    prev_cased = ascii_alpha(c);
  }
  return encode_utf8(cps);
}

// Jinja's title filter: words start after runs of '-', whitespace, ( { [ <.
std::string jinja_title(const std::string& s) {
  std::u32string cps = decode_utf8(s);
  bool start = true;
  for (char32_t& c : cps) {
    const bool delim = c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || is_py_space(c);
    c = start ? up(c) : down(c);
    start = delim;
  }
  return encode_utf8(cps);
}

std::string capitalize(const std::string& s) {
  std::u32string cps = decode_utf8(s);
  for (size_t i = 0; i < cps.size(); ++i) cps[i] = i == 0 ? up(cps[i]) : down(cps[i]);
  return encode_utf8(cps);
}

// str.strip / lstrip / rstrip: `chars` none means whitespace.
std::string strip(const std::string& s, const Value& chars, bool left, bool right) {
  const std::u32string cps = decode_utf8(s);
  std::u32string set;
  const bool ws = !given(chars) || chars.is_none();
  if (!ws) set = decode_utf8(need_str(chars, "strip() argument"));
  auto drop = [&](char32_t c) { return ws ? is_py_space(c) : set.find(c) != std::u32string::npos; };
  size_t b = 0, e = cps.size();
  if (left)
    while (b < e && drop(cps[b])) ++b;
  if (right)
    while (e > b && drop(cps[e - 1])) --e;
  return encode_utf8(std::u32string_view(cps).substr(b, e - b));
}

List split(const std::string& s, const Value& sep_v, int64_t maxsplit, bool from_right) {
  List out;
  if (!given(sep_v) || sep_v.is_none()) {  // runs of whitespace, no empty strings
    const std::u32string cps = decode_utf8(s);
    std::vector<std::pair<size_t, size_t>> words;
    for (size_t i = 0; i < cps.size();) {
      while (i < cps.size() && is_py_space(cps[i])) ++i;
      if (i == cps.size()) break;
      size_t j = i;
      while (j < cps.size() && !is_py_space(cps[j])) ++j;
      words.emplace_back(i, j);
      i = j;
    }
    if (maxsplit >= 0 && !words.empty() && uint64_t(maxsplit) < uint64_t(words.size()) - 1) {
      // Python keeps the unsplit remainder as written (its inner and outer spaces).
      const size_t n = size_t(maxsplit);
      if (from_right) {
        const size_t k = words.size() - n;
        words[k - 1] = {0, words[k - 1].second};
        words.erase(words.begin(), words.begin() + std::ptrdiff_t(k - 1));
      } else {
        words[n].second = cps.size();
        words.resize(n + 1);
      }
    }
    for (auto [b, e] : words) out.emplace_back(encode_utf8(std::u32string_view(cps).substr(b, e - b)));
    return out;
  }
  const std::string& sep = need_str(sep_v, "split() separator");
  if (sep.empty()) throw EvalError("empty separator");
  std::vector<std::string> parts;
  size_t pos = 0;
  for (size_t i; (i = s.find(sep, pos)) != std::string::npos;) {
    parts.push_back(s.substr(pos, i - pos));
    pos = i + sep.size();
  }
  parts.push_back(s.substr(pos));
  if (maxsplit >= 0 && uint64_t(maxsplit) < uint64_t(parts.size()) - 1) {
    std::vector<std::string> joined;
    const size_t n = size_t(maxsplit);
    auto join = [&](size_t b, size_t e) {
      std::string r;
      for (size_t i = b; i < e; ++i) r += (i > b ? sep : "") + parts[i];
      return r;
    };
    if (from_right) {
      joined.push_back(join(0, parts.size() - n));
      for (size_t i = parts.size() - n; i < parts.size(); ++i) joined.push_back(parts[i]);
    } else {
      for (size_t i = 0; i < n; ++i) joined.push_back(parts[i]);
      joined.push_back(join(n, parts.size()));
    }
    parts = std::move(joined);
  }
  for (auto& p : parts) out.emplace_back(std::move(p));
  return out;
}

// str.splitlines() line boundaries.
std::vector<std::string> splitlines(const std::string& s, bool keepends) {
  const std::u32string cps = decode_utf8(s);
  std::vector<std::string> out;
  size_t b = 0;
  for (size_t i = 0; i < cps.size(); ++i) {
    const char32_t c = cps[i];
    const bool brk = c == '\n' || c == '\r' || c == 0x0b || c == 0x0c || c == 0x1c || c == 0x1d || c == 0x1e ||
                     c == 0x85 || c == 0x2028 || c == 0x2029;
    if (!brk) continue;
    size_t e = i + 1;
    if (c == '\r' && e < cps.size() && cps[e] == '\n') ++e;
    out.push_back(encode_utf8(std::u32string_view(cps).substr(b, (keepends ? e : i) - b)));
    i = e - 1;
    b = e;
  }
  if (b < cps.size()) out.push_back(encode_utf8(std::u32string_view(cps).substr(b)));
  return out;
}

std::string replace(const std::string& s, const std::string& from, const std::string& to, int64_t count) {
  std::string out;
  if (from.empty()) {  // Python inserts `to` around every character
    const std::u32string cps = decode_utf8(s);
    int64_t n = 0;
    for (char32_t c : cps) {
      if (count < 0 || n++ < count) out += to;
      out += encode_utf8(std::u32string_view(&c, 1));
    }
    if (count < 0 || n < count) out += to;
    return out;
  }
  size_t pos = 0;
  for (int64_t n = 0; count < 0 || n < count; ++n) {
    const size_t i = s.find(from, pos);
    if (i == std::string::npos) break;
    out += s.substr(pos, i - pos) + to;
    pos = i + from.size();
  }
  return out + s.substr(pos);
}

int64_t length(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::undefined: return 0;
    case Value::Kind::string: return int64_t(utf8_length(v.str()));
    case Value::Kind::list: return int64_t(v.list().size());
    case Value::Kind::dict: return int64_t(v.dict().size());
    default: throw EvalError(fmt::format("object of type '{}' has no len()", type_name(v)));
  }
}

// An item's attribute for selectattr / map / join / sort: "a.b" or "0" paths,
// looked up like obj[key] (Jinja's make_attrgetter).
Value attr_path(const Value& item, const std::string& path) {
  Value v = item;
  size_t pos = 0;
  while (true) {
    const size_t dot = path.find('.', pos);
    const std::string part = path.substr(pos, dot == std::string::npos ? std::string::npos : dot - pos);
    const bool digits =
        !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return std::isdigit(uint8_t(c)); });
    v = get_item(v, digits ? Value(int64_t(std::strtoll(part.c_str(), nullptr, 10))) : Value(part));
    if (dot == std::string::npos) return v;
    pos = dot + 1;
  }
}

std::string py_int_text(std::string s) {
  s.erase(std::remove(s.begin(), s.end(), '_'), s.end());
  return s;
}

Value filter_int(const Value& v, const Value& dflt, const Value& base_v) {
  const Value fallback = given(dflt) ? dflt : Value(int64_t(0));
  const int base = given(base_v) ? int(need_int(base_v, "int() base")) : 10;
  if (v.is_bool()) return Value(int64_t(v.as_bool()));
  if (v.is_int()) return v;
  if (v.is_real()) return std::isfinite(v.as_real()) ? Value(int64_t(std::trunc(v.as_real()))) : fallback;
  if (!v.is_string()) return fallback;
  const std::string t = py_int_text(strip(v.str(), Value(), true, true));
  if (!t.empty()) {
    char* end = nullptr;
    errno = 0;
    const long long i = std::strtoll(t.c_str(), &end, base);
    if (end && *end == '\0' && errno == 0) return Value(int64_t(i));
    const double d = std::strtod(t.c_str(), &end);
    if (end && *end == '\0' && std::isfinite(d)) return Value(int64_t(std::trunc(d)));
  }
  return fallback;
}

Value filter_float(const Value& v, const Value& dflt) {
  const Value fallback = given(dflt) ? dflt : Value(0.0);
  if (v.is_number()) return Value(v.number());
  if (!v.is_string()) return fallback;
  const std::string t = py_int_text(strip(v.str(), Value(), true, true));
  char* end = nullptr;
  const double d = std::strtod(t.c_str(), &end);
  return !t.empty() && end && *end == '\0' ? Value(d) : fallback;
}

std::string indent(const std::string& s, const Value& width, bool first, bool blank) {
  const int64_t n = given(width) && !width.is_string() ? need_int(width, "indent width") : 4;
  const std::string unit = width.is_string() ? width.str() : std::string(size_t(std::max<int64_t>(0, n)), ' ');
  std::vector<std::string> lines = splitlines(s + "\n", false);
  std::string rv;
  if (blank) {
    for (size_t i = 0; i < lines.size(); ++i) rv += (i ? "\n" + unit : "") + lines[i];
  } else {
    rv = lines.empty() ? "" : lines[0];
    for (size_t i = 1; i < lines.size(); ++i) rv += "\n" + (lines[i].empty() ? "" : unit) + lines[i];
  }
  return first ? unit + rv : rv;
}

Value filter_tojson(const Value& v, CallArgs& args) {
  const auto a = bind(args, "tojson", {"indent", "ensure_ascii", "separators", "sort_keys"});
  JsonStyle style;
  if (given(a[0]) && !a[0].is_none()) {
    if (a[0].is_string()) {
      style.indent_text = a[0].str();
      style.indent = 0;
    } else {
      style.indent = int(std::clamp<int64_t>(need_int(a[0], "tojson indent"), 0, 64));
    }
  }
  style.ensure_ascii = given(a[1]) && truthy(a[1]);
  if (given(a[2]) && !a[2].is_none()) {
    if (!a[2].is_list() || a[2].list().size() != 2) throw EvalError("tojson separators must be a pair of strings");
    style.item_separator = need_str(a[2].list()[0], "tojson item separator");
    style.key_separator = need_str(a[2].list()[1], "tojson key separator");
  }
  style.sort_keys = given(a[3]) && truthy(a[3]);
  return Value(to_json(v, style));
}

using FilterFn = Value (*)(Interp&, const Value&, CallArgs&);
using TestFn = bool (*)(Interp&, const Value&, CallArgs&);

// select / reject / selectattr / rejectattr: keep items whose test (by name,
// with the remaining arguments) or truthiness is `keep`.
Value select(Interp& in, const Value& seq, CallArgs& args, bool by_attr, bool keep) {
  std::vector<Value> rest = args.positional;
  std::string attr;
  if (by_attr) {
    if (rest.empty()) throw EvalError("selectattr / rejectattr need an attribute name");
    attr = need_str(rest[0], "attribute name");
    rest.erase(rest.begin());
  }
  std::string test;
  if (!rest.empty()) {
    test = need_str(rest[0], "test name");
    rest.erase(rest.begin());
    if (!has_test(test)) throw EvalError(fmt::format("no test named '{}'", test));
  }
  List out;
  for (const Value& item : to_list(seq)) {
    const Value v = by_attr ? attr_path(item, attr) : item;
    bool ok;
    if (test.empty()) {
      ok = truthy(v);
    } else {
      CallArgs targs{rest, args.keyword};
      ok = apply_test(in, test, v, targs);
    }
    if (ok == keep) out.push_back(item);
  }
  return Value(std::move(out));
}

const std::unordered_map<std::string_view, FilterFn>& filters() {
  static const std::unordered_map<std::string_view, FilterFn> table = {
      {"abs", [](Interp&, const Value& v, CallArgs&) {
         require_defined(v);
         if (v.is_real()) return Value(std::fabs(v.as_real()));
         const int64_t i = need_int(v, "abs() argument");
         if (i == INT64_MIN) throw EvalError("integer overflow");
         return Value(i < 0 ? -i : i);
       }},
      {"attr", [](Interp&, const Value& v, CallArgs& a) {
         return get_attr(v, need_str(bind(a, "attr", {"name"})[0], "attribute name"));
       }},
      {"capitalize", [](Interp&, const Value& v, CallArgs&) { return Value(capitalize(to_str(v))); }},
      {"count", [](Interp&, const Value& v, CallArgs&) { return Value(length(v)); }},
      {"default", [](Interp&, const Value& v, CallArgs& args) {
         const auto a = bind(args, "default", {"default_value", "boolean"});
         const bool use = v.is_undefined() || (given(a[1]) && truthy(a[1]) && !truthy(v));
         return use ? (given(a[0]) ? a[0] : Value(std::string())) : v;
       }},
      {"first", [](Interp&, const Value& v, CallArgs&) {
         const List items = to_list(v);
         return items.empty() ? Value::undefined("No first item, sequence was empty.") : items.front();
       }},
      {"float", [](Interp&, const Value& v, CallArgs& args) {
         return filter_float(v, bind(args, "float", {"default"})[0]);
       }},
      {"int", [](Interp&, const Value& v, CallArgs& args) {
         const auto a = bind(args, "int", {"default", "base"});
         return filter_int(v, a[0], a[1]);
       }},
      {"items", [](Interp&, const Value& v, CallArgs&) {
         if (v.is_undefined()) return Value(List{});
         if (!v.is_dict()) throw EvalError("Can only get item pairs from a mapping.");
         List out;
         for (const auto& [k, x] : v.dict().items()) out.emplace_back(pair(k, x));
         return Value(std::move(out));
       }},
      {"join", [](Interp& in, const Value& v, CallArgs& args) {
         const auto a = bind(args, "join", {"d", "attribute"});
         const std::string sep = given(a[0]) ? to_str(a[0]) : "";
         std::string out;
         bool first = true;
         for (const Value& item : to_list(v)) {
           out += (first ? "" : sep) + to_str(given(a[1]) ? attr_path(item, to_str(a[1])) : item);
           first = false;
           in.check_size(out.size());
         }
         return Value(std::move(out));
       }},
      {"last", [](Interp&, const Value& v, CallArgs&) {
         const List items = to_list(v);
         return items.empty() ? Value::undefined("No last item, sequence was empty.") : items.back();
       }},
      {"length", [](Interp&, const Value& v, CallArgs&) { return Value(length(v)); }},
      {"list", [](Interp&, const Value& v, CallArgs&) { return Value(to_list(v)); }},
      {"lower", [](Interp&, const Value& v, CallArgs&) { return Value(lower(to_str(v))); }},
      {"map", [](Interp& in, const Value& v, CallArgs& args) {
         List out;
         auto keyword = [&](std::string_view k) {
           return std::find_if(args.keyword.begin(), args.keyword.end(), [&](const auto& kv) { return kv.first == k; });
         };
         const auto attr = keyword("attribute");
         if (attr != args.keyword.end()) {
           const auto dflt = keyword("default");
           for (const Value& item : to_list(v)) {
             Value x = attr_path(item, need_str(attr->second, "map attribute"));
             out.push_back(x.is_undefined() && dflt != args.keyword.end() ? dflt->second : x);
           }
           return Value(std::move(out));
         }
         if (args.positional.empty()) throw EvalError("map() needs a filter name or attribute=");
         const std::string name = need_str(args.positional[0], "map filter name");
         if (!has_filter(name)) throw EvalError(fmt::format("no filter named '{}'", name));
         CallArgs rest{{args.positional.begin() + 1, args.positional.end()}, args.keyword};
         for (const Value& item : to_list(v)) {
           CallArgs a = rest;
           out.push_back(apply_filter(in, name, item, a));
         }
         return Value(std::move(out));
       }},
      {"reject", [](Interp& in, const Value& v, CallArgs& a) { return select(in, v, a, false, false); }},
      {"rejectattr", [](Interp& in, const Value& v, CallArgs& a) { return select(in, v, a, true, false); }},
      {"replace", [](Interp&, const Value& v, CallArgs& args) {
         const auto a = bind(args, "replace", {"old", "new", "count"});
         const int64_t count = given(a[2]) && !a[2].is_none() ? need_int(a[2], "replace count") : -1;
         return Value(replace(to_str(v), to_str(a[0]), to_str(a[1]), count));
       }},
      {"reverse", [](Interp&, const Value& v, CallArgs&) {
         if (v.is_string()) {
           std::u32string cps = decode_utf8(v.str());
           std::reverse(cps.begin(), cps.end());
           return Value(encode_utf8(cps));
         }
         List items = to_list(v);
         std::reverse(items.begin(), items.end());
         return Value(std::move(items));
       }},
      {"safe", [](Interp&, const Value& v, CallArgs&) { return Value(to_str(v)); }},
      {"select", [](Interp& in, const Value& v, CallArgs& a) { return select(in, v, a, false, true); }},
      {"selectattr", [](Interp& in, const Value& v, CallArgs& a) { return select(in, v, a, true, true); }},
      {"sort", [](Interp&, const Value& v, CallArgs& args) {
         const auto a = bind(args, "sort", {"reverse", "case_sensitive", "attribute"});
         const bool rev = given(a[0]) && truthy(a[0]);
         const bool cs = given(a[1]) && truthy(a[1]);
         auto key = [&](const Value& item) {
           Value k = given(a[2]) ? attr_path(item, to_str(a[2])) : item;
           return !cs && k.is_string() ? Value(lower(k.str())) : k;
         };
         List items = to_list(v);
         std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
           return rev ? less(key(y), key(x)) : less(key(x), key(y));
         });
         return Value(std::move(items));
       }},
      {"string", [](Interp&, const Value& v, CallArgs&) { return Value(to_str(v)); }},
      {"title", [](Interp&, const Value& v, CallArgs&) { return Value(jinja_title(to_str(v))); }},
      {"tojson", [](Interp&, const Value& v, CallArgs& a) { return filter_tojson(v, a); }},
      {"trim", [](Interp&, const Value& v, CallArgs& args) {
         return Value(strip(to_str(v), bind(args, "trim", {"chars"})[0], true, true));
       }},
      {"unique", [](Interp& in, const Value& v, CallArgs& args) {
         const auto a = bind(args, "unique", {"case_sensitive", "attribute"});
         const bool cs = given(a[0]) && truthy(a[0]);
         List out, keys;
         for (const Value& item : to_list(v)) {
           in.count_iterations(int64_t(keys.size()) + 1);  // each item is compared with the kept keys
           Value k = given(a[1]) ? attr_path(item, to_str(a[1])) : item;
           if (!cs && k.is_string()) k = Value(lower(k.str()));
           if (std::none_of(keys.begin(), keys.end(), [&](const Value& x) { return equals(x, k); })) {
             keys.push_back(k);
             out.push_back(item);
           }
         }
         return Value(std::move(out));
       }},
      {"upper", [](Interp&, const Value& v, CallArgs&) { return Value(upper(to_str(v))); }},
      {"indent", [](Interp&, const Value& v, CallArgs& args) {
         const auto a = bind(args, "indent", {"width", "first", "blank"});
         return Value(indent(to_str(v), a[0], given(a[1]) && truthy(a[1]), given(a[2]) && truthy(a[2])));
       }},
  };
  return table;
}

bool cmp_test(const Value& v, CallArgs& args, std::string_view name, bool (*f)(const Value&, const Value&)) {
  const auto a = bind(args, name, {"other"});
  return f(v, a[0]);
}

const std::unordered_map<std::string_view, TestFn>& tests() {
  static const std::unordered_map<std::string_view, TestFn> table = {
      {"defined", [](Interp&, const Value& v, CallArgs&) { return !v.is_undefined(); }},
      {"undefined", [](Interp&, const Value& v, CallArgs&) { return v.is_undefined(); }},
      {"none", [](Interp&, const Value& v, CallArgs&) { return v.is_none(); }},
      {"boolean", [](Interp&, const Value& v, CallArgs&) { return v.is_bool(); }},
      {"true", [](Interp&, const Value& v, CallArgs&) { return v.is_bool() && v.as_bool(); }},
      {"false", [](Interp&, const Value& v, CallArgs&) { return v.is_bool() && !v.as_bool(); }},
      {"integer", [](Interp&, const Value& v, CallArgs&) { return v.is_int(); }},
      {"float", [](Interp&, const Value& v, CallArgs&) { return v.is_real(); }},
      {"number", [](Interp&, const Value& v, CallArgs&) { return v.is_number(); }},
      {"string", [](Interp&, const Value& v, CallArgs&) { return v.is_string(); }},
      {"mapping", [](Interp&, const Value& v, CallArgs&) { return v.is_dict(); }},
      // Python: iter() works on str, list, dict and Jinja's Undefined.
      {"iterable", [](Interp&, const Value& v, CallArgs&) {
         return v.is_string() || v.is_list() || v.is_dict() || v.is_undefined();
       }},
      {"sequence", [](Interp&, const Value& v, CallArgs&) {
         return v.is_string() || v.is_list() || v.is_dict() || v.is_undefined();
       }},
      {"callable", [](Interp&, const Value& v, CallArgs&) { return v.is_callable(); }},
      {"sameas", [](Interp&, const Value& v, CallArgs& a) {
         return cmp_test(v, a, "sameas", [](const Value& x, const Value& y) {
           return x.kind() == y.kind() && (x.is_none() || x.is_undefined() || x.is_bool() ? equals(x, y) : false);
         });
       }},
      {"eq", [](Interp&, const Value& v, CallArgs& a) { return cmp_test(v, a, "eq", equals); }},
      {"equalto", [](Interp&, const Value& v, CallArgs& a) { return cmp_test(v, a, "equalto", equals); }},
      {"==", [](Interp&, const Value& v, CallArgs& a) { return cmp_test(v, a, "==", equals); }},
      {"ne", [](Interp&, const Value& v, CallArgs& a) {
         return cmp_test(v, a, "ne", [](const Value& x, const Value& y) { return !equals(x, y); });
       }},
      {"lt", [](Interp&, const Value& v, CallArgs& a) { return cmp_test(v, a, "lt", less); }},
      {"le", [](Interp&, const Value& v, CallArgs& a) {
         return cmp_test(v, a, "le", [](const Value& x, const Value& y) { return less(x, y) || equals(x, y); });
       }},
      {"gt", [](Interp&, const Value& v, CallArgs& a) {
         return cmp_test(v, a, "gt", [](const Value& x, const Value& y) { return less(y, x); });
       }},
      {"ge", [](Interp&, const Value& v, CallArgs& a) {
         return cmp_test(v, a, "ge", [](const Value& x, const Value& y) { return less(y, x) || equals(x, y); });
       }},
      {"in", [](Interp&, const Value& v, CallArgs& a) {
         const Value seq = bind(a, "in", {"seq"})[0];
         if (seq.is_string()) return v.is_string() && seq.str().find(v.str()) != std::string::npos;
         if (seq.is_dict()) return v.is_string() && seq.dict().find(v.str()) != nullptr;
         const List items = to_list(seq);
         return std::any_of(items.begin(), items.end(), [&](const Value& x) { return equals(x, v); });
       }},
      {"lower", [](Interp&, const Value& v, CallArgs&) { return v.is_string() && lower(v.str()) == v.str(); }},
      {"upper", [](Interp&, const Value& v, CallArgs&) { return v.is_string() && upper(v.str()) == v.str(); }},
      {"even", [](Interp&, const Value& v, CallArgs&) { return need_int(v, "even operand") % 2 == 0; }},
      {"odd", [](Interp&, const Value& v, CallArgs&) { return need_int(v, "odd operand") % 2 != 0; }},
      {"divisibleby", [](Interp&, const Value& v, CallArgs& a) {
         const int64_t n = need_int(bind(a, "divisibleby", {"num"})[0], "divisibleby argument");
         if (n == 0) throw EvalError("modulo by zero");
         return need_int(v, "divisibleby operand") % n == 0;
       }},
      {"escaped", [](Interp&, const Value&, CallArgs&) { return false; }},
      {"filter", [](Interp&, const Value& v, CallArgs&) { return v.is_string() && has_filter(v.str()); }},
      {"test", [](Interp&, const Value& v, CallArgs&) { return v.is_string() && has_test(v.str()); }},
  };
  return table;
}

// A bound method: obj.name, called later with its arguments.
class Method : public Callable {
 public:
  Method(Value self, std::string name) : self_(std::move(self)), name_(std::move(name)) {}
  Value call(Interp& interp, CallArgs& args) const override;
  std::string name() const override { return name_; }

 private:
  Value self_;
  std::string name_;
};

constexpr std::string_view kStrMethods[] = {"strip", "lstrip", "rstrip", "split", "rsplit", "splitlines",
                                            "startswith", "endswith", "upper", "lower", "title", "capitalize",
                                            "replace", "find", "rfind", "count", "join", "isdigit", "isalpha",
                                            "isalnum", "isspace", "isupper", "islower"};
constexpr std::string_view kDictMethods[] = {"items", "keys", "values", "get"};
constexpr std::string_view kListMethods[] = {"index", "count"};
// Methods that change a list or dict: HF's sandbox refuses them.
constexpr std::string_view kUnsafe[] = {"append", "extend", "insert", "pop", "remove", "clear", "sort", "reverse",
                                        "update", "popitem", "setdefault"};

template <size_t N>
bool in(const std::string_view (&names)[N], std::string_view name) {
  return std::find(std::begin(names), std::end(names), name) != std::end(names);
}

bool affix(const std::string& s, const Value& arg, bool prefix) {
  auto one = [&](const Value& p) {
    const std::string& t = need_str(p, prefix ? "startswith() argument" : "endswith() argument");
    return prefix ? std::string_view(s).starts_with(t) : std::string_view(s).ends_with(t);
  };
  if (arg.is_list()) return std::any_of(arg.list().begin(), arg.list().end(), one);
  return one(arg);
}

Value str_method(Interp& in, const std::string& s, const std::string& name, CallArgs& args) {
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    const Value chars = bind(args, name, {"chars"})[0];
    return Value(strip(s, chars, name != "rstrip", name != "lstrip"));
  }
  if (name == "split" || name == "rsplit") {
    const auto a = bind(args, name, {"sep", "maxsplit"});
    return Value(split(s, a[0], given(a[1]) ? need_int(a[1], "maxsplit") : -1, name == "rsplit"));
  }
  if (name == "splitlines") {
    const auto a = bind(args, name, {"keepends"});
    List out;
    for (auto& l : splitlines(s, given(a[0]) && truthy(a[0]))) out.emplace_back(std::move(l));
    return Value(std::move(out));
  }
  if (name == "startswith" || name == "endswith")
    return Value(affix(s, bind(args, name, {"prefix"})[0], name == "startswith"));
  if (name == "upper" || name == "lower" || name == "title" || name == "capitalize") {
    bind(args, name, {});
    return Value(name == "upper"   ? upper(s)
                 : name == "lower" ? lower(s)
                 : name == "title" ? py_title(s)
                                   : capitalize(s));
  }
  if (name == "replace") {
    const auto a = bind(args, name, {"old", "new", "count"});
    const std::string& old = need_str(a[0], "replace() old");
    const std::string& new_text = need_str(a[1], "replace() new");
    const std::string out = replace(s, old, new_text, given(a[2]) ? need_int(a[2], "replace() count") : -1);
    in.check_size(out.size());
    return Value(out);
  }
  if (name == "find" || name == "rfind" || name == "count") {
    const std::string& sub = need_str(bind(args, name, {"sub"})[0], name + "() argument");
    if (name == "count") {
      if (sub.empty()) return Value(int64_t(utf8_length(s)) + 1);
      int64_t n = 0;
      for (size_t i = s.find(sub); i != std::string::npos; i = s.find(sub, i + sub.size())) ++n;
      return Value(n);
    }
    const size_t i = name == "find" ? s.find(sub) : s.rfind(sub);
    return Value(i == std::string::npos ? int64_t(-1) : int64_t(utf8_length(s.substr(0, i))));
  }
  if (name == "join") {
    std::string out;
    bool first = true;
    for (const Value& item : to_list(bind(args, name, {"iterable"})[0])) {
      out += (first ? "" : s) + need_str(item, "join() item");
      first = false;
      in.check_size(out.size());
    }
    return Value(std::move(out));
  }
  bind(args, name, {});
  const std::u32string cps = decode_utf8(s);
  auto all = [&](auto pred) { return !cps.empty() && std::all_of(cps.begin(), cps.end(), pred); };
  if (name == "isdigit") return Value(all([](char32_t c) { return c >= '0' && c <= '9'; }));
  if (name == "isalpha") return Value(all([](char32_t c) { return ascii_alpha(c); }));
  if (name == "isalnum") return Value(all([](char32_t c) { return ascii_alpha(c) || (c >= '0' && c <= '9'); }));
  if (name == "isspace") return Value(all([](char32_t c) { return is_py_space(c); }));
  const bool has_cased = std::any_of(cps.begin(), cps.end(), ascii_alpha);
  if (name == "isupper") return Value(has_cased && upper(s) == s);
  return Value(has_cased && lower(s) == s);  // islower
}

Value Method::call(Interp& in, CallArgs& args) const {
  if (self_.is_string()) return str_method(in, self_.str(), name_, args);
  if (self_.is_dict()) {
    const Dict& d = self_.dict();
    if (name_ == "get") {
      const auto a = bind(args, "get", {"key", "default"});
      const Value* v = a[0].is_string() ? d.find(a[0].str()) : nullptr;
      return v ? *v : given(a[1]) ? a[1] : Value::none();
    }
    bind(args, name_, {});
    List out;
    for (const auto& [k, v] : d.items()) {
      if (name_ == "items") out.emplace_back(pair(k, v));
      else if (name_ == "keys") out.emplace_back(k);
      else out.push_back(v);
    }
    return Value(std::move(out));
  }
  const List& l = self_.list();
  const Value x = bind(args, name_, {"value"})[0];
  auto same = [&](const Value& v) { return equals(v, x); };
  if (name_ == "count") return Value(int64_t(std::count_if(l.begin(), l.end(), same)));
  const auto it = std::find_if(l.begin(), l.end(), same);
  if (it == l.end()) throw EvalError(fmt::format("{} is not in list", repr(x)));
  return Value(int64_t(it - l.begin()));
}

std::string object_repr(const Value& v) {
  return v.is_none() ? "None" : fmt::format("{} object", type_name(v));
}

// ---- globals ----

class Builtin : public Callable {
 public:
  using Fn = Value (*)(Interp&, CallArgs&);
  Builtin(std::string name, Fn fn) : name_(std::move(name)), fn_(fn) {}
  Value call(Interp& interp, CallArgs& args) const override { return fn_(interp, args); }
  std::string name() const override { return name_; }

 private:
  std::string name_;
  Fn fn_;
};

constexpr int64_t kMaxRange = 100000;  // jinja2.sandbox.MAX_RANGE

Value global_range(Interp& in, CallArgs& args) {
  if (!args.keyword.empty()) throw EvalError("range() takes no keyword arguments");
  const auto& p = args.positional;
  if (p.empty() || p.size() > 3) throw EvalError(fmt::format("range expected 1 to 3 arguments, got {}", p.size()));
  int64_t start = 0, stop, step = 1;
  if (p.size() == 1) {
    stop = need_int(p[0], "range() argument");
  } else {
    start = need_int(p[0], "range() start");
    stop = need_int(p[1], "range() stop");
    if (p.size() == 3) step = need_int(p[2], "range() step");
  }
  if (step == 0) throw EvalError("range() arg 3 must not be zero");
  // The exact length, in 128 bits: no int64 arithmetic here can overflow.
  const __int128 span = step > 0 ? __int128(stop) - start : __int128(start) - stop;
  const __int128 mag = step > 0 ? __int128(step) : -__int128(step);
  const __int128 n = span <= 0 ? 0 : (span + mag - 1) / mag;
  if (n > kMaxRange)
    throw EvalError(fmt::format("Range too big. The sandbox blocks ranges larger than MAX_RANGE ({}).", kMaxRange));
  in.count_iterations(int64_t(n));
  List out;
  for (int64_t k = 0; k < int64_t(n); ++k) out.emplace_back(int64_t(start + __int128(k) * step));
  return Value(std::move(out));
}

// namespace(...) and dict(...): an optional mapping, then keyword arguments.
Dict mapping_args(CallArgs& args, std::string_view fn) {
  if (args.positional.size() > 1) throw EvalError(fmt::format("{}() takes at most 1 positional argument", fn));
  Dict d;
  if (!args.positional.empty()) {
    const Value& m = args.positional[0];
    if (m.is_dict() || m.is_namespace()) {
      for (const auto& [k, v] : (m.is_dict() ? m.dict() : m.ns()).items()) d.set(k, v);
    } else {
      for (const Value& pair : to_list(m)) {
        if (!pair.is_list() || pair.list().size() != 2)
          throw EvalError(fmt::format("{}() needs a mapping or key-value pairs", fn));
        d.set(need_str(pair.list()[0], "key"), pair.list()[1]);
      }
    }
  }
  for (const auto& [k, v] : args.keyword) d.set(k, v);
  return d;
}

Value global_strftime_now(Interp& in, CallArgs& args) {
  const std::string& format = need_str(bind(args, "strftime_now", {"format"})[0], "strftime_now() format");
  std::tm tm = in.now();
  std::tm norm = tm;  // an injected clock may leave the weekday and day of year unset
  timegm(&norm);
  tm.tm_wday = norm.tm_wday;
  tm.tm_yday = norm.tm_yday;
  if (format.empty()) return Value(std::string());
  for (size_t cap = 256; cap <= 1 << 16; cap *= 4) {
    std::string buf(cap, '\0');
    const size_t n = std::strftime(buf.data(), buf.size(), format.c_str(), &tm);
    if (n > 0) return Value(buf.substr(0, n));
  }
  return Value(std::string());  // a format whose result is empty (e.g. "%p" in some locales)
}

}  // namespace

bool has_filter(std::string_view name) { return name == "d" || filters().count(name) != 0; }
bool has_test(std::string_view name) {
  static constexpr std::string_view kAliases[] = {"!=", "<", "<=", ">", ">="};
  return tests().count(name) != 0 || in(kAliases, name);
}

Value apply_filter(Interp& interp, std::string_view name, const Value& operand, CallArgs& args) {
  if (name == "d") name = "default";
  const auto it = filters().find(name);
  if (it == filters().end()) throw EvalError(fmt::format("no filter named '{}'", name));
  return it->second(interp, operand, args);
}

bool apply_test(Interp& interp, std::string_view name, const Value& operand, CallArgs& args) {
  if (name == "!=") name = "ne";
  if (name == "<") name = "lt";
  if (name == "<=") name = "le";
  if (name == ">") name = "gt";
  if (name == ">=") name = "ge";
  const auto it = tests().find(name);
  if (it == tests().end()) throw EvalError(fmt::format("no test named '{}'", name));
  return it->second(interp, operand, args);
}

Value bound_method(const Value& self, std::string_view name) {
  const bool ok = (self.is_string() && in(kStrMethods, name)) || (self.is_dict() && in(kDictMethods, name)) ||
                  (self.is_list() && in(kListMethods, name));
  if (ok) return Value(CallablePtr(std::make_shared<Method>(self, std::string(name))));
  if ((self.is_list() || self.is_dict()) && in(kUnsafe, name))
    return Value::undefined(fmt::format(
        "access to attribute '{}' of '{}' object is unsafe (the sandbox forbids changing it)", name, type_name(self)));
  return Value::undefined(fmt::format("'{}' has no attribute '{}'", object_repr(self), name));
}

Value get_attr(const Value& obj, std::string_view name) {
  require_defined(obj);
  if (obj.is_namespace()) {
    const Value* v = obj.ns().find(name);
    return v ? *v : Value::undefined(fmt::format("'Namespace' object has no attribute '{}'", name));
  }
  if (obj.is_dict()) {
    if (in(kDictMethods, name)) return bound_method(obj, name);
    const Value* v = obj.dict().find(name);
    return v ? *v : Value::undefined(fmt::format("'dict object' has no attribute '{}'", name));
  }
  return bound_method(obj, name);
}

Value get_item(const Value& obj, const Value& key) {
  require_defined(obj);
  if (obj.is_dict() && key.is_string()) {
    if (const Value* v = obj.dict().find(key.str())) return *v;
    return get_attr(obj, key.str());
  }
  if ((obj.is_list() || obj.is_string()) && (key.is_int() || key.is_bool())) {
    const int64_t i = key.is_bool() ? int64_t(key.as_bool()) : key.as_int();
    if (obj.is_list()) {
      const int64_t n = int64_t(obj.list().size());
      const int64_t j = i < 0 ? i + n : i;
      if (j >= 0 && j < n) return obj.list()[size_t(j)];
    } else {
      const std::u32string cps = decode_utf8(obj.str());
      const int64_t n = int64_t(cps.size());
      const int64_t j = i < 0 ? i + n : i;
      if (j >= 0 && j < n) return Value(encode_utf8(std::u32string_view(cps).substr(size_t(j), 1)));
    }
    return Value::undefined(fmt::format("'{}' has no element {}", object_repr(obj), i));
  }
  if (key.is_string()) return get_attr(obj, key.str());
  return Value::undefined(fmt::format("'{}' has no element {}", object_repr(obj), repr(key)));
}

std::vector<std::pair<std::string, Value>> global_functions() {
  auto fn = [](const char* name, Builtin::Fn f) {
    return std::pair<std::string, Value>(name, Value(CallablePtr(std::make_shared<Builtin>(name, f))));
  };
  return {
      fn("range", global_range),
      fn("namespace", [](Interp&, CallArgs& a) { return Value::make_namespace(mapping_args(a, "namespace")); }),
      fn("dict", [](Interp&, CallArgs& a) { return Value(mapping_args(a, "dict")); }),
      fn("raise_exception", [](Interp& in, CallArgs& a) -> Value {
        in.raise(to_str(bind(a, "raise_exception", {"message"})[0]));
      }),
      fn("strftime_now", global_strftime_now),
  };
}

}  // namespace tpp::jinja
