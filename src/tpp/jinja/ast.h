// The Jinja engine's internals (shared by jinja*.cpp): the lexer's tokens, the
// syntax tree the parser (parser.cpp) builds and the evaluator
// (eval.cpp) walks, and the interpreter state builtins may use.
#pragma once

#include <cstdint>
#include <ctime>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tpp/jinja/jinja.h"
#include "tpp/jinja/value.h"

namespace tpp::jinja {

// 1-based line and column (in code points) in the template source.
struct Loc {
  int line = 1;
  int col = 1;
};

enum class Op {
  add, sub, mul, div, floordiv, mod, pow,  // arithmetic
  eq, ne, lt, le, gt, ge, in, not_in,      // comparisons
  neg, pos, not_,                          // unary
};

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Args {
  std::vector<ExprPtr> positional;
  std::vector<std::pair<std::string, ExprPtr>> keyword;
};

enum class ExprType {
  literal,  // value
  name,     // name
  list,     // kids: items
  tuple,    // kids: items (a list at run time)
  dict,     // kids: key0, value0, key1, value1, ...
  attr,     // kids[0].name
  index,    // kids[0][kids[1]]
  slice,    // kids[0][kids[1]:kids[2]:kids[3]]; missing parts are null
  call,     // kids[0](args)
  filter,   // kids[0] | name(args)
  test,     // kids[0] is [not] name(args); negated
  unary,    // op kids[0]
  binary,   // kids[0] op kids[1]
  compare,  // kids[0] ops[0] kids[1] ops[1] kids[2] ... (chained)
  and_,     // kids[0] and kids[1]
  or_,      // kids[0] or kids[1]
  concat,   // kids[0] ~ kids[1] ~ ...
  cond,     // kids[0] if kids[1] else kids[2] (kids[2] null: undefined)
};

struct Expr {
  ExprType type;
  Loc loc;
  Value value;               // literal
  std::string name;          // name, attr, filter, test
  Op op = Op::add;           // unary, binary
  std::vector<Op> ops;       // compare
  std::vector<ExprPtr> kids;
  Args args;                 // call, filter, test
  bool negated = false;      // test

  // Chains (a + b + ..., x | f | g ...) nest as deep as they are long, so
  // children are taken apart iteratively rather than by recursion.
  ~Expr();
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

enum class StmtType {
  text,       // text
  output,     // {{ expr }}
  if_,        // branches (cond null for else)
  for_,       // for targets in expr [if filter]: body [else else_body]
  set,        // targets = expr, or ns_attr: names[0].names[1] = expr
  set_block,  // {% set names[0] %}body{% endset %}
  macro,      // names[0](params) body
  break_,
  continue_,
  block,      // a body rendered in place ({% generation %})
};

struct Param {
  std::string name;
  ExprPtr default_value;  // null: none given
};

struct Stmt {
  StmtType type;
  Loc loc;
  std::string text;
  ExprPtr expr;
  ExprPtr filter;
  std::vector<std::string> names;  // for / set targets, macro name, namespace + attribute
  bool ns_attr = false;            // set: names = {namespace, attribute}
  bool unpack = false;             // for / set: a tuple target
  std::vector<std::pair<ExprPtr, Body>> branches;
  Body body, else_body;
  std::vector<Param> params;
};

// Lexer tokens: text between tags, tag delimiters, and expression tokens.
enum class Tok { text, var_begin, var_end, block_begin, block_end, name, string, integer, real, op, eof };

struct Token {
  Tok type;
  std::string text;  // text content, name, operator or decoded string literal
  Value number;      // integer / real
  Loc loc;
};

// Splits a template into tokens (lexer.cpp). Throws tpp::Error located in `origin`.
std::vector<Token> lex(std::string_view source, const std::string& origin);

struct Template::Impl {
  std::string origin;
  Body body;
};

// Parses a whole template (parser.cpp). Throws tpp::Error located in `origin`.
Body parse_template(std::string_view source, const std::string& origin);

// Filter, test and method tables (builtins.cpp).
bool has_filter(std::string_view name);
bool has_test(std::string_view name);
Value apply_filter(Interp& interp, std::string_view name, const Value& operand, CallArgs& args);
bool apply_test(Interp& interp, std::string_view name, const Value& operand, CallArgs& args);
// obj.name for a method of str, dict or list; an undefined Value when there is none.
Value bound_method(const Value& self, std::string_view name);
// The global functions: range, namespace, dict, raise_exception, strftime_now.
std::vector<std::pair<std::string, Value>> global_functions();
// Jinja's attribute / item lookup: environment.getattr (obj.name) and
// environment.getitem (obj[key]). Errors only for an Undefined obj.
Value get_attr(const Value& obj, std::string_view name);
Value get_item(const Value& obj, const Value& key);

// One render: variable frames, the output buffer and the guards. Builtins use
// it to call macros, raise located errors and read the clock.
class Interp {
 public:
  Interp(const Template::Impl& tpl, const RenderOptions& options);
  std::string run(const Value& context);

  // raise_exception(message) at the expression being evaluated.
  [[noreturn]] void raise(const std::string& message) const;
  std::tm now() const;
  // A variable frame: a for-loop iteration, a macro call, the template's top level.
  struct Frame {
    Frame* parent = nullptr;
    std::vector<std::pair<std::string, Value>> vars;
    Value* find(std::string_view name);
    void set(std::string_view name, Value value);
  };
  // Calls a macro; `closure` holds the variables of the loops it was defined
  // in (null at the top level), above the template's top-level frame.
  Value call_macro(const Stmt& macro, Frame* closure, CallArgs& args);
  // Refuses strings and outputs over max_output_bytes.
  void check_size(size_t bytes) const;
  // Counts loop iterations (and range() elements) against max_loop_iterations.
  void count_iterations(int64_t n);
  // Refuses to go deeper once the render has used max_stack_bytes of stack.
  void check_stack() const;

 private:
  enum class Flow { normal, break_, continue_ };

  Flow exec(const Body& body);
  Flow exec(const Stmt& s);
  Flow exec_for(const Stmt& s);
  void assign(const Stmt& s, Value value);
  Value eval(const Expr& e);
  Value eval_impl(const Expr& e);
  Value eval_compare(const Expr& e);
  CallArgs eval_args(const Args& args);
  Value lookup(const std::string& name);
  [[noreturn]] void fail_at(Loc loc, const std::string& message) const;

  const Template::Impl& tpl_;
  const RenderOptions& options_;
  std::string* out_ = nullptr;
  Frame* frame_ = nullptr;
  Frame* template_frame_ = nullptr;  // top-level {% set %}s; macros run above it
  Loc loc_;                          // the expression being evaluated
  uintptr_t stack_base_ = 0;         // an address near the bottom of the render's stack
  int call_depth_ = 0;
  int64_t iterations_ = 0;
};

}  // namespace tpp::jinja
