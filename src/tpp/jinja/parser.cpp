// Jinja recursive-descent parser over the lexer's tokens (lexer.cpp).
// The expression grammar and precedence are Jinja2's parser.py: filters and
// tests bind tighter than arithmetic, comparisons chain, ** is
// left-associative, and a `for` iterable is parsed without its `if` filter.
#include <algorithm>
#include <string_view>

#include <fmt/format.h>

#include "tpp/jinja/ast.h"

namespace tpp::jinja {
Expr::~Expr() {
  std::vector<ExprPtr> pending;
  auto take = [&](Expr& e) {
    for (auto& k : e.kids)
      if (k) pending.push_back(std::move(k));
    for (auto& k : e.args.positional)
      if (k) pending.push_back(std::move(k));
    for (auto& [name, k] : e.args.keyword)
      if (k) pending.push_back(std::move(k));
  };
  take(*this);
  while (!pending.empty()) {
    ExprPtr e = std::move(pending.back());
    pending.pop_back();
    take(*e);
  }  // each e is destroyed here with no children left
}

namespace {

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
        op = t == "==" ? Op::eq : t == "!=" ? Op::ne : t == "<" ? Op::lt : t == "<=" ? Op::le
             : t == ">" ? Op::gt : Op::ge;
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
  return Parser(lex(source, origin), origin).parse();
}

}  // namespace tpp::jinja
