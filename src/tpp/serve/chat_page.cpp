#include "tpp/serve/chat_page.h"

namespace tpp::serve {

const char kChatPage[] = R"html(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tpp chat</title>
<style>
  :root { --fg: #1d232a; --muted: #667; --line: #d8dde3; --accent: #2f6fdb; --bg: #f6f7f9; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 15px/1.45 system-ui, sans-serif; color: var(--fg); background: var(--bg);
         display: flex; flex-direction: column; height: 100vh; }
  header { display: flex; gap: 12px; align-items: center; padding: 10px 16px; border-bottom: 1px solid var(--line);
           background: #fff; flex-wrap: wrap; }
  header h1 { font-size: 16px; margin: 0 8px 0 0; }
  header label { color: var(--muted); font-size: 13px; display: flex; gap: 6px; align-items: center; }
  header input { width: 70px; }
  #system { width: 100%; min-height: 38px; resize: vertical; font: inherit; padding: 6px 8px;
            border: 1px solid var(--line); border-radius: 6px; }
  #log { flex: 1; overflow-y: auto; padding: 16px; display: flex; flex-direction: column; gap: 10px; }
  .msg { max-width: 80ch; padding: 8px 12px; border-radius: 10px; white-space: pre-wrap; word-break: break-word; }
  .user { align-self: flex-end; background: var(--accent); color: #fff; }
  .assistant { align-self: flex-start; background: #fff; border: 1px solid var(--line); }
  .error { align-self: center; color: #b00020; }
  form { display: flex; gap: 8px; padding: 12px 16px; border-top: 1px solid var(--line); background: #fff; }
  #input { flex: 1; font: inherit; padding: 8px 10px; border: 1px solid var(--line); border-radius: 6px; }
  button { font: inherit; padding: 8px 14px; border-radius: 6px; border: 1px solid var(--accent);
           background: var(--accent); color: #fff; cursor: pointer; }
  button:disabled { opacity: .45; cursor: default; }
  #stop { background: #fff; color: var(--accent); }
  #stats { color: var(--muted); font-size: 13px; margin-left: auto; }
</style>
</head>
<body>
<header>
  <h1>tpp chat</h1>
  <label>model <span id="model">…</span></label>
  <label>temperature <input id="temperature" type="number" min="0" max="2" step="0.1" value="0.7"></label>
  <label>max tokens <input id="max_tokens" type="number" min="1" step="1" value="256"></label>
  <label>API key <input id="key" type="password" placeholder="none" style="width: 110px"></label>
  <span id="stats"></span>
  <textarea id="system" placeholder="System prompt (optional)"></textarea>
</header>
<main id="log"></main>
<form id="form">
  <input id="input" autocomplete="off" placeholder="Message">
  <button id="send" type="submit">Send</button>
  <button id="stop" type="button" disabled>Stop</button>
</form>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const history = [];
let controller = null;
$("key").value = localStorage.getItem("tpp-key") || "";
$("key").addEventListener("change", () => localStorage.setItem("tpp-key", $("key").value));

function headers() {
  const h = { "Content-Type": "application/json" };
  if ($("key").value) h.Authorization = "Bearer " + $("key").value;
  return h;
}
function add(role, text) {
  const div = document.createElement("div");
  div.className = "msg " + role;
  div.textContent = text;
  $("log").appendChild(div);
  $("log").scrollTop = $("log").scrollHeight;
  return div;
}
async function loadModel() {
  try {
    const r = await fetch("/v1/models", { headers: headers() });
    const j = await r.json();
    $("model").textContent = r.ok ? j.data[0].id : "(" + j.error.message + ")";
  } catch (e) { $("model").textContent = "(offline)"; }
}
loadModel();

$("stop").onclick = () => controller && controller.abort();
$("form").onsubmit = async (ev) => {
  ev.preventDefault();
  const text = $("input").value.trim();
  if (!text || controller) return;
  $("input").value = "";
  history.push({ role: "user", content: text });
  add("user", text);
  const out = add("assistant", "");
  const messages = ($("system").value.trim() ? [{ role: "system", content: $("system").value.trim() }] : [])
    .concat(history);
  controller = new AbortController();
  $("send").disabled = true;
  $("stop").disabled = false;
  const t0 = performance.now();
  let first = 0, tokens = 0, reply = "";
  try {
    const r = await fetch("/v1/chat/completions", {
      method: "POST", headers: headers(), signal: controller.signal,
      body: JSON.stringify({ messages, stream: true, stream_options: { include_usage: true },
                             temperature: Number($("temperature").value), max_tokens: Number($("max_tokens").value) }),
    });
    if (!r.ok) throw new Error((await r.json()).error.message);
    const reader = r.body.getReader();
    const decoder = new TextDecoder();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true });
      let at;
      while ((at = buf.indexOf("\n\n")) >= 0) {
        const line = buf.slice(0, at);
        buf = buf.slice(at + 2);
        if (!line.startsWith("data: ") || line === "data: [DONE]") continue;
        const j = JSON.parse(line.slice(6));
        if (j.error) throw new Error(j.error.message);
        if (j.usage) tokens = j.usage.completion_tokens;
        for (const c of j.choices) {
          if (c.delta && c.delta.content) {
            if (!first) first = performance.now();
            reply += c.delta.content;
            out.textContent = reply;
            $("log").scrollTop = $("log").scrollHeight;
          }
        }
      }
    }
    const secs = (performance.now() - (first || t0)) / 1000;
    $("stats").textContent = tokens + " tokens, " + (tokens > 1 && secs > 0 ? ((tokens - 1) / secs).toFixed(1) : "–") +
      " tokens/s, first token " + (((first || performance.now()) - t0) / 1000).toFixed(2) + " s";
  } catch (e) {
    if (e.name !== "AbortError") add("error", String(e.message || e));
    else $("stats").textContent = "stopped";
  } finally {
    history.push({ role: "assistant", content: reply });
    controller = null;
    $("send").disabled = false;
    $("stop").disabled = true;
    $("input").focus();
  }
};
</script>
</body>
</html>
)html";

}  // namespace tpp::serve
