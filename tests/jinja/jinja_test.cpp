// The Jinja engine feature by feature: whitespace control as HF configures it,
// expressions with Python semantics, statements and scoping, filters, tests,
// methods, globals, Undefined, located errors and the runaway guards. The
// expected strings are what Python Jinja2 3.1 renders with trim_blocks and
// lstrip_blocks (checked against it when these cases were written).
#include <cstdint>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/test_util.h"
#include "tpp/core/error.h"
#include "tpp/jinja/jinja.h"
#include "tpp/io/mapped_file.h"

namespace tpp::jinja {
namespace {

using Json = nlohmann::ordered_json;

std::string render(std::string_view src, const Json& ctx = Json::object(), const RenderOptions& opt = {}) {
  return Template(src, "t").render(ctx, opt);
}

// The error message of parsing or rendering `src`; fails the test if none.
std::string error_of(std::string_view src, const Json& ctx = Json::object(), const RenderOptions& opt = {}) {
  try {
    render(src, ctx, opt);
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no error for: " << src;
  return "";
}

struct Case {
  const char* src;
  const char* expected;
};

void expect_all(std::initializer_list<Case> cases, const Json& ctx = Json::object()) {
  for (const Case& c : cases) {
    try {
      EXPECT_EQ(render(c.src, ctx), c.expected) << "template: " << c.src;
    } catch (const Error& e) {
      ADD_FAILURE() << "template: " << c.src << "\nthrew: " << e.what();
    }
  }
}

TEST(ChatJinjaTest, TextAndWhitespaceControl) {
  expect_all({
      {"plain text", "plain text"},
      {"a  {{- 'b' -}}  c", "abc"},
      {"a \n {%- if true -%} \n b \n {%- endif %}", "ab"},
      {"x\n", "x"},                    // one trailing newline is dropped
      {"x\n\n", "x\n"},
      {"a\r\nb\rc", "a\nb\nc"},        // newlines normalized
      {"{% if true %}\nyes\n{% endif %}\nafter", "yes\nafter"},  // trim_blocks
      {"  {% if true %}\n  x\n  {% endif %}\nend", "  x\nend"},   // lstrip_blocks
      {"  {{ 'v' }}\n", "  v"},        // variable tags are not lstripped
      {"ab  {% if true %}c{% endif %}", "ab  c"},  // only at the start of a line
      {"  {%+ if true %}x{% endif %}", "  x"},     // + keeps the indentation
      {"{% if true +%}\nx{% endif %}", "\nx"},     // + keeps the newline
      {"a\n  {# comment #}\nb", "a\nb"},
      {"a{#- c -#}  b", "ab"},
      {"{{ 'x' }}\ny", "x\ny"},         // no trim after a variable tag
      {"{% raw %}{{ x }}{% if %}{% endraw %}", "{{ x }}{% if %}"},
      {"{%- raw -%}  {{ y }}  {%- endraw %}", "{{ y }}"},
      {"{% generation %}kept{% endgeneration %}", "kept"},  // transformers' AssistantTracker tag
  });
}

TEST(ChatJinjaTest, LiteralsAndArithmetic) {
  expect_all({
      {"{{ 'a\\tb\\n' ~ \"it's\" ~ '\\u00e9\\x41' }}", "a\tb\nit'sé" "A"},
      {"{{ 'a' 'b' }}", "ab"},
      {"{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 2 ** 10 }} {{ 1_000 }}", "7 9 1024 1000"},
      {"{{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 7 % -3 }} {{ 7 / 2 }} {{ 4 / 2 }}", "3 -4 2 -2 3.5 2.0"},
      {"{{ 1.0 }} {{ 1e20 }} {{ 0.1 + 0.2 }} {{ 1.5e-7 }} {{ 1e15 }}",
       "1.0 1e+20 0.30000000000000004 1.5e-07 1000000000000000.0"},
      {"{{ true }} {{ false }} {{ none }} {{ True }} {{ None }}", "True False None True None"},
      {"{{ true + 1 }} {{ -(3) }} {{ +2 }}", "2 -3 2"},
      {"{{ [1, 'a', none, true, 1.5] }} {{ {'a': 1, 'b': [2]} }} {{ (1, 2) }}",
       "[1, 'a', None, True, 1.5] {'a': 1, 'b': [2]} (1, 2)"},
      {"{{ (1,) }} {{ (1, 2) == [1, 2] }} {{ (1, 2) == (1, 2) }} {{ () }}", "(1,) False True ()"},
      {"{{ 'a' ~ 1 ~ none ~ undefined_thing }}", "a1None"},
      {"{{ 'ab' * 3 }} {{ [1] * 2 }} {{ [1] + [2] }}", "ababab [1, 1] [1, 2]"},
      {"{{ -1 | abs }}", "1"},         // (-1)|abs: the filter binds after unary minus
      {"{{ 'a' + ' b ' | trim }}", "ab"},  // and before +
  });
}

TEST(ChatJinjaTest, ComparisonsAndLogic) {
  expect_all({
      {"{{ 1 < 2 < 3 }} {{ 1 < 3 < 2 }} {{ 1 == 1.0 }} {{ 'a' != 'b' }} {{ 2 >= 2 }}", "True False True True True"},
      {"{{ 'b' in 'abc' }} {{ 2 in [1, 2] }} {{ 'k' in {'k': 1} }} {{ 3 not in [1] }}", "True True True True"},
      {"{{ [1, [2]] == [1, [2]] }} {{ {'a': 1, 'b': 2} == {'b': 2, 'a': 1} }}", "True True"},
      {"{{ 0 or 'x' }}|{{ 1 and 'y' }}|{{ '' and 'z' }}|{{ not 0 }}", "x|y||True"},
      {"{{ 'y' if 1 else 'n' }} {{ 'y' if 0 else 'n' }} [{{ 'y' if 0 }}]", "y n []"},
      {"{{ 'b' > 'a' }} {{ [1, 2] < [1, 3] }}", "True True"},
  });
}

TEST(ChatJinjaTest, SubscriptsSlicesAndAttributes) {
  const Json ctx = {{"s", "abcdef"}, {"u", "h\u00e9llo"}, {"xs", {1, 2, 3, 4}}, {"d", {{"a", 1}, {"k", {{"n", "v"}}}}}};
  expect_all({
      {"{{ s[1:3] }} {{ s[::-1] }} {{ s[-2:] }} {{ s[::2] }} {{ s[:-1] }} {{ s[4:2] }}|", "bc fedcba ef ace abcde |"},
      {"{{ xs[1:] }} {{ xs[::-1] }} {{ xs[-1] }} {{ xs.0 }} {{ xs[10] }}|", "[2, 3, 4] [4, 3, 2, 1] 4 1 |"},
      {"{{ u[1:3] }} {{ u | length }} {{ u[1] }} {{ u[::-1] }}", "\u00e9l 5 \u00e9 oll\u00e9h"},
      {"{{ d.a }} {{ d['a'] }} {{ d.k.n }} {{ d['k']['n'] }} [{{ d.missing }}]", "1 1 v v []"},
  }, ctx);
}

TEST(ChatJinjaTest, IfForAndLoopVariable) {
  const Json ctx = {{"d", {{"b", 1}, {"a", 2}}}};
  expect_all({
      {"{% if 0 %}a{% elif 1 %}b{% else %}c{% endif %}", "b"},
      {"{% for x in ['a','b','c'] %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}"
       "{{ loop.length }}{{ loop.revindex }}{{ loop.revindex0 }}|{% endfor %}",
       "10TrueFalse332|21FalseFalse321|32FalseTrue310|"},
      {"{% for x in [1, 2, 3] %}{{ loop.previtem }}-{{ loop.nextitem }};{% endfor %}", "-2;1-3;2-;"},
      {"{% for x in range(5) %}{{ loop.cycle('a', 'b') }}{% endfor %}", "ababa"},
      {"{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}", "b=1;a=2;"},  // insertion order
      {"{% for k in d %}{{ k }}{% endfor %} {% for c in 'h\u00e9' %}[{{ c }}]{% endfor %}", "ba [h][\u00e9]"},
      {"{% for x in [] %}x{% else %}empty{% endfor %}", "empty"},
      {"{% for x in range(6) if x % 2 %}{{ x }}:{{ loop.index }}/{{ loop.length }},{% endfor %}", "1:1/3,3:2/3,5:3/3,"},
      {"{% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 4 %}{% break %}{% endif %}"
       "{{ x }}{% endfor %}", "013"},
      {"{% for a in [1, 2] %}{% for b in 'xy' %}{{ a }}{{ b }}{{ loop.index }} {% endfor %}"
       "{{ loop.index }}|{% endfor %}",
       "1x1 1y2 1|2x1 2y2 2|"},
      {"{{ range(3) | list }} {{ range(1, 7, 2) | list }} {{ range(3, 0, -1) | list }}",
       "[0, 1, 2] [1, 3, 5] [3, 2, 1]"},
  }, ctx);
}

TEST(ChatJinjaTest, SetScopingNamespaceAndMacros) {
  expect_all({
      {"{% set y = 1 %}{% for x in [1, 2] %}{% set y = x * 10 %}{{ y }},{% endfor %}{{ y }}", "10,20,1"},
      {"{% for x in [1, 2] %}{% if x == 1 %}{% set z = 5 %}{% endif %}[{{ z }}]{% endfor %}", "[5][]"},
      {"{% set ns = namespace(y=1, z='a') %}{% for x in [1, 2] %}{% set ns.y = ns.y + x %}{% endfor %}"
       "{{ ns.y }}{{ ns.z }}",
       "4a"},
      {"{% set ns = namespace() %}{% set ns.i = 0 %}{% set ns.i = ns.i + 1 %}{{ ns.i }}", "1"},
      {"{% if true %}{% set w = 'top' %}{% endif %}{{ w }}", "top"},
      {"{% set a, b = 1, 2 %}{{ a }}{{ b }}", "12"},
      {"{% set x %}hi {{ 1 + 1 }}{% endset %}[{{ x }}]", "[hi 2]"},
      {"{% macro greet(name, greeting='Hello') %}{{ greeting }}, {{ name }}!{% endmacro %}"
       "{{ greet('Bob') }} {{ greet('Al', greeting='Hi') }} [{{ greet() }}]",
       "Hello, Bob! Hi, Al! [Hello, !]"},
      {"{% macro fact(n) %}{% if n <= 1 %}1{% else %}{{ n * fact(n - 1) | int }}{% endif %}{% endmacro %}{{ fact(5) }}",
       "120"},
      {"{% set top = 'T' %}{% macro m() %}{{ top }}{% endmacro %}{{ m() }}", "T"},
      {"{% macro m() %}{{ late }}{% endmacro %}{% set late = 'L' %}{{ m() }}", "L"},
      {"{% for x in [1] %}{% macro m() %}[{{ x }}]{% endmacro %}{{ m() }}{% endfor %}", "[1]"},  // a closure
      {"{% macro m() %}[{{ x }}]{% endmacro %}{% for x in [1] %}{{ m() }}{% endfor %}", "[]"},  // not dynamic
      {"{% set x = 1 %}{% macro m() %}{% set x = 2 %}{{ x }}{% endmacro %}{{ m() }}{{ x }}", "21"},
  });
}

TEST(ChatJinjaTest, Filters) {
  const Json ctx = {
      {"msgs",
       {{{"role", "system"}, {"content", "s"}},
        {{"role", "user"}, {"content", "u"}},
        {{"role", "user"}, {"content", "v"}}}},
      {"d", {{"b", 1}, {"a", "x"}}},
      {"tools", {"brave_search", "code_interpreter", "wolfram_alpha"}},
  };
  expect_all({
      {"[{{ '  a b \\n' | trim }}] [{{ 'xxaxx' | trim('x') }}]", "[a b] [a]"},
      {"{{ 'héllo' | length }} {{ msgs | length }} {{ d | count }} {{ nope | length }}", "5 3 2 0"},
      {"{{ 'aB c' | upper }} {{ 'aB' | lower }} {{ 'hello-world foo(bar)' | title }} {{ 'hELLO wORLD' | capitalize }}",
       "AB C ab Hello-World Foo(Bar) Hello world"},
      {"{{ nope | default('dflt') }} {{ '' | default('e') }} {{ '' | default('e', true) }} {{ nope | d('x') }}",
       "dflt  e x"},
      {"{{ [1, 2, 3] | join(', ') }} {{ msgs | join('/', attribute='content') }}", "1, 2, 3 s/u/v"},
      {"{{ 'a-b-c' | replace('-', '+') }} {{ 'a-b-c' | replace('-', '', 1) }}", "a+b+c ab-c"},
      {"{{ [3, 4] | first }} {{ [3, 4] | last }} {{ 'xyz' | first }} [{{ [] | first }}]", "3 4 x []"},
      {"{{ 12 | string ~ 'x' }} {{ '42' | int + 1 }} {{ '3.9' | int }} {{ 'zz' | int }} {{ 2.7 | int }}",
       "12x 43 3 0 2"},
      {"{{ 'ab' | list }} {{ d | list }} {{ d | items | list }}", "['a', 'b'] ['b', 'a'] [('b', 1), ('a', 'x')]"},
      {"{{ msgs | selectattr('role', 'equalto', 'user') | map(attribute='content') | join }}", "uv"},
      {"{{ msgs | rejectattr('role', 'eq', 'user') | map(attribute='content') | list }}", "['s']"},
      {"{{ tools | reject('equalto', 'code_interpreter') | join(', ') }}", "brave_search, wolfram_alpha"},
      {"{{ [0, 1, 2, ''] | select | list }} {{ ['a', 'b'] | map('upper') | list }}", "[1, 2] ['A', 'B']"},
      {"{{ '<b>' | safe }} {{ [3, 1, 2] | sort }} {{ [1, 2] | reverse | list }} {{ 'abc' | reverse }}",
       "<b> [1, 2, 3] [2, 1] cba"},
      {"{{ 'a\\nb\\n\\nc' | indent(2) }}|{{ 'x\\ny' | indent(1, true) }}", "a\n  b\n\n  c| x\n y"},
  }, ctx);
}

TEST(ChatJinjaTest, ToJsonKeepsOrderAndUnicode) {
  const Json ctx = {{"v", {{"z", 1}, {"a", {true, nullptr, 1.5, "\u00e9\"\\\n\u0001"}}, {"e", Json::object()}}}};
  expect_all({
      {"{{ v | tojson }}", "{\"z\": 1, \"a\": [true, null, 1.5, \"\u00e9\\\"\\\\\\n\\u0001\"], \"e\": {}}"},
      {"{{ v | tojson(indent=2) }}",
       "{\n  \"z\": 1,\n  \"a\": [\n    true,\n    null,\n    1.5,\n"
       "    \"\u00e9\\\"\\\\\\n\\u0001\"\n  ],\n  \"e\": {}\n}"},
      {"{{ v.a | tojson(ensure_ascii=true) }}", "[true, null, 1.5, \"\\u00e9\\\"\\\\\\n\\u0001\"]"},
      {"{{ v | tojson(sort_keys=true, separators=(',', ':')) }}",
       "{\"a\":[true,null,1.5,\"\u00e9\\\"\\\\\\n\\u0001\"],\"e\":{},\"z\":1}"},
      {"{{ 'x' | tojson }} {{ 3 | tojson }} {{ none | tojson }}", "\"x\" 3 null"},
  }, ctx);
}

TEST(ChatJinjaTest, Tests) {
  const Json ctx = {{"s", "x"}, {"n", 3}, {"f", 1.5}, {"d", {{"k", 1}}}, {"l", {1}}, {"z", nullptr}, {"t", true}};
  expect_all({
      {"{{ s is defined }}{{ nope is defined }}{{ nope is undefined }}{{ s is not defined }}", "TrueFalseTrueFalse"},
      {"{{ z is none }}{{ s is none }}{{ z is not none }}", "TrueFalseFalse"},
      {"{{ s is string }}{{ n is string }}{{ n is number }}{{ f is number }}{{ s is number }}",
       "TrueFalseTrueTrueFalse"},
      {"{{ d is mapping }}{{ l is mapping }}{{ l is iterable }}{{ s is iterable }}{{ n is iterable }}",
       "TrueFalseTrueTrueFalse"},
      {"{{ l is sequence }}{{ n is sequence }}{{ t is true }}{{ t is false }}{{ 1 is true }}{{ n is integer }}"
       "{{ f is float }}",
       "TrueFalseTrueFalseFalseTrueTrue"},
      {"{{ n is odd }}{{ n is even }}{{ n is divisibleby 3 }}{{ n is eq 3 }}{{ n is equalto(4) }}{{ 2 is in [1, 2] }}",
       "TrueFalseTrueTrueFalseTrue"},
      {"{{ 'ab' is lower }}{{ 'aB' is upper }}{{ 'upper' is filter }}{{ 'odd' is test }}", "TrueFalseTrueTrue"},
  }, ctx);
}

TEST(ChatJinjaTest, StringDictAndListMethods) {
  const Json ctx = {{"d", {{"b", 1}, {"a", 2}}}, {"xs", {"p", "q", "p"}}};
  expect_all({
      {"[{{ '  a  '.strip() }}][{{ '  a  '.lstrip() }}][{{ '  a  '.rstrip() }}][{{ '\\n\\nx\\n'.strip('\\n') }}]",
       "[a][a  ][  a][x]"},
      {"{{ 'a,b,,c'.split(',') }} {{ ' a  b '.split() }} {{ 'a b c'.split(' ', 1) }} {{ 'a b c'.rsplit(' ', 1) }}",
       "['a', 'b', '', 'c'] ['a', 'b'] ['a', 'b c'] ['a b', 'c']"},
      {"{{ 'x</think>y'.split('</think>')[-1] }} {{ 'abc'.startswith('ab') }} {{ 'abc'.endswith(('x', 'c')) }}",
       "y True True"},
      {"{{ 'aBc'.upper() }} {{ 'aBc'.lower() }} {{ 'a-b'.replace('-', '+') }} {{ \"they're bill's\".title() }}",
       "ABC abc a+b They'Re Bill'S"},
      {"{{ 'abcb'.find('b') }} {{ 'abcb'.rfind('b') }} {{ 'abcb'.count('b') }} {{ '-'.join(['a', 'b']) }}",
       "1 3 2 a-b"},
      {"{{ d.items() | list }} {{ d.keys() | list }} {{ d.values() | list }} {{ d.get('a') }} {{ d.get('z', 9) }}"
       " {{ d.get('z') }}",
       "[('b', 1), ('a', 2)] ['b', 'a'] [1, 2] 2 9 None"},
      {"{{ xs.index('q') }} {{ xs.count('p') }} [{{ xs.append }}]", "1 2 []"},
  }, ctx);
}

TEST(ChatJinjaTest, UndefinedBehavesLikeJinjasDefault) {
  const Json ctx = {{"d", {{"k", "v"}}}, {"n", nullptr}};
  expect_all({
      {"[{{ missing }}][{{ d.nokey }}][{{ n.attr }}]", "[][][]"},
      {"{% if missing %}y{% else %}n{% endif %}{% for x in missing %}x{% endfor %}", "n"},
      {"{{ missing | length }} {{ missing | default('z') }} {{ 'a' in missing }} {{ missing is iterable }}",
       "0 z False True"},
      {"{{ missing ~ 'a' }} {{ missing | trim }}|{{ missing == missing }}", "a |True"},
  }, ctx);
  EXPECT_EQ(error_of("{{ missing.attr }}"), "t:1:11: 'missing' is undefined");
  EXPECT_EQ(error_of("{{ d.nokey + 'a' }}", ctx), "t:1:12: 'dict object' has no attribute 'nokey'");
  EXPECT_EQ(error_of("{{ missing() }}"), "t:1:11: 'missing' is undefined");
  EXPECT_EQ(error_of("{{ missing | tojson }}"), "t:1:14: Object of type Undefined is not JSON serializable");
  EXPECT_NE(error_of("{{ [1].append(2) }}").find("unsafe"), std::string::npos);
}

TEST(ChatJinjaTest, GlobalsRaiseExceptionAndClock) {
  try {
    render("line one\n{{ raise_exception('Roles must ' ~ 'alternate') }}");
    FAIL() << "no exception";
  } catch (const RaisedError& e) {
    EXPECT_EQ(e.message(), "Roles must alternate");
    EXPECT_STREQ(e.what(), "t:2:19: Roles must alternate");
  }
  RenderOptions opt;
  opt.now = [] {
    std::tm tm{};
    tm.tm_year = 2025 - 1900;
    tm.tm_mon = 2;
    tm.tm_mday = 5;
    tm.tm_hour = 14;
    tm.tm_min = 7;
    return tm;
  };
  EXPECT_EQ(render("{{ strftime_now('%d %b %Y %H:%M %A') }} {{ strftime_now is defined }}", Json::object(), opt),
            "05 Mar 2025 14:07 Wednesday True");
  EXPECT_EQ(render("{{ dict(a=1, b='x') | tojson }} {{ namespace({'k': 2}).k }}"), "{\"a\": 1, \"b\": \"x\"} 2");
  // Context variables shadow globals, as render(**kwargs) does in Python.
  EXPECT_EQ(render("{{ range }}", Json{{"range", "mine"}}), "mine");
}

TEST(ChatJinjaTest, SyntaxErrorsNameOriginLineColumnAndWhatWasExpected) {
  EXPECT_EQ(error_of("{{ 1 + }}"), "t:1:8: expected an expression, found '}}'");
  EXPECT_EQ(error_of("ok\n{% if x %}\nabc"),
            "t:3:4: unexpected end of template: expected '{% elif %}' or '{% else %}' or '{% endif %}' to close the "
            "'if' at 2:4");
  EXPECT_EQ(error_of("{% for x in y %}{% endif %}"),
            "t:1:20: unexpected '{% endif %}' with no open block it could close");
  EXPECT_EQ(error_of("{{ x | nofilter }}"), "t:1:8: no filter named 'nofilter'");
  EXPECT_EQ(error_of("{{ x is nosuchtest }}"), "t:1:9: no test named 'nosuchtest'");
  EXPECT_EQ(error_of("\n  {% frobnicate %}"), "t:2:6: unknown tag 'frobnicate'");
  EXPECT_EQ(error_of("{% include 'x.j2' %}"), "t:1:4: the 'include' tag is not supported by this Jinja subset");
  EXPECT_EQ(error_of("{{ 'abc }}"), "t:1:4: unterminated string literal");
  EXPECT_EQ(error_of("a {# never closed"), "t:1:3: unterminated comment: expected '#}'");
  EXPECT_EQ(error_of("{{ x "), "t:1:1: unterminated tag: expected '}}'");
  EXPECT_EQ(error_of("{% set x = [1, 2 %}"), "t:1:18: expected ',', found '%}'");
  EXPECT_EQ(error_of("{% break %}"), "t:1:4: 'break' outside a loop");
  EXPECT_EQ(error_of("{{ f(a=1, 2) }}"), "t:1:11: positional argument after a keyword argument");
  EXPECT_EQ(error_of("{{ 1 $ 2 }}"), "t:1:6: unexpected character '$'");
  // Columns count code points, not bytes.
  EXPECT_EQ(error_of("é€😀{{ ) }}"), "t:1:7: expected an expression, found ')'");
}

TEST(ChatJinjaTest, RuntimeErrorsAreLocated) {
  EXPECT_EQ(error_of("{{ 1 / 0 }}"), "t:1:6: division by zero");
  EXPECT_EQ(error_of("\n{{ 'a' + 1 }}"), "t:2:8: can only concatenate str (not \"int\") to str");
  EXPECT_EQ(error_of("{{ 1 < 'a' }}"), "t:1:4: '<' not supported between instances of 'int' and 'str'");
  EXPECT_EQ(error_of("{% for a, b in [[1, 2, 3]] %}{% endfor %}"), "t:1:4: expected 2 values to unpack, got 3");
  EXPECT_EQ(error_of("{% set x = 1 %}{% set x.y = 2 %}"),
            "t:1:19: cannot assign attribute 'y' on 'x': not a namespace()");
  EXPECT_EQ(error_of("{{ 'abc'.nosuch() }}"), "t:1:16: 'str object' has no attribute 'nosuch'");
  EXPECT_EQ(error_of("{{ 5() }}"), "t:1:5: 'int' object is not callable");
  EXPECT_EQ(error_of("{% for x in 5 %}{% endfor %}"), "t:1:13: 'int' object is not iterable");
  EXPECT_EQ(error_of("{{ range(200000) }}"),
            "t:1:9: Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
  EXPECT_EQ(error_of("{{ 9223372036854775807 + 1 }}"),
            "t:1:24: integer overflow (this Jinja subset has 64-bit integers)");
}

TEST(ChatJinjaTest, GuardsStopRunawayTemplates) {
  RenderOptions opt;
  opt.max_loop_iterations = 1000;
  EXPECT_NE(error_of("{% for i in range(100) %}{% for j in range(100) %}{% endfor %}{% endfor %}", Json::object(), opt)
                .find("more than 1000 loop iterations"),
            std::string::npos);
  // Endless recursion stops at the call depth, or (with a sanitizer's larger
  // frames) at the stack budget first.
  const std::string recursion = error_of("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}");
  EXPECT_TRUE(recursion.find("nested deeper than 200") != std::string::npos ||
              recursion.find("bytes of stack") != std::string::npos)
      << recursion;
  opt = {};
  opt.max_output_bytes = 1000;
  EXPECT_NE(error_of("{{ 'x' * 1000000000000 }}", Json::object(), opt).find("exceeds the limit"), std::string::npos);
  EXPECT_NE(error_of("{% for i in range(2000) %}ab{% endfor %}", Json::object(), opt).find("exceeds the limit"),
            std::string::npos);
  // Deep nesting is refused by the parser before it can exhaust the stack.
  EXPECT_NE(error_of("{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}").find("nesting deeper"),
            std::string::npos);
  EXPECT_NE(error_of("{{ " + std::string(3000, '[') + " }}").find("nesting deeper"), std::string::npos);
}

// Hostile templates (a GGUF file's chat template is untrusted input): extreme
// integers never wrap, and every way of building big values meets a budget.
TEST(ChatJinjaTest, ExtremeArgumentsNeitherWrapNorHang) {
  const std::string max = "9223372036854775807";
  expect_all({{"{{ 'a,b'.split(',', 9223372036854775807) }}", "['a', 'b']"},
              {"{{ 'a b'.split(none, 9223372036854775807) }}", "['a', 'b']"},
              {"{{ 'a,b,c'.rsplit(',', 9223372036854775807) }}", "['a', 'b', 'c']"},
              {"{{ [1, 2, 3][1::9223372036854775807] }}", "[2]"},
              {"{{ [1, 2, 3][::-9223372036854775807] }}", "[3]"},
              {"{{ 'abc'[1::9223372036854775807] }}", "b"},
              {"{{ range(9223372036854775806, 9223372036854775807, 2) | list }}", "[9223372036854775806]"},
              {"{{ range(-9223372036854775807, -9223372036854775807 - 1, -5) | list }}", "[-9223372036854775807]"},
              {"{{ range(0, 9223372036854775807, 4611686018427387904) | list }}",
               "[0, 4611686018427387904]"}});
  EXPECT_NE(error_of("{{ range(0, " + max + ") | length }}").find("Range too big"), std::string::npos);
  EXPECT_NE(error_of("{{ ('a' * 16777216) * 1099511627776 }}").find("exceeds the limit"), std::string::npos);
  EXPECT_NE(error_of("{{ [1, 2, 3, 4] * 4611686018427387904 }}").find("loop iterations"), std::string::npos);
  // Doubling a list, or scanning it with `in`, counts as loop work.
  RenderOptions opt;
  opt.max_loop_iterations = 100000;
  EXPECT_NE(error_of("{% set ns = namespace(l=[1]) %}{% for i in range(40) %}{% set ns.l = ns.l + ns.l %}{% endfor %}",
                     Json::object(), opt)
                .find("loop iterations"),
            std::string::npos);
  EXPECT_NE(error_of("{% set r = range(1000) | list %}{% for i in range(1000) %}{{ -1 in r }}{% endfor %}",
                     Json::object(), opt)
                .find("loop iterations"),
            std::string::npos);
  EXPECT_NE(error_of("{{ range(2000) | unique | list | length }}", Json::object(), opt).find("loop iterations"),
            std::string::npos);
  EXPECT_NE(error_of("{% set s = 'a' * 1000000 %}{% for i in range(10) %}{{ s[i] }}{% endfor %}", Json::object(), opt)
                .find("loop iterations"),
            std::string::npos);
  EXPECT_EQ(render("{% set s = 'a' * 1000000 %}{% for i in range(10) %}{{ s[i] }}{% endfor %}"), "aaaaaaaaaa");
  // A value's text is bounded even where no output is written yet.
  opt = {};
  opt.max_output_bytes = 1000;
  for (const char* bound : {"{% set t = [s, s, s] | string %}", "{% set t = {'a': s, 'b': s, 'c': s} | string %}",
                            "{% set t = [s, s, s] | tojson %}"})
    EXPECT_NE(error_of(std::string("{% set s = 'a' * 400 %}") + bound, Json::object(), opt).find("exceeds the limit"),
              std::string::npos)
        << bound;
}

// Long chains parse into trees as deep as they are long: parsing, evaluating
// and destroying them stay within the stack, and long lines lex in linear time.
TEST(ChatJinjaTest, LongChainsAndLongLines) {
  std::string chain = "{{ 1";
  for (int i = 0; i < 200000; ++i) chain += " + 1";
  chain += " }}";
  const std::string e = error_of(chain);
  EXPECT_NE(e.find("bytes of stack"), std::string::npos) << e;
  std::string filters = "{{ 'x'";
  for (int i = 0; i < 200000; ++i) filters += "|trim";
  filters += " }}";
  EXPECT_NE(error_of(filters).find("bytes of stack"), std::string::npos);
  std::string line;
  for (int i = 0; i < 50000; ++i) line += "{{ 1 }}";
  EXPECT_EQ(render(line), std::string(50000, '1'));
  EXPECT_NE(error_of(line + "{{ ) }}").find("t:1:350004:"), std::string::npos) << "the column of the error";
}

TEST(ChatJinjaTest, GuardsKeepValuesAndRecursionWithinTheStack) {
  // Recursion and nesting each under their own limits, together deep enough
  // to exhaust a small thread stack, stop at the stack budget instead.
  std::string expr = "f(n - 1)";
  for (int i = 0; i < 40; ++i) expr = "(" + expr + " ~ '')";
  EXPECT_NE(error_of("{% macro f(n) %}{% if n > 0 %}{{ " + expr + " }}{% endif %}{% endmacro %}{{ f(199) }}")
                .find("bytes of stack"),
            std::string::npos);
  // Values nest at most kMaxValueDepth levels, from JSON or built in a loop,
  // and a namespace cannot hold itself (or any namespace).
  Json deep = 1;
  for (int i = 0; i < 300; ++i) deep = Json::array({deep});
  EXPECT_NE(error_of("{{ x }}", Json{{"x", deep}}).find("nested deeper than 256 levels"), std::string::npos);
  EXPECT_NE(error_of("{% set ns = namespace(x=[]) %}{% for i in range(1000) %}{% set ns.x = [ns.x] %}{% endfor %}")
                .find("nested deeper than 256 levels"),
            std::string::npos);
  EXPECT_EQ(error_of("{% set ns = namespace() %}{% set ns.me = [ns] %}"),
            "t:1:30: namespace attribute 'me' cannot hold a namespace in this Jinja subset");
  EXPECT_NE(error_of("{% set a = namespace() %}{{ namespace(b=a) }}").find("cannot hold a namespace"),
            std::string::npos);
}

// splitmix64, for the corruption test (never std distributions: STYLE §8).
uint64_t splitmix(uint64_t& s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

TEST(ChatJinjaTest, TruncatedOrCorruptedTemplatesFailCleanly) {
  // A real template (Qwen3's, with namespaces, slicing, methods and tojson)
  // cut at every byte and with random bytes replaced: parse and render either
  // succeed or throw tpp::Error, never crash or hang.
  const auto golden = nlohmann::json::parse(io::read_text_file(test::source_path("tests/golden/chat/qwen3.json")));
  const std::string src = golden["template"].get<std::string>();
  const Json ctx = {{"messages",
                     {{{"role", "user"}, {"content", "hi"}},
                      {{"role", "assistant"}, {"content", "<think>a</think>b"}}}},
                    {"add_generation_prompt", true}};
  int ok = 0, failed = 0;
  auto attempt = [&](const std::string& s) {
    try {
      Template(s, "fuzz").render(ctx);
      ++ok;
    } catch (const Error&) {
      ++failed;
    }
  };
  for (size_t n = 0; n <= src.size(); ++n) attempt(src.substr(0, n));
  uint64_t seed = 7;
  const std::string bytes = "{}%#-+()[]'\"|.~ \n\\x";
  for (int i = 0; i < 2000; ++i) {
    std::string s = src;
    for (int k = 0; k < 3; ++k) s[splitmix(seed) % s.size()] = bytes[splitmix(seed) % bytes.size()];
    attempt(s);
  }
  EXPECT_GT(ok, 0);
  EXPECT_GT(failed, 100);
}

TEST(ChatJinjaTest, DictEqualityIsDeepAsInPython) {
  // Mistral's v3 template finds the last user message with `message ==
  // user_messages[-1]`: Python compares dicts by value, so an earlier equal
  // message matches too.
  const Json ctx = {{"ms", {{{"role", "user"}, {"content", "hi"}}, {{"role", "user"}, {"content", "hi"}}}}};
  EXPECT_EQ(render("{% for m in ms %}{{ m == ms[-1] }}{% endfor %}", ctx), "TrueTrue");
}

}  // namespace
}  // namespace tpp::jinja
