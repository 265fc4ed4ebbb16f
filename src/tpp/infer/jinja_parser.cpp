// Jinja lexer and recursive-descent parser. Whitespace handling follows
// Jinja2's lexer as HF configures it: newlines normalized to \n and one
// trailing newline dropped; trim_blocks removes the newline right after a
// block or comment tag; lstrip_blocks removes the spaces and tabs before a
// block or comment tag that starts its line; "-" on a tag strips all
// whitespace on that side, "+" turns lstrip / trim off for that side. The
// expression grammar and precedence are Jinja2's parser.py (filters bind
// tighter than arithmetic; ** is left-associative there).
#include <algorithm>
#include <cstring>
#include <string_view>

#include <fmt/format.h>

#include "tpp/infer/jinja_ast.h"

namespace tpp::jinja {
namespace {

enum class Tok { text, var_begin, var_end, block_begin, block_end, name, string, integer, real, op, eof };

struct Token {
  Tok type;
  std::string text;  // text content, name, operator or decoded string literal
  Value number;      // integer / real
  Loc loc;
};

constexpr int kMaxNesting = 200;  // nested expressions and blocks; deeper is refused

std::string describe(const Token& t) {
  switch (t.type) {
    case Tok::eof: return "end of template";
    case Tok::text: return "template text";
    case Tok::var_begin: return "'{{'";
    case Tok::var_end: return "'}}'";
    case Tok::block_begin: return "'{%'";
    case Tok::block_end: return "'%}'";
    case Tok::string: return "a string";
    case Tok::integer:
    case Tok::real: return "a number";
    case Tok::name:
    case Tok::op: return "'" + t.text + "'";
  }
  return "?";
}

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
  Loc loc(size_t pos) const {
    const auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), pos) - 1;
    const std::string_view line = std::string_view(src_).substr(*it, pos - *it);
    return {int(it - line_starts_.begin()) + 1, int(utf8_length(line)) + 1};
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
        const auto* op = std::find_if(std::begin(kOps), std::end(kOps), [&](std::string_view o) { return rest.starts_with(o); });
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
      while (i < rest.size() && (std::isdigit(uint8_t(rest[i])) || (rest[i] == '_' && i + 1 < rest.size() && std::isdigit(uint8_t(rest[i + 1])))))
        ++i;
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
      if (errno == ERANGE) throw Error(fmt::format("{}:{}:{}: integer literal {} is out of range", origin_, l.line, l.col, s));
      t.number = Value(int64_t(v));
    }
    tokens_.push_back(std::move(t));
    return n;
  }

  const std::string& origin_;
  std::string src_;
  std::vector<size_t> line_starts_;
  std::vector<Token> tokens_;
};

class Parser {
 public:
  Parser(std::vector<Token> tokens, const std::string& origin) : t_(std::move(tokens)), origin_(origin) {}

  Body parse() {
    std::string found;
    Body body = parse_body({}, &found, nullptr);
    return body;
  }

 private:
  // RAII nesting counter: refuses pathological depth before the stack does.
  struct Nest {
    Parser& p;
    explicit Nest(Parser& parser) : p(parser) {
      if (++p.depth_ > kMaxNesting) p.fail(p.peek(), fmt::format("nesting deeper than {} levels", kMaxNesting));
    }
    ~Nest() { --p.depth_; }
  };

  const Token& peek(size_t ahead = 0) const { return t_[std::min(i_ + ahead, t_.size() - 1)]; }
  const Token& next() {
    const Token& t = t_[i_];
    if (i_ + 1 < t_.size()) ++i_;
    return t;
  }
  bool is_op(std::string_view op, size_t ahead = 0) const {
    return peek(ahead).type == Tok::op && peek(ahead).text == op;
  }
  bool is_name(std::string_view name, size_t ahead = 0) const {
    return peek(ahead).type == Tok::name && peek(ahead).text == name;
  }
  [[noreturn]] void fail(const Token& at, const std::string& msg) const {
    throw Error(fmt::format("{}:{}:{}: {}", origin_, at.loc.line, at.loc.col, msg));
  }
  [[noreturn]] void expected(const std::string& what) const {
    fail(peek(), fmt::format("expected {}, found {}", what, describe(peek())));
  }
  void expect_op(std::string_view op) {
    if (!is_op(op)) expected("'" + std::string(op) + "'");
    next();
  }
  void expect_block_end() {
    if (peek().type != Tok::block_end) expected("'%}'");
    next();
  }
  std::string expect_name(const std::string& what) {
    if (peek().type != Tok::name) expected(what);
    return next().text;
  }

  static ExprPtr node(ExprType type, Loc loc) {
    auto e = std::make_unique<Expr>();
    e->type = type;
    e->loc = loc;
    return e;
  }

  // ---- statements ----

  // Parses until one of `ends` opens a block tag ({% endif %}, ...); stores
  // its name in *found (the tag's remaining tokens are the caller's). With no
  // ends, parses to the end of the template.
  Body parse_body(std::initializer_list<std::string_view> ends, std::string* found, const Token* opener) {
    Body body;
    while (true) {
      const Token& t = peek();
      if (t.type == Tok::eof) {
        if (ends.size() == 0) return body;
        std::string want;
        for (auto e : ends) want += (want.empty() ? "" : " or ") + fmt::format("'{{% {} %}}'", e);
        fail(t, fmt::format("unexpected end of template: expected {} to close the '{}' at {}:{}", want,
                            opener->text, opener->loc.line, opener->loc.col));
      }
      if (t.type == Tok::text) {
        auto s = std::make_unique<Stmt>();
        s->type = StmtType::text;
        s->loc = t.loc;
        s->text = next().text;
        body.push_back(std::move(s));
      } else if (t.type == Tok::var_begin) {
        auto s = std::make_unique<Stmt>();
        s->type = StmtType::output;
        s->loc = next().loc;
        s->expr = parse_tuple(true, false);
        if (peek().type != Tok::var_end) expected("'}}'");
        next();
        body.push_back(std::move(s));
      } else if (t.type == Tok::block_begin) {
        const Token& name = peek(1);
        if (name.type == Tok::name && std::find(ends.begin(), ends.end(), name.text) != ends.end()) {
          next();
          *found = next().text;
          return body;
        }
        body.push_back(parse_statement());
      } else {
        expected("template text or a tag");
      }
    }
  }

  StmtPtr parse_statement() {
    Nest nest(*this);
    next();  // {%
    const Token& kw = peek();
    if (kw.type != Tok::name) expected("a tag name");
    const std::string& k = kw.text;
    if (k == "if") return parse_if();
    if (k == "for") return parse_for();
    if (k == "set") return parse_set();
    if (k == "macro") return parse_macro();
    if (k == "generation") return parse_generation();
    if (k == "break" || k == "continue") {
      if (loop_depth_ == 0) fail(kw, fmt::format("'{}' outside a loop", k));
      auto s = std::make_unique<Stmt>();
      s->type = k == "break" ? StmtType::break_ : StmtType::continue_;
      s->loc = next().loc;
      expect_block_end();
      return s;
    }
    static constexpr std::string_view kEnds[] = {"elif", "else", "endif", "endfor", "endset", "endmacro",
                                                 "endgeneration", "endraw"};
    if (std::find(std::begin(kEnds), std::end(kEnds), k) != std::end(kEnds))
      fail(kw, fmt::format("unexpected '{{% {} %}}' with no open block it could close", k));
    static constexpr std::string_view kUnsupported[] = {"include", "extends", "block", "import", "from", "call",
                                                        "filter", "with", "autoescape", "do"};
    if (std::find(std::begin(kUnsupported), std::end(kUnsupported), k) != std::end(kUnsupported))
      fail(kw, fmt::format("the '{}' tag is not supported by this Jinja subset", k));
    fail(kw, fmt::format("unknown tag '{}'", k));
  }

  StmtPtr parse_if() {
    const Token opener = next();
    auto s = std::make_unique<Stmt>();
    s->type = StmtType::if_;
    s->loc = opener.loc;
    ExprPtr cond = parse_tuple(true, false);
    expect_block_end();
    while (true) {
      std::string found;
      Body body = parse_body({"elif", "else", "endif"}, &found, &opener);
      s->branches.emplace_back(std::move(cond), std::move(body));
      if (found == "endif") break;
      if (found == "else") {
        expect_block_end();
        std::string end;
        s->branches.emplace_back(nullptr, parse_body({"endif"}, &end, &opener));
        break;
      }
      cond = parse_tuple(true, false);  // elif
      expect_block_end();
    }
    expect_block_end();
    return s;
  }

  // Names for a for / set target: a, or a, b, or (a, b).
  void parse_targets(Stmt& s) {
    const bool parens = is_op("(");
    if (parens) next();
    s.names.push_back(expect_name("a variable name"));
    while (is_op(",")) {
      next();
      if (parens && is_op(")")) break;
      s.names.push_back(expect_name("a variable name"));
      s.unpack = true;
    }
    if (parens) {
      expect_op(")");
      s.unpack = true;
    }
  }

  StmtPtr parse_for() {
    const Token opener = next();
    auto s = std::make_unique<Stmt>();
    s->type = StmtType::for_;
    s->loc = opener.loc;
    parse_targets(*s);
    if (!is_name("in")) expected("'in'");
    next();
    s->expr = parse_tuple(false, false);
    if (is_name("if")) {
      next();
      s->filter = parse_expression(true);
    }
    if (is_name("recursive")) fail(peek(), "recursive loops are not supported by this Jinja subset");
    expect_block_end();
    std::string found;
    ++loop_depth_;
    s->body = parse_body({"else", "endfor"}, &found, &opener);
    --loop_depth_;
    if (found == "else") {
      expect_block_end();
      s->else_body = parse_body({"endfor"}, &found, &opener);
    }
    expect_block_end();
    return s;
  }

  StmtPtr parse_set() {
    const Token opener = next();
    auto s = std::make_unique<Stmt>();
    s->type = StmtType::set;
    s->loc = opener.loc;
    if (peek().type == Tok::name && is_op(".", 1)) {
      s->names.push_back(next().text);
      next();
      s->names.push_back(expect_name("an attribute name"));
      s->ns_attr = true;
    } else {
      parse_targets(*s);
    }
    if (is_op("=")) {
      next();
      s->expr = parse_tuple(true, false);
      expect_block_end();
      return s;
    }
    if (s->ns_attr || s->unpack) expected("'='");
    if (is_op("|")) fail(peek(), "filtered block assignments are not supported by this Jinja subset");
    expect_block_end();
    s->type = StmtType::set_block;
    std::string found;
    s->body = parse_body({"endset"}, &found, &opener);
    expect_block_end();
    return s;
  }

  StmtPtr parse_macro() {
    const Token opener = next();
    auto s = std::make_unique<Stmt>();
    s->type = StmtType::macro;
    s->loc = opener.loc;
    s->names.push_back(expect_name("a macro name"));
    expect_op("(");
    while (!is_op(")")) {
      if (!s->params.empty()) expect_op(",");
      if (is_op(")")) break;
      Param p;
      p.name = expect_name("a parameter name");
      if (is_op("=")) {
        next();
        p.default_value = parse_expression(true);
      } else if (!s->params.empty() && s->params.back().default_value) {
        fail(peek(), fmt::format("parameter '{}' without a default follows one with a default", p.name));
      }
      s->params.push_back(std::move(p));
    }
    next();
    expect_block_end();
    const int saved = loop_depth_;
    loop_depth_ = 0;  // a loop around the definition does not enclose the body
    std::string found;
    s->body = parse_body({"endmacro"}, &found, &opener);
    loop_depth_ = saved;
    expect_block_end();
    return s;
  }

  StmtPtr parse_generation() {
    const Token opener = next();
    auto s = std::make_unique<Stmt>();
    s->type = StmtType::block;
    s->loc = opener.loc;
    expect_block_end();
    std::string found;
    s->body = parse_body({"endgeneration"}, &found, &opener);
    expect_block_end();
    return s;
  }

  // ---- expressions (Jinja2 parser.py) ----

  bool tuple_end() const {
    const Token& t = peek();
    return t.type == Tok::var_end || t.type == Tok::block_end || (t.type == Tok::op && t.text == ")");
  }

  // a or a, b, ... (a tuple); explicit: inside ( ), where () is the empty tuple.
  ExprPtr parse_tuple(bool with_condexpr, bool explicit_parens) {
    const Loc loc = peek().loc;
    std::vector<ExprPtr> items;
    bool is_tuple = false;
    while (true) {
      if (!items.empty()) {
        if (!is_op(",")) break;
        next();
      }
      if (tuple_end()) break;
      items.push_back(parse_expression(with_condexpr));
      if (is_op(","))
        is_tuple = true;
      else
        break;
    }
    if (!is_tuple) {
      if (!items.empty()) return std::move(items[0]);
      if (!explicit_parens) expected("an expression");
    }
    auto e = node(ExprType::tuple, loc);
    e->kids = std::move(items);
    return e;
  }

  ExprPtr parse_expression(bool with_condexpr) {
    Nest nest(*this);
    if (!with_condexpr) return parse_or();
    ExprPtr e = parse_or();
    while (is_name("if")) {
      const Loc loc = next().loc;
      auto c = node(ExprType::cond, loc);
      c->kids.push_back(std::move(e));
      c->kids.push_back(parse_or());
      if (is_name("else")) {
        next();
        c->kids.push_back(parse_expression(true));
      } else {
        c->kids.push_back(nullptr);
      }
      e = std::move(c);
    }
    return e;
  }

  ExprPtr binary_node(ExprType type, ExprPtr left, ExprPtr right, Loc loc, Op op = Op::add) {
    auto e = node(type, loc);
    e->op = op;
    e->kids.push_back(std::move(left));
    e->kids.push_back(std::move(right));
    return e;
  }

  ExprPtr parse_or() {
    ExprPtr e = parse_and();
    while (is_name("or")) {
      const Loc loc = next().loc;
      e = binary_node(ExprType::or_, std::move(e), parse_and(), loc);
    }
    return e;
  }

  ExprPtr parse_and() {
    ExprPtr e = parse_not();
    while (is_name("and")) {
      const Loc loc = next().loc;
      e = binary_node(ExprType::and_, std::move(e), parse_not(), loc);
    }
    return e;
  }

  ExprPtr parse_not() {
    if (is_name("not")) {
      Nest nest(*this);
      auto e = node(ExprType::unary, next().loc);
      e->op = Op::not_;
      e->kids.push_back(parse_not());
      return e;
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    const Loc loc = peek().loc;
    ExprPtr first = parse_math1();
    std::unique_ptr<Expr> cmp;
    while (true) {
      Op op;
      if (peek().type == Tok::op && (peek().text == "==" || peek().text == "!=" || peek().text == "<" ||
                                     peek().text == "<=" || peek().text == ">" || peek().text == ">=")) {
        const std::string& t = peek().text;
        op = t == "==" ? Op::eq : t == "!=" ? Op::ne : t == "<" ? Op::lt : t == "<=" ? Op::le : t == ">" ? Op::gt : Op::ge;
        next();
      } else if (is_name("in")) {
        op = Op::in;
        next();
      } else if (is_name("not") && is_name("in", 1)) {
        op = Op::not_in;
        next();
        next();
      } else {
        break;
      }
      if (!cmp) {
        cmp = node(ExprType::compare, loc);
        cmp->kids.push_back(std::move(first));
      }
      cmp->ops.push_back(op);
      cmp->kids.push_back(parse_math1());
    }
    return cmp ? std::move(cmp) : std::move(first);
  }

  ExprPtr parse_math1() {
    ExprPtr e = parse_concat();
    while (is_op("+") || is_op("-")) {
      const Token& t = next();
      const Op op = t.text == "+" ? Op::add : Op::sub;
      e = binary_node(ExprType::binary, std::move(e), parse_concat(), t.loc, op);
    }
    return e;
  }

  ExprPtr parse_concat() {
    const Loc loc = peek().loc;
    ExprPtr e = parse_math2();
    if (!is_op("~")) return e;
    auto c = node(ExprType::concat, loc);
    c->kids.push_back(std::move(e));
    while (is_op("~")) {
      next();
      c->kids.push_back(parse_math2());
    }
    return c;
  }

  ExprPtr parse_math2() {
    ExprPtr e = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const Token& t = next();
      const Op op = t.text == "*" ? Op::mul : t.text == "/" ? Op::div : t.text == "//" ? Op::floordiv : Op::mod;
      e = binary_node(ExprType::binary, std::move(e), parse_pow(), t.loc, op);
    }
    return e;
  }

  ExprPtr parse_pow() {
    ExprPtr e = parse_unary(true);
    while (is_op("**")) {
      const Loc loc = next().loc;
      e = binary_node(ExprType::binary, std::move(e), parse_unary(true), loc, Op::pow);
    }
    return e;
  }

  ExprPtr parse_unary(bool with_filter) {
    Nest nest(*this);
    ExprPtr e;
    if (is_op("-") || is_op("+")) {
      const Token& t = next();
      e = node(ExprType::unary, t.loc);
      e->op = t.text == "-" ? Op::neg : Op::pos;
      e->kids.push_back(parse_unary(false));
    } else {
      e = parse_primary();
    }
    e = parse_postfix(std::move(e));
    if (with_filter) e = parse_filter_expr(std::move(e));
    return e;
  }

  ExprPtr parse_primary() {
    const Token& t = peek();
    if (t.type == Tok::name) {
      const std::string& n = t.text;
      auto e = node(ExprType::literal, t.loc);
      if (n == "true" || n == "True") {
        e->value = Value(true);
      } else if (n == "false" || n == "False") {
        e->value = Value(false);
      } else if (n == "none" || n == "None") {
        e->value = Value::none();
      } else {
        e->type = ExprType::name;
        e->name = n;
      }
      next();
      return e;
    }
    if (t.type == Tok::string) {
      auto e = node(ExprType::literal, t.loc);
      std::string s;
      while (peek().type == Tok::string) s += next().text;  // adjacent literals concatenate
      e->value = Value(std::move(s));
      return e;
    }
    if (t.type == Tok::integer || t.type == Tok::real) {
      auto e = node(ExprType::literal, t.loc);
      e->value = next().number;
      return e;
    }
    if (is_op("(")) {
      next();
      ExprPtr e = parse_tuple(true, true);
      expect_op(")");
      return e;
    }
    if (is_op("[")) {
      auto e = node(ExprType::list, next().loc);
      while (!is_op("]")) {
        if (!e->kids.empty()) expect_op(",");
        if (is_op("]")) break;
        e->kids.push_back(parse_expression(true));
      }
      next();
      return e;
    }
    if (is_op("{")) {
      auto e = node(ExprType::dict, next().loc);
      while (!is_op("}")) {
        if (!e->kids.empty()) expect_op(",");
        if (is_op("}")) break;
        e->kids.push_back(parse_expression(true));
        expect_op(":");
        e->kids.push_back(parse_expression(true));
      }
      next();
      return e;
    }
    expected("an expression");
  }

  ExprPtr parse_postfix(ExprPtr e) {
    while (true) {
      if (is_op(".")) {
        const Loc loc = next().loc;
        if (peek().type == Tok::name) {
          auto a = node(ExprType::attr, loc);
          a->name = next().text;
          a->kids.push_back(std::move(e));
          e = std::move(a);
        } else if (peek().type == Tok::integer) {
          auto k = node(ExprType::literal, peek().loc);
          k->value = next().number;
          e = binary_node(ExprType::index, std::move(e), std::move(k), loc);
        } else {
          expected("an attribute name after '.'");
        }
      } else if (is_op("[")) {
        e = parse_subscript(std::move(e));
      } else if (is_op("(")) {
        e = parse_call(std::move(e));
      } else {
        return e;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr obj) {
    const Loc loc = next().loc;  // [
    ExprPtr start;
    if (!is_op(":")) {
      start = parse_expression(true);
      if (is_op("]")) {
        next();
        return binary_node(ExprType::index, std::move(obj), std::move(start), loc);
      }
    }
    auto s = node(ExprType::slice, loc);
    s->kids.push_back(std::move(obj));
    s->kids.push_back(std::move(start));
    expect_op(":");
    s->kids.push_back(is_op("]") || is_op(":") ? nullptr : parse_expression(true));
    if (is_op(":")) {
      next();
      s->kids.push_back(is_op("]") ? nullptr : parse_expression(true));
    } else {
      s->kids.push_back(nullptr);
    }
    expect_op("]");
    return s;
  }

  Args parse_args() {
    expect_op("(");
    Args args;
    while (!is_op(")")) {
      if (!args.positional.empty() || !args.keyword.empty()) expect_op(",");
      if (is_op(")")) break;
      if (is_op("*") || is_op("**")) fail(peek(), "*args and **kwargs are not supported by this Jinja subset");
      if (peek().type == Tok::name && is_op("=", 1)) {
        std::string key = next().text;
        next();
        args.keyword.emplace_back(std::move(key), parse_expression(true));
      } else {
        if (!args.keyword.empty()) fail(peek(), "positional argument after a keyword argument");
        args.positional.push_back(parse_expression(true));
      }
    }
    next();
    return args;
  }

  ExprPtr parse_call(ExprPtr callee) {
    auto c = node(ExprType::call, peek().loc);
    c->kids.push_back(std::move(callee));
    c->args = parse_args();
    return c;
  }

  ExprPtr parse_filter_expr(ExprPtr e) {
    while (true) {
      if (is_op("|")) {
        next();
        const Token& name = peek();
        if (name.type != Tok::name) expected("a filter name after '|'");
        if (!has_filter(name.text)) fail(name, fmt::format("no filter named '{}'", name.text));
        auto f = node(ExprType::filter, name.loc);
        f->name = next().text;
        f->kids.push_back(std::move(e));
        if (is_op("(")) f->args = parse_args();
        e = std::move(f);
      } else if (is_name("is")) {
        next();
        auto t = node(ExprType::test, peek().loc);
        if (is_name("not")) {
          next();
          t->negated = true;
        }
        const Token& name = peek();
        if (name.type != Tok::name) expected("a test name after 'is'");
        if (!has_test(name.text)) fail(name, fmt::format("no test named '{}'", name.text));
        t->loc = name.loc;
        t->name = next().text;
        t->kids.push_back(std::move(e));
        const Token& a = peek();
        if (is_op("(")) {
          t->args = parse_args();
        } else if ((a.type == Tok::name && a.text != "else" && a.text != "or" && a.text != "and") ||
                   a.type == Tok::string || a.type == Tok::integer || a.type == Tok::real || is_op("[") ||
                   is_op("{")) {
          if (is_name("is")) fail(a, "tests cannot be chained with 'is'");
          t->args.positional.push_back(parse_postfix(parse_primary()));
        }
        e = std::move(t);
      } else if (is_op("(")) {
        e = parse_call(std::move(e));
      } else {
        return e;
      }
    }
  }

  std::vector<Token> t_;
  size_t i_ = 0;
  const std::string& origin_;
  int depth_ = 0;
  int loop_depth_ = 0;
};

}  // namespace

Body parse_template(std::string_view source, const std::string& origin) {
  return Parser(Lexer(source, origin).run(), origin).parse();
}

}  // namespace tpp::jinja
