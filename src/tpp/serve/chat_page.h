// The chat page served at "/": one dependency-free HTML file (no external
// scripts, styles or fonts) that talks to /v1/chat/completions with
// streaming: system prompt, temperature, stop button, tokens/s.
#pragma once

namespace tpp::serve {

extern const char kChatPage[];

}  // namespace tpp::serve
