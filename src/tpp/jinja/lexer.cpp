// Jinja lexer. Whitespace handling follows Jinja2's lexer as HF configures
// it: newlines normalized to \n and one trailing newline dropped;
// trim_blocks removes the newline right after a block or comment tag;
// lstrip_blocks removes the spaces and tabs before a block or comment tag that
// starts its line; "-" on a tag strips all whitespace on that side, "+" turns
// lstrip / trim off for that side. {% raw %} bodies become text.
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include <fmt/format.h>

#include "tpp/jinja/ast.h"

namespace tpp::jinja {
namespace {

bool is_space_at(std::string_view s, size_t i) {
  // Python's \s on the ASCII range; Unicode spaces in tags are rare enough to
  // treat as ordinary characters (Jinja2 would skip them too).
  return i < s.size() && std::strchr(" \t\n\r\f\v", s[i]) != nullptr && s[i] != '\0';
}

std::string_view rstrip_py(std::string_view s) {
  const std::u32string cps = decode_utf8(s);
  size_t n = cps.size();
  while (n > 0 && is_py_space(cps[n - 1])) --n;
  return s.substr(0, encode_utf8(std::u32string_view(cps).substr(0, n)).size());
}

// Python string literal escapes, as Jinja2 decodes them ("unicode-escape").
std::string unescape(std::string_view body) {
  std::u32string out;
  const std::u32string cps = decode_utf8(body);
  auto hex = [&](size_t i, int n, char32_t* v) {
    if (i + size_t(n) > cps.size()) return false;
    *v = 0;
    for (int k = 0; k < n; ++k) {
      const char32_t c = cps[i + size_t(k)];
      const int d = c >= '0' && c <= '9' ? int(c - '0') : c >= 'a' && c <= 'f' ? int(c - 'a' + 10)
                    : c >= 'A' && c <= 'F' ? int(c - 'A' + 10) : -1;
      if (d < 0) return false;
      *v = *v * 16 + char32_t(d);
    }
    return true;
  };
  for (size_t i = 0; i < cps.size(); ++i) {
    if (cps[i] != U'\\' || i + 1 == cps.size()) {
      out += cps[i];
      continue;
    }
    const char32_t c = cps[++i];
    char32_t v = 0;
    switch (c) {
      case U'\n': break;  // line continuation
      case U'\\': out += U'\\'; break;
      case U'\'': out += U'\''; break;
      case U'"': out += U'"'; break;
      case U'n': out += U'\n'; break;
      case U't': out += U'\t'; break;
      case U'r': out += U'\r'; break;
      case U'b': out += U'\b'; break;
      case U'f': out += U'\f'; break;
      case U'v': out += U'\v'; break;
      case U'a': out += U'\a'; break;
      case U'x':
      case U'u':
      case U'U': {
        const int n = c == U'x' ? 2 : c == U'u' ? 4 : 8;
        if (!hex(i + 1, n, &v) || v > 0x10ffff) throw EvalError(fmt::format("invalid \\{} escape", char(c)));
        out += v;
        i += size_t(n);
        break;
      }
      default:
        if (c >= U'0' && c <= U'7') {
          v = c - U'0';
          for (int k = 0; k < 2 && i + 1 < cps.size() && cps[i + 1] >= U'0' && cps[i + 1] <= U'7'; ++k)
            v = v * 8 + (cps[++i] - U'0');
          out += v;
        } else {
          out += U'\\';  // unknown escapes stay as written
          out += c;
        }
    }
  }
  return encode_utf8(out);
}

class Lexer {
 public:
  Lexer(std::string_view source, const std::string& origin) : origin_(origin) {
    // Newlines normalized to \n, one trailing newline dropped (keep_trailing_newline=False).
    src_.reserve(source.size());
    for (size_t i = 0; i < source.size(); ++i) {
      if (source[i] == '\r') {
        src_ += '\n';
        if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
      } else {
        src_ += source[i];
      }
    }
    if (!src_.empty() && src_.back() == '\n') src_.pop_back();
    line_starts_.push_back(0);
    for (size_t i = 0; i < src_.size(); ++i)
      if (src_[i] == '\n') line_starts_.push_back(i + 1);
  }

  std::vector<Token> run() {
    size_t pos = 0;
    while (pos < src_.size()) {
      const size_t k = find_tag(pos);
      std::string_view text = std::string_view(src_).substr(pos, k - pos);
      if (k == src_.size()) {
        push_text(text, pos);
        break;
      }
      const char kind = src_[k + 1];  // '{', '%' or '#'
      const char mod = k + 2 < src_.size() ? src_[k + 2] : '\0';
      const bool strip_before = mod == '-';
      const bool plus = mod == '+' && kind != '{';
      if (strip_before) {
        text = rstrip_py(text);
      } else if (kind != '{' && !plus) {
        text = lstrip_line(text, pos);
      }
      push_text(text, pos);
      size_t p = k + 2 + (strip_before || plus ? 1 : 0);
      if (kind == '#') {
        pos = comment(k, p);
      } else if (kind == '%' && is_raw(p)) {
        pos = raw(k, p);
      } else {
        pos = tag(k, p, kind);
      }
    }
    tokens_.push_back({Tok::eof, "", Value(), loc(src_.size())});
    return std::move(tokens_);
  }

 private:
  // Line and column of a byte offset. Tokens come in order, so the column is
  // counted on from the previous call on the same line: linear in a long
  // line, not quadratic.
  Loc loc(size_t pos) const {
    const auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), pos) - 1;
    if (*it != col_line_ || pos < col_pos_) {
      col_line_ = col_pos_ = *it;
      col_ = 1;
    }
    col_ += utf8_length(std::string_view(src_).substr(col_pos_, pos - col_pos_));
    col_pos_ = pos;
    return {int(it - line_starts_.begin()) + 1, int(col_)};
  }

  [[noreturn]] void fail(size_t pos, const std::string& msg) const {
    const Loc l = loc(pos);
    throw Error(fmt::format("{}:{}:{}: {}", origin_, l.line, l.col, msg));
  }

  size_t find_tag(size_t pos) const {
    for (size_t i = src_.find('{', pos); i != std::string::npos; i = src_.find('{', i + 1))
      if (i + 1 < src_.size() && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) return i;
    return src_.size();
  }

  void push_text(std::string_view text, size_t pos) {
    if (!text.empty()) tokens_.push_back({Tok::text, std::string(text), Value(), loc(pos)});
  }

  // lstrip_blocks: drop spaces before a block or comment tag when only
  // whitespace precedes it on its line.
  std::string_view lstrip_line(std::string_view text, size_t text_pos) const {
    const size_t nl = text.rfind('\n');
    const size_t l_pos = nl == std::string_view::npos ? 0 : nl + 1;
    const bool line_starting = text_pos == 0 || src_[text_pos - 1] == '\n';
    if (l_pos == 0 && !line_starting) return text;
    const std::string_view tail = text.substr(l_pos);
    if (tail.empty() || rstrip_py(tail).size() != 0) return text;
    return text.substr(0, l_pos);
  }

  // After a tag's end delimiter: "-" strips whitespace, otherwise a block or
  // comment end (not "+") drops one newline (trim_blocks).
  size_t after_end(size_t p, char mod, bool block) const {
    if (mod == '-') {
      while (p < src_.size()) {
        const size_t n = std::min<size_t>(4, src_.size() - p);
        const std::u32string c = decode_utf8(std::string_view(src_).substr(p, n));
        if (c.empty() || !is_py_space(c[0])) break;
        p += encode_utf8(std::u32string_view(c).substr(0, 1)).size();
      }
    } else if (block && mod != '+' && p < src_.size() && src_[p] == '\n') {
      ++p;
    }
    return p;
  }

  size_t comment(size_t begin, size_t p) {
    const size_t end = src_.find("#}", p);
    if (end == std::string::npos) fail(begin, "unterminated comment: expected '#}'");
    const char mod = end > p && (src_[end - 1] == '-' || src_[end - 1] == '+') ? src_[end - 1] : '\0';
    return after_end(end + 2, mod, true);
  }

  size_t skip_spaces(size_t p) const {
    while (is_space_at(src_, p)) ++p;
    return p;
  }

  bool word_at(size_t p, std::string_view w) const {
    if (src_.compare(p, w.size(), w) != 0) return false;
    const size_t q = p + w.size();
    return q >= src_.size() || !(std::isalnum(uint8_t(src_[q])) || src_[q] == '_');
  }

  bool is_raw(size_t p) const { return word_at(skip_spaces(p), "raw"); }

  // {% raw %}...{% endraw %}: the text between is literal.
  size_t raw(size_t begin, size_t p) {
    p = skip_spaces(skip_spaces(p) + 3);
    if (src_.compare(p, 3, "-%}") == 0) {
      p = after_end(p + 3, '-', true);
    } else if (src_.compare(p, 2, "%}") == 0) {
      p += 2;  // Jinja2 keeps the newline after {% raw %}
    } else {
      fail(p, "expected '%}' after 'raw'");
    }
    for (size_t i = src_.find("{%", p); i != std::string::npos; i = src_.find("{%", i + 1)) {
      size_t q = i + 2;
      const char mod = q < src_.size() && (src_[q] == '-' || src_[q] == '+') ? src_[q++] : '\0';
      q = skip_spaces(q);
      if (!word_at(q, "endraw")) continue;
      q = skip_spaces(q + 6);
      char end_mod = '\0';
      if (q < src_.size() && (src_[q] == '-' || src_[q] == '+')) end_mod = src_[q++];
      if (src_.compare(q, 2, "%}") != 0) fail(q, "expected '%}' after 'endraw'");
      std::string_view text = std::string_view(src_).substr(p, i - p);
      text = mod == '-' ? rstrip_py(text) : mod == '+' ? text : lstrip_line(text, p);
      push_text(text, p);
      return after_end(q + 2, end_mod, true);
    }
    fail(begin, "unterminated 'raw' block: expected '{% endraw %}'");
  }

  size_t tag(size_t begin, size_t p, char kind) {
    tokens_.push_back({kind == '{' ? Tok::var_begin : Tok::block_begin, "", Value(), loc(begin)});
    bool after_dot = false;
    while (true) {
      p = skip_spaces(p);
      if (p >= src_.size())
        fail(begin, fmt::format("unterminated tag: expected '{}'", kind == '{' ? "}}" : "%}"));
      const std::string_view rest = std::string_view(src_).substr(p);
      if (kind == '{' && (rest.starts_with("-}}") || rest.starts_with("}}"))) {
        tokens_.push_back({Tok::var_end, "", Value(), loc(p)});
        const bool strip = rest[0] == '-';
        return after_end(p + (strip ? 3 : 2), strip ? '-' : '\0', false);
      }
      if (kind == '%' && (rest.starts_with("-%}") || rest.starts_with("+%}") || rest.starts_with("%}"))) {
        tokens_.push_back({Tok::block_end, "", Value(), loc(p)});
        const char mod = rest[0] == '%' ? '\0' : rest[0];
        return after_end(p + (mod ? 3 : 2), mod, true);
      }
      const Loc l = loc(p);
      const char c = rest[0];
      if (std::isalpha(uint8_t(c)) || c == '_') {
        size_t n = 1;
        while (n < rest.size() && (std::isalnum(uint8_t(rest[n])) || rest[n] == '_')) ++n;
        tokens_.push_back({Tok::name, std::string(rest.substr(0, n)), Value(), l});
        p += n;
      } else if (std::isdigit(uint8_t(c))) {
        p += number(rest, l, after_dot);
      } else if (c == '\'' || c == '"') {
        size_t n = 1;
        while (n < rest.size() && rest[n] != c) n += rest[n] == '\\' ? 2 : 1;
        if (n >= rest.size()) fail(p, "unterminated string literal");
        try {
          tokens_.push_back({Tok::string, unescape(rest.substr(1, n - 1)), Value(), l});
        } catch (const EvalError& e) {
          fail(p, fmt::format("bad string literal: {}", e.what()));
        }
        p += n + 1;
      } else {
        static constexpr std::string_view kOps[] = {"//", "**", "==", "!=", "<=", ">=", "+", "-", "/", "*", "%",
                                                    "~", "<", ">", "=", "(", ")", "[", "]", "{", "}", ",", ".",
                                                    ":", "|", ";"};
        const auto* op =
            std::find_if(std::begin(kOps), std::end(kOps), [&](std::string_view o) { return rest.starts_with(o); });
        if (op == std::end(kOps)) fail(p, fmt::format("unexpected character '{}'", c));
        tokens_.push_back({Tok::op, std::string(*op), Value(), l});
        p += op->size();
      }
      after_dot = tokens_.back().type == Tok::op && tokens_.back().text == ".";
    }
  }

  // Integer or float literal (underscores allowed between digits). Right
  // after a '.', only an integer (x.0.1 is two subscripts).
  size_t number(std::string_view rest, Loc l, bool after_dot) {
    auto digits = [&](size_t i) {
      auto digit = [&](size_t k) { return k < rest.size() && std::isdigit(uint8_t(rest[k])); };
      while (digit(i) || (i < rest.size() && rest[i] == '_' && digit(i + 1))) ++i;
      return i;
    };
    size_t n = digits(0);
    bool real = false;
    if (!after_dot && n + 1 < rest.size() && rest[n] == '.' && std::isdigit(uint8_t(rest[n + 1]))) {
      n = digits(n + 1);
      real = true;
    }
    if (!after_dot && n < rest.size() && (rest[n] == 'e' || rest[n] == 'E')) {
      size_t m = n + 1;
      if (m < rest.size() && (rest[m] == '+' || rest[m] == '-')) ++m;
      if (m < rest.size() && std::isdigit(uint8_t(rest[m]))) {
        n = digits(m);
        real = true;
      }
    }
    std::string s;
    for (char c : rest.substr(0, n))
      if (c != '_') s += c;
    Token t{real ? Tok::real : Tok::integer, s, Value(), l};
    if (real) {
      t.number = Value(std::strtod(s.c_str(), nullptr));
    } else {
      errno = 0;
      const long long v = std::strtoll(s.c_str(), nullptr, 10);
      if (errno == ERANGE)
        throw Error(fmt::format("{}:{}:{}: integer literal {} is out of range", origin_, l.line, l.col, s));
      t.number = Value(int64_t(v));
    }
    tokens_.push_back(std::move(t));
    return n;
  }

  const std::string& origin_;
  std::string src_;
  std::vector<size_t> line_starts_;
  mutable size_t col_line_ = SIZE_MAX, col_pos_ = 0, col_ = 1;  // loc()'s last position
  std::vector<Token> tokens_;
};

}  // namespace

std::vector<Token> lex(std::string_view source, const std::string& origin) { return Lexer(source, origin).run(); }

}  // namespace tpp::jinja
