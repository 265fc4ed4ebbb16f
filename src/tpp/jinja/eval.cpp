// The Jinja evaluator: walks the syntax tree with a chain of variable frames.
//
// Scoping follows Jinja2: a for loop's body runs in a fresh frame each
// iteration (a {% set %} inside it is gone after the iteration, hence
// namespace()), if-blocks share their enclosing frame, and a macro body runs in
// its own frame above the template's top-level variables. Operators follow
// Python: int / float / bool arithmetic, str and list concatenation and
// repetition, floor division and modulo rounding toward negative infinity.
#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "tpp/jinja/ast.h"

namespace tpp::jinja {
namespace {

class Macro : public Callable {
 public:
  Macro(const Stmt& def, std::unique_ptr<Interp::Frame> closure) : def_(def), closure_(std::move(closure)) {}
  Value call(Interp& interp, CallArgs& args) const override { return interp.call_macro(def_, closure_.get(), args); }
  std::string name() const override { return def_.names[0]; }

 private:
  const Stmt& def_;
  std::unique_ptr<Interp::Frame> closure_;
};

// loop.cycle(a, b, ...): the argument at the iteration's index, round robin.
class Cycle : public Callable {
 public:
  explicit Cycle(int64_t index0) : index0_(index0) {}
  Value call(Interp&, CallArgs& args) const override {
    if (args.positional.empty()) throw EvalError("no items for cycling given");
    return args.positional[size_t(index0_ % int64_t(args.positional.size()))];
  }
  std::string name() const override { return "cycle"; }

 private:
  int64_t index0_;
};

int64_t as_py_int(const Value& v) { return v.is_bool() ? int64_t(v.as_bool()) : v.as_int(); }
bool is_py_int(const Value& v) { return v.is_bool() || v.is_int(); }

[[noreturn]] void unsupported(const char* op, const Value& a, const Value& b) {
  require_defined(a);
  require_defined(b);
  throw EvalError(fmt::format("unsupported operand type(s) for {}: '{}' and '{}'", op, type_name(a), type_name(b)));
}

Value checked(bool overflow, int64_t r) {
  if (overflow) throw EvalError("integer overflow (this Jinja subset has 64-bit integers)");
  return Value(r);
}

Value repeat(const Value& seq, int64_t n, Interp& interp) {
  if (seq.is_string()) {
    if (n <= 0 || seq.str().empty()) return Value(std::string());
    size_t bytes = 0;
    if (__builtin_mul_overflow(seq.str().size(), uint64_t(n), &bytes)) bytes = SIZE_MAX;
    interp.check_size(bytes);
    std::string out;
    for (int64_t i = 0; i < n; ++i) out += seq.str();
    return Value(std::move(out));
  }
  if (n <= 0 || seq.list().empty()) return Value(List{});
  int64_t items = 0;
  if (__builtin_mul_overflow(int64_t(seq.list().size()), n, &items)) items = INT64_MAX;
  interp.count_iterations(items);
  List out;
  for (int64_t i = 0; i < n; ++i) out.insert(out.end(), seq.list().begin(), seq.list().end());
  return Value(std::move(out));
}

Value arithmetic(Op op, const Value& a, const Value& b, Interp& interp) {
  const bool ints = is_py_int(a) && is_py_int(b);
  const bool nums = a.is_number() && b.is_number();
  switch (op) {
    case Op::add: {
      if (ints) {
        int64_t r = 0;
        const bool overflow = __builtin_add_overflow(as_py_int(a), as_py_int(b), &r);
        return checked(overflow, r);
      }
      if (nums) return Value(a.number() + b.number());
      if (a.is_string() && b.is_string()) {
        interp.check_size(a.str().size() + b.str().size());
        return Value(a.str() + b.str());
      }
      if (a.is_list() && b.is_list()) {
        interp.count_iterations(int64_t(a.list().size() + b.list().size()));  // the copy's cost
        List out = a.list();
        out.insert(out.end(), b.list().begin(), b.list().end());
        return Value(std::move(out));
      }
      require_defined(a);
      require_defined(b);
      if (a.is_string() || a.is_list())
        throw EvalError(
            fmt::format("can only concatenate {} (not \"{}\") to {}", type_name(a), type_name(b), type_name(a)));
      unsupported("+", a, b);
    }
    case Op::sub: {
      if (ints) {
        int64_t r = 0;
        const bool overflow = __builtin_sub_overflow(as_py_int(a), as_py_int(b), &r);
        return checked(overflow, r);
      }
      if (nums) return Value(a.number() - b.number());
      unsupported("-", a, b);
    }
    case Op::mul: {
      if (ints) {
        int64_t r = 0;
        const bool overflow = __builtin_mul_overflow(as_py_int(a), as_py_int(b), &r);
        return checked(overflow, r);
      }
      if (nums) return Value(a.number() * b.number());
      if ((a.is_string() || a.is_list()) && is_py_int(b)) return repeat(a, as_py_int(b), interp);
      if (is_py_int(a) && (b.is_string() || b.is_list())) return repeat(b, as_py_int(a), interp);
      unsupported("*", a, b);
    }
    case Op::div: {
      if (!nums) unsupported("/", a, b);
      if (b.number() == 0) throw EvalError("division by zero");
      return Value(a.number() / b.number());
    }
    case Op::floordiv:
    case Op::mod: {
      if (a.is_string() && op == Op::mod)
        throw EvalError("string formatting with % is not supported by this Jinja subset");
      if (!nums) unsupported(op == Op::mod ? "%" : "//", a, b);
      if (b.number() == 0) throw EvalError(op == Op::mod ? "modulo by zero" : "division by zero");
      if (ints) {
        const int64_t x = as_py_int(a), y = as_py_int(b);
        if (x == INT64_MIN && y == -1) {
          if (op == Op::mod) return Value(int64_t(0));
          throw EvalError("integer overflow (this Jinja subset has 64-bit integers)");
        }
        int64_t q = x / y, r = x % y;
        if (r != 0 && ((r < 0) != (y < 0))) {
          q -= 1;
          r += y;
        }
        return op == Op::mod ? Value(r) : Value(q);
      }
      const double x = a.number(), y = b.number();
      if (op == Op::floordiv) return Value(std::floor(x / y));
      double r = std::fmod(x, y);
      if (r != 0 && ((r < 0) != (y < 0))) r += y;
      return Value(r);
    }
    case Op::pow: {
      if (!nums) unsupported("**", a, b);
      if (ints && as_py_int(b) >= 0) {
        int64_t r = 1, base = as_py_int(a);
        for (int64_t e = as_py_int(b); e > 0; e >>= 1) {
          if (e & 1)
            if (__builtin_mul_overflow(r, base, &r)) return checked(true, 0);
          if (e > 1 && __builtin_mul_overflow(base, base, &base)) return checked(true, 0);
        }
        return Value(r);
      }
      return Value(std::pow(a.number(), b.number()));
    }
    default: break;
  }
  throw EvalError("internal error: bad arithmetic operator");
}

bool contains(const Value& container, const Value& item) {
  switch (container.kind()) {
    case Value::Kind::string:
      if (!item.is_string())
        throw EvalError(fmt::format("'in <string>' requires string as left operand, not {}", type_name(item)));
      return container.str().find(item.str()) != std::string::npos;
    case Value::Kind::list:
      return std::any_of(container.list().begin(), container.list().end(),
                         [&](const Value& v) { return equals(v, item); });
    case Value::Kind::dict: return item.is_string() && container.dict().find(item.str()) != nullptr;
    case Value::Kind::undefined: return false;  // iterates as empty
    default:
      throw EvalError(fmt::format("argument of type '{}' is not iterable", type_name(container)));
  }
}

bool compare(Op op, const Value& a, const Value& b) {
  switch (op) {
    case Op::eq: return equals(a, b);
    case Op::ne: return !equals(a, b);
    case Op::lt: return less(a, b);
    case Op::le: return less(a, b) || equals(a, b);
    case Op::gt: return less(b, a);
    case Op::ge: return less(b, a) || equals(a, b);
    case Op::in: return contains(b, a);
    case Op::not_in: return !contains(b, a);
    default: throw EvalError("internal error: bad comparison operator");
  }
}

// Python slicing seq[start:stop:step] over n elements; returns the indices.
std::vector<size_t> slice_indices(size_t n, const Value& start, const Value& stop, const Value& step) {
  auto as_index = [](const Value& v, const char* what) -> std::optional<int64_t> {
    if (v.is_none() || v.is_undefined()) return std::nullopt;
    if (!is_py_int(v)) throw EvalError(fmt::format("slice {} must be an integer or none, not {}", what, type_name(v)));
    return as_py_int(v);
  };
  const int64_t len = int64_t(n);
  const int64_t st = as_index(step, "step").value_or(1);
  if (st == 0) throw EvalError("slice step cannot be zero");
  auto clamp = [&](std::optional<int64_t> v, int64_t dflt) {
    if (!v) return dflt;
    int64_t x = *v < 0 ? *v + len : *v;
    if (st > 0) return std::clamp<int64_t>(x, 0, len);
    return std::clamp<int64_t>(x, -1, len - 1);
  };
  const int64_t b = clamp(as_index(start, "start"), st > 0 ? 0 : len - 1);
  const int64_t e = clamp(as_index(stop, "stop"), st > 0 ? len : -1);
  std::vector<size_t> out;
  for (int64_t i = b; st > 0 ? i < e : i > e;) {
    out.push_back(size_t(i));
    const __int128 next = __int128(i) + st;  // a huge step must not wrap
    if (st > 0 ? next >= e : next <= e) break;
    i = int64_t(next);
  }
  return out;
}

Value slice(const Value& obj, const Value& start, const Value& stop, const Value& step) {
  require_defined(obj);
  if (obj.is_list()) {
    List out;
    for (size_t i : slice_indices(obj.list().size(), start, stop, step)) out.push_back(obj.list()[i]);
    return Value(std::move(out));
  }
  if (obj.is_string()) {
    const std::u32string cps = decode_utf8(obj.str());
    std::u32string out;
    for (size_t i : slice_indices(cps.size(), start, stop, step)) out += cps[i];
    return Value(encode_utf8(out));
  }
  throw EvalError(fmt::format("'{}' object is not subscriptable", type_name(obj)));
}

}  // namespace

Value* Interp::Frame::find(std::string_view name) {
  for (auto& [k, v] : vars)
    if (k == name) return &v;
  return nullptr;
}

void Interp::Frame::set(std::string_view name, Value value) {
  if (Value* v = find(name)) {
    *v = std::move(value);
    return;
  }
  vars.emplace_back(std::string(name), std::move(value));
}

Interp::Interp(const Template::Impl& tpl, const RenderOptions& options) : tpl_(tpl), options_(options) {}

std::string Interp::run(const Value& context) {
  char base = 0;
  stack_base_ = reinterpret_cast<uintptr_t>(&base);
  const TextLimit text_limit(options_.max_output_bytes);
  Frame globals;
  for (auto& [name, fn] : global_functions()) globals.set(name, std::move(fn));
  Frame ctx{&globals, {}};
  for (const auto& [k, v] : context.dict().items()) ctx.set(k, v);
  Frame top{&ctx, {}};
  std::string out;
  out_ = &out;
  frame_ = template_frame_ = &top;
  exec(tpl_.body);
  return out;
}

[[noreturn]] void Interp::fail_at(Loc loc, const std::string& message) const {
  throw Error(fmt::format("{}:{}:{}: {}", tpl_.origin, loc.line, loc.col, message));
}

void Interp::raise(const std::string& message) const {
  throw RaisedError(fmt::format("{}:{}:{}: {}", tpl_.origin, loc_.line, loc_.col, message), message);
}

std::tm Interp::now() const {
  if (options_.now) return options_.now();
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  return tm;
}

void Interp::check_size(size_t bytes) const {
  if (bytes > options_.max_output_bytes)
    throw EvalError(fmt::format("output or string of {} bytes exceeds the limit of {} bytes", bytes,
                                options_.max_output_bytes));
}

void Interp::check_stack() const {
  char here = 0;
  const uintptr_t at = reinterpret_cast<uintptr_t>(&here);
  const uintptr_t used = at < stack_base_ ? stack_base_ - at : at - stack_base_;
  if (used > options_.max_stack_bytes)
    throw EvalError(fmt::format("nesting and recursion used more than {} bytes of stack (runaway recursion?)",
                                options_.max_stack_bytes));
}

void Interp::count_iterations(int64_t n) {
  if (n < 0 || n > options_.max_loop_iterations - iterations_) iterations_ = options_.max_loop_iterations + 1;
  else iterations_ += n;
  if (n < 0 || iterations_ > options_.max_loop_iterations)
    throw EvalError(fmt::format("more than {} loop iterations (runaway loop?)", options_.max_loop_iterations));
}

Value Interp::lookup(const std::string& name) {
  for (Frame* f = frame_; f; f = f->parent)
    if (Value* v = f->find(name)) return *v;
  return Value::undefined(fmt::format("'{}' is undefined", name));
}

Interp::Flow Interp::exec(const Body& body) {
  for (const auto& s : body) {
    const Flow flow = exec(*s);
    if (flow != Flow::normal) return flow;
  }
  return Flow::normal;
}

Interp::Flow Interp::exec(const Stmt& s) {
  switch (s.type) {
    case StmtType::text:
      *out_ += s.text;
      break;
    case StmtType::output:
      *out_ += to_str(eval(*s.expr));
      break;
    case StmtType::if_:
      for (const auto& [cond, body] : s.branches)
        if (!cond || truthy(eval(*cond))) return exec(body);
      break;
    case StmtType::for_: return exec_for(s);
    case StmtType::set: assign(s, eval(*s.expr)); break;
    case StmtType::set_block: {
      std::string text;
      std::string* saved = out_;
      out_ = &text;
      const Flow flow = exec(s.body);
      out_ = saved;
      assign(s, Value(std::move(text)));
      return flow;
    }
    case StmtType::macro: {
      // Inside loops the macro closes over the loops' variables (copied now:
      // the frames end with their iterations); the top level it reads live.
      std::unique_ptr<Frame> closure;
      if (frame_ != template_frame_) {
        closure = std::make_unique<Frame>();
        closure->parent = template_frame_;
        for (Frame* f = frame_; f != template_frame_; f = f->parent)
          for (const auto& [name, v] : f->vars)
            if (!closure->find(name)) closure->set(name, v);
      }
      frame_->set(s.names[0], Value(CallablePtr(std::make_shared<Macro>(s, std::move(closure)))));
      break;
    }
    case StmtType::break_: return Flow::break_;
    case StmtType::continue_: return Flow::continue_;
    case StmtType::block: return exec(s.body);
  }
  if (out_->size() > options_.max_output_bytes) {
    try {
      check_size(out_->size());
    } catch (const EvalError& e) {
      fail_at(s.loc, e.what());
    }
  }
  return Flow::normal;
}

void Interp::assign(const Stmt& s, Value value) {
  try {
    if (s.ns_attr) {
      const Value ns = lookup(s.names[0]);
      if (!ns.is_namespace())
        throw EvalError(fmt::format("cannot assign attribute '{}' on '{}': not a namespace()", s.names[1], s.names[0]));
      if (holds_namespace(value))
        throw EvalError(
            fmt::format("namespace attribute '{}' cannot hold a namespace in this Jinja subset", s.names[1]));
      if (value_depth(value) + 1 > kMaxValueDepth)
        throw EvalError(fmt::format("value nested deeper than {} levels", kMaxValueDepth));
      ns.ns().set(s.names[1], std::move(value));
    } else if (s.unpack) {
      if (!value.is_list())
        throw EvalError(fmt::format("cannot unpack a '{}' into {} names", type_name(value), s.names.size()));
      if (value.list().size() != s.names.size())
        throw EvalError(fmt::format("expected {} values to unpack, got {}", s.names.size(), value.list().size()));
      for (size_t i = 0; i < s.names.size(); ++i) frame_->set(s.names[i], value.list()[i]);
    } else {
      frame_->set(s.names[0], std::move(value));
    }
  } catch (const EvalError& e) {
    fail_at(s.loc, e.what());
  }
}

Interp::Flow Interp::exec_for(const Stmt& s) {
  List items;
  try {
    items = to_list(eval(*s.expr));
  } catch (const EvalError& e) {
    fail_at(s.expr->loc, e.what());
  }
  Frame* outer = frame_;
  struct Restore {
    Interp& in;
    Frame* f;
    ~Restore() { in.frame_ = f; }
  } restore{*this, outer};
  if (s.filter) {  // for x in xs if cond: filtered before the loop variable is built
    List kept;
    for (const Value& item : items) {
      Frame f{outer, {}};
      frame_ = &f;
      assign(s, item);
      if (truthy(eval(*s.filter))) kept.push_back(item);
    }
    items = std::move(kept);
  }
  if (items.empty()) {
    Frame f{outer, {}};
    frame_ = &f;
    return exec(s.else_body);
  }
  const int64_t n = int64_t(items.size());
  for (int64_t i = 0; i < n; ++i) {
    try {
      count_iterations(1);
    } catch (const EvalError& e) {
      fail_at(s.loc, e.what());
    }
    Frame f{outer, {}};
    frame_ = &f;
    assign(s, items[size_t(i)]);
    Dict loop;
    loop.set("index", Value(i + 1));
    loop.set("index0", Value(i));
    loop.set("revindex", Value(n - i));
    loop.set("revindex0", Value(n - i - 1));
    loop.set("first", Value(i == 0));
    loop.set("last", Value(i == n - 1));
    loop.set("length", Value(n));
    loop.set("previtem", i > 0 ? items[size_t(i - 1)] : Value::undefined("there is no previous item"));
    loop.set("nextitem", i + 1 < n ? items[size_t(i + 1)] : Value::undefined("there is no next item"));
    loop.set("depth", Value(1));
    loop.set("depth0", Value(0));
    loop.set("cycle", Value(CallablePtr(std::make_shared<Cycle>(i))));
    f.set("loop", Value(std::move(loop)));
    if (exec(s.body) == Flow::break_) break;
  }
  return Flow::normal;
}

Value Interp::call_macro(const Stmt& m, Frame* closure, CallArgs& args) {
  if (call_depth_ >= options_.max_call_depth)
    throw EvalError(fmt::format("macro calls nested deeper than {} (runaway recursion?)", options_.max_call_depth));
  if (args.positional.size() > m.params.size())
    throw EvalError(fmt::format("macro '{}' takes not more than {} argument(s)", m.names[0], m.params.size()));
  Frame f{closure ? closure : template_frame_, {}};
  std::vector<bool> given(m.params.size(), false);
  for (size_t i = 0; i < args.positional.size(); ++i) {
    f.set(m.params[i].name, args.positional[i]);
    given[i] = true;
  }
  for (auto& [key, v] : args.keyword) {
    const auto it = std::find_if(m.params.begin(), m.params.end(), [&](const Param& p) { return p.name == key; });
    if (it == m.params.end())
      throw EvalError(fmt::format("macro '{}' takes no keyword argument '{}'", m.names[0], key));
    const size_t i = size_t(it - m.params.begin());
    if (given[i]) throw EvalError(fmt::format("macro '{}' got multiple values for argument '{}'", m.names[0], key));
    f.set(key, v);
    given[i] = true;
  }
  std::string text;
  struct Restore {
    Interp& in;
    Frame* frame;
    std::string* out;
    Loc loc;
    ~Restore() {
      in.frame_ = frame;
      in.out_ = out;
      in.loc_ = loc;
      --in.call_depth_;
    }
  } restore{*this, frame_, out_, loc_};
  ++call_depth_;
  frame_ = &f;
  for (size_t i = 0; i < m.params.size(); ++i) {
    if (given[i]) continue;
    f.set(m.params[i].name, m.params[i].default_value
                                ? eval(*m.params[i].default_value)
                                : Value::undefined(fmt::format("parameter '{}' was not provided", m.params[i].name)));
  }
  out_ = &text;
  exec(m.body);
  return Value(std::move(text));
}

CallArgs Interp::eval_args(const Args& args) {
  CallArgs out;
  for (const auto& a : args.positional) out.positional.push_back(eval(*a));
  for (const auto& [k, a] : args.keyword) out.keyword.emplace_back(k, eval(*a));
  return out;
}

Value Interp::eval(const Expr& e) {
  try {
    check_stack();
    return eval_impl(e);
  } catch (const EvalError& err) {
    fail_at(e.loc, err.what());
  }
}

Value Interp::eval_compare(const Expr& e) {
  Value left = eval(*e.kids[0]);
  for (size_t i = 0; i < e.ops.size(); ++i) {
    Value right = eval(*e.kids[i + 1]);
    // A membership test scans the list: its length counts as loop work.
    if ((e.ops[i] == Op::in || e.ops[i] == Op::not_in) && right.is_list())
      count_iterations(int64_t(right.list().size()));
    if (!compare(e.ops[i], left, right)) return Value(false);
    left = std::move(right);
  }
  return Value(true);
}

Value Interp::eval_impl(const Expr& e) {
  switch (e.type) {
    case ExprType::literal: return e.value;
    case ExprType::name: return lookup(e.name);
    case ExprType::list:
    case ExprType::tuple: {
      List items;
      items.tuple = e.type == ExprType::tuple;
      for (const auto& k : e.kids) items.push_back(eval(*k));
      return Value(std::move(items));
    }
    case ExprType::dict: {
      Dict d;
      for (size_t i = 0; i < e.kids.size(); i += 2) {
        const Value key = eval(*e.kids[i]);
        if (!key.is_string())
          throw EvalError(fmt::format("dict keys must be strings in this Jinja subset, not {}", type_name(key)));
        d.set(key.str(), eval(*e.kids[i + 1]));
      }
      return Value(std::move(d));
    }
    case ExprType::attr: return get_attr(eval(*e.kids[0]), e.name);
    case ExprType::index: {
      Value obj = eval(*e.kids[0]);
      // s[i] decodes the string to find its i-th character: that work counts
      // towards the loop budget (a byte in 64 of the string, one at least).
      if (obj.is_string()) count_iterations(int64_t(obj.str().size() / 64) + 1);
      return get_item(obj, eval(*e.kids[1]));
    }
    case ExprType::slice: {
      const Value obj = eval(*e.kids[0]);
      auto part = [&](size_t i) { return e.kids[i] ? eval(*e.kids[i]) : Value::none(); };
      return slice(obj, part(1), part(2), part(3));
    }
    case ExprType::call: {
      const Value callee = eval(*e.kids[0]);
      CallArgs args = eval_args(e.args);
      require_defined(callee);
      if (!callee.is_callable()) throw EvalError(fmt::format("'{}' object is not callable", type_name(callee)));
      loc_ = e.loc;
      return callee.callable().call(*this, args);
    }
    case ExprType::filter: {
      const Value operand = eval(*e.kids[0]);
      CallArgs args = eval_args(e.args);
      loc_ = e.loc;
      return apply_filter(*this, e.name, operand, args);
    }
    case ExprType::test: {
      const Value operand = eval(*e.kids[0]);
      CallArgs args = eval_args(e.args);
      loc_ = e.loc;
      return Value(apply_test(*this, e.name, operand, args) != e.negated);
    }
    case ExprType::unary: {
      const Value v = eval(*e.kids[0]);
      if (e.op == Op::not_) return Value(!truthy(v));
      require_defined(v);
      if (!v.is_number())
        throw EvalError(fmt::format("bad operand type for unary {}: '{}'", e.op == Op::neg ? '-' : '+', type_name(v)));
      if (e.op == Op::pos) return v.is_bool() ? Value(as_py_int(v)) : v;
      if (v.is_real()) return Value(-v.as_real());
      return checked(as_py_int(v) == INT64_MIN, -as_py_int(v));
    }
    case ExprType::binary: {
      const Value a = eval(*e.kids[0]);
      const Value b = eval(*e.kids[1]);
      return arithmetic(e.op, a, b, *this);
    }
    case ExprType::compare: return eval_compare(e);
    case ExprType::and_: {
      Value a = eval(*e.kids[0]);
      return truthy(a) ? eval(*e.kids[1]) : a;
    }
    case ExprType::or_: {
      Value a = eval(*e.kids[0]);
      return truthy(a) ? a : eval(*e.kids[1]);
    }
    case ExprType::concat: {
      std::string s;
      for (const auto& k : e.kids) {
        s += to_str(eval(*k));
        check_size(s.size());
      }
      return Value(std::move(s));
    }
    case ExprType::cond: {
      if (truthy(eval(*e.kids[1]))) return eval(*e.kids[0]);
      if (e.kids[2]) return eval(*e.kids[2]);
      return Value::undefined(
          fmt::format("the inline if-expression at {}:{} was false and has no else", e.loc.line, e.loc.col));
    }
  }
  throw EvalError("internal error: bad expression");
}

// ---- Template ----

Template::Template(std::string_view source, std::string origin) : impl_(std::make_unique<Impl>()) {
  impl_->origin = std::move(origin);
  impl_->body = parse_template(source, impl_->origin);
}

std::string Template::render(const nlohmann::ordered_json& context, const RenderOptions& options) const {
  if (!context.is_object())
    throw Error(
        fmt::format("{}: the render context must be a JSON object, got {}", impl_->origin, context.type_name()));
  Value ctx;
  try {
    ctx = from_json(context);
  } catch (const EvalError& e) {
    throw Error(fmt::format("{}: render context: {}", impl_->origin, e.what()));
  }
  Interp interp(*impl_, options);
  return interp.run(ctx);
}

const std::string& Template::origin() const { return impl_->origin; }

Template::Template(Template&&) noexcept = default;
Template& Template::operator=(Template&&) noexcept = default;
Template::~Template() = default;

}  // namespace tpp::jinja
