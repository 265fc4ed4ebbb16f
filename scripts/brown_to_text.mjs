#!/usr/bin/env node
// Convert the tagged Brown corpus (one file per document, named ca01..cr09)
// into plain, readably spaced English text for training.
//
// Usage: node scripts/brown_to_text.mjs IN_DIR OUT_FILE
//
// Input:  whitespace-separated `word/tag` tokens; lines that start with a
//         tab open a paragraph, blank lines are ignored.
// Output: one line per non-empty input line, tags removed, punctuation
//         attached the way English is written, documents separated by a
//         blank line. Words (including their case) are kept as in the corpus.
//
// No dependencies beyond Node's standard library.

import fs from 'node:fs';
import path from 'node:path';

const DOC_NAME = /^c[a-r]\d\d$/;

// Token kinds: WORD takes a space on both sides, OPEN takes none after it,
// CLOSE takes none before it.
const WORD = 0;
const OPEN = 1;
const CLOSE = 2;

const OPEN_PUNCT = new Set(['(', '[', '{']);
const CLOSE_PUNCT = new Set(['.', ',', ';', ':', '!', '?', ')', ']', '}', '%']);
// Clitics split off as their own tokens attach to the preceding word. The
// Brown tagging keeps contractions whole, so these are rare; note that forms
// such as 'em or 'tis are words and keep their leading space.
const CLITICS = new Set(["'s", "n't", "'re", "'ll", "'ve", "'m", "'d"]);

/** Word part of a `word/tag` token: everything before the last '/'. */
function wordOf(token) {
  const slash = token.lastIndexOf('/');
  return slash > 0 ? token.slice(0, slash) : token;
}

/** Tag part of a `word/tag` token, or '' when there is none. */
function tagOf(token) {
  const slash = token.lastIndexOf('/');
  return slash > 0 ? token.slice(slash + 1) : '';
}

/** True for words that never take a space before them. */
function attachesLeft(word) {
  return CLOSE_PUNCT.has(word) || word === "''" || CLITICS.has(word.toLowerCase());
}

/**
 * Split one corpus line into words. This copy of the corpus doubles every
 * sentence-level mark tagged `.` other than the full stop (`?/. ?/.`,
 * `;/. ;/.`, `!/. !/.`, `:/. :/.`); the repeat is dropped.
 */
function lineWords(line) {
  const words = [];
  let prev = null;
  for (const token of line.split(/\s+/)) {
    if (token === '') continue;
    const word = wordOf(token);
    const doubled = token === prev && word !== '.' && tagOf(token).startsWith('.');
    prev = token;
    if (!doubled) words.push(word);
  }
  return words;
}

/**
 * Classify the words of one line. `state.single` tracks whether a plain
 * single quote (') is open; it carries across the lines of a document because
 * quotations may span sentences.
 */
function classify(words, state) {
  const items = [];
  for (let i = 0; i < words.length; i++) {
    const word = words[i];
    if (word === '``') {
      items.push({ text: '"', kind: OPEN });
    } else if (word === "''") {
      items.push({ text: '"', kind: CLOSE });
    } else if (word === "'") {
      // The corpus does not mark the direction of single quotes: closing
      // before punctuation or at the end of a line, opening at the start of a
      // line or after an opening bracket/quote, otherwise alternate.
      const next = words[i + 1];
      const prev = items[items.length - 1];
      let kind;
      if (next === undefined || attachesLeft(next) || next === "'") kind = CLOSE;
      else if (prev === undefined || prev.kind === OPEN) kind = OPEN;
      else kind = state.single ? CLOSE : OPEN;
      state.single = kind === OPEN;
      items.push({ text: "'", kind });
    } else if (OPEN_PUNCT.has(word)) {
      items.push({ text: word, kind: OPEN });
    } else if (attachesLeft(word)) {
      items.push({ text: word, kind: CLOSE });
    } else {
      items.push({ text: word, kind: WORD });
    }
  }
  return items;
}

/** Join classified items with English spacing. */
function render(items) {
  let out = '';
  let prev = null;
  for (const item of items) {
    if (prev !== null && item.kind !== CLOSE && prev.kind !== OPEN) out += ' ';
    out += item.text;
    prev = item;
  }
  return out;
}

/** Convert one corpus document to its output lines. */
function convertDocument(text) {
  const state = { single: false };
  const lines = [];
  for (const raw of text.split('\n')) {
    const items = classify(lineWords(raw), state);
    // A line that starts with closing punctuation (a lone '' or ')' after a
    // quoted or bracketed sentence) finishes the previous line.
    const prev = lines[lines.length - 1];
    while (prev !== undefined && items.length > 0 && items[0].kind === CLOSE) {
      prev.push(items.shift());
    }
    if (items.length > 0) lines.push(items);
  }
  return lines.map(render);
}

function fail(message) {
  process.stderr.write(`brown_to_text: ${message}\n`);
  process.exit(1);
}

function main(argv) {
  if (argv.length !== 2) {
    process.stderr.write('usage: node scripts/brown_to_text.mjs IN_DIR OUT_FILE\n');
    process.exit(2);
  }
  const [inDir, outFile] = argv;

  let names;
  try {
    names = fs.readdirSync(inDir);
  } catch (err) {
    fail(`cannot read corpus directory '${inDir}': ${err.message}`);
  }
  names = names.filter((name) => DOC_NAME.test(name)).sort();
  if (names.length === 0) {
    fail(`no Brown corpus files (ca01..cr09) found in '${inDir}'`);
  }

  const docs = [];
  let lineCount = 0;
  for (const name of names) {
    const lines = convertDocument(fs.readFileSync(path.join(inDir, name), 'utf8'));
    if (lines.length === 0) continue;
    lineCount += lines.length;
    docs.push(lines.join('\n'));
  }
  const output = docs.join('\n\n') + '\n';

  // Write to a temporary file and rename, so OUT_FILE is never half written.
  fs.mkdirSync(path.dirname(path.resolve(outFile)), { recursive: true });
  const tmp = `${outFile}.tmp`;
  try {
    fs.writeFileSync(tmp, output);
    fs.renameSync(tmp, outFile);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    fail(`cannot write '${outFile}': ${err.message}`);
  }

  const bytes = Buffer.byteLength(output);
  console.log(`brown_to_text: ${names.length} files, ${lineCount} lines, ${bytes} bytes -> ${outFile}`);
}

main(process.argv.slice(2));
