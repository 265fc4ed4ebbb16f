#include "tpp/tokenizer/gguf_pretokenizers.h"

#include <array>

namespace tpp {
namespace {

// The regexes llama.cpp uses, by its pre-tokenizer type. Where llama.cpp spells
// a case-insensitive group as (?:'[sS]|...) for std::regex, so do we; where it
// rewrites \p{Lu}/\p{Ll} classes with lookaheads for std::regex (Tekken, GPT-4o),
// we keep the original tokenizer.json form, which PCRE2 runs as written.
constexpr std::string_view kGpt2 = R"re('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))re";
constexpr std::string_view kLlama3 =
    R"re((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";
constexpr std::string_view kQwen2 =
    R"re((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";
constexpr std::string_view kQwen35 =
    R"re((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";
constexpr std::string_view kTekken =
    R"re([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";
constexpr std::string_view kGpt4o =
    R"re([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";
constexpr std::string_view kDeepseek3Main =
    R"re([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";

struct Entry {
  std::vector<std::string_view> names;
  GgufPreTokenizer pre;
  std::string_view written = {};  // the name llama.cpp's converter writes, when not names.front()
};

// One row per llama.cpp pre-tokenizer type; the names are the tokenizer.ggml.pre
// values llama.cpp maps to it. Types that need more than a regex (BERT-style SEP,
// custom splitters, raw UTF-8 BPE) are not listed and so are refused.
const std::array<Entry, 13>& table() {
  static const std::array<Entry, 13> kTable{{
      {{"", "default"}, {{R"re([\p{P}\$\+<=>\^~\|]+)re", kGpt2, R"re(\p{N}+)re", "[0-9][0-9][0-9]"}}},
      {{"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano"},
       {{kLlama3}, true, true},
       "llama-bpe"},
      {{"dbrx", "smaug-bpe", "chatglm-bpe", "glm4"}, {{kLlama3}}},
      {{"qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "megrez", "stablelm2", "hunyuan", "solar-open", "grok-2"},
       {{kQwen2}}},
      {{"qwen35"}, {{kQwen35}}},
      {{"gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0", "mellum",
        "modern-bert", "mpt", "olmo", "jais", "trillion", "granite-docling", "exaone4"},
       {{kGpt2}}},
      {{"starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b", "mellum2"},
       {{R"re(\p{N})re", kGpt2}}},
      {{"falcon"}, {{R"re([\p{P}\$\+<=>\^~\|`]+)re", kGpt2, "[0-9][0-9][0-9]"}}},
      {{"bloom", "poro-chat", "gpt3-finnish"}, {{" ?[^(\\s|.,!?\u2026\u3002\uff0c\u3001\u0964\u06d4\u060c)]+"}}},
      {{"deepseek-coder"},
       {{"[\r\n]", R"re(\s?\p{L}+)re", R"re(\s?\p{P}+)re", "[\u4e00-\u9fa5\u0800-\u4e00\uac00-\ud7ff]+",
         R"re(\p{N})re"}}},
      {{"deepseek-v3", "hunyuan-dense", "joyai-llm", "hy_v4"},
       {{R"re(\p{N}{1,3})re", "[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+", kDeepseek3Main}}},
      {{"tekken"}, {{kTekken}, true, true}},
      {{"gpt-4o", "llama4", "kanana2", "talkie", "minimax-m2"}, {{kGpt4o}}},
  }};
  return kTable;
}

}  // namespace

const GgufPreTokenizer* find_gguf_pretokenizer(std::string_view pre) {
  for (const Entry& e : table())
    for (std::string_view name : e.names)
      if (name == pre) return &e.pre;
  return nullptr;
}

namespace {

// A regex in the table's spelling: llama.cpp's case-insensitive contractions,
// no trailing |\s+ after \s+(?!\S).
std::string canonical_regex(std::string re) {
  constexpr std::string_view kHfContractions = "(?i:'s|'t|'re|'ve|'m|'ll|'d)";
  constexpr std::string_view kContractions = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])";
  for (size_t at = re.find(kHfContractions); at != std::string::npos; at = re.find(kHfContractions, at))
    re.replace(at, kHfContractions.size(), kContractions);
  constexpr std::string_view kTail = R"re(\s+(?!\S)|\s+)re";
  if (re.size() >= kTail.size() && re.compare(re.size() - kTail.size(), kTail.size(), kTail) == 0)
    re.resize(re.size() - std::string_view("|\\s+").size());
  return re;
}

}  // namespace

std::optional<std::string_view> gguf_pretokenizer_for(const std::vector<std::string>& regexes, bool ignore_merges) {
  std::vector<std::string> want;
  for (const auto& re : regexes) want.push_back(canonical_regex(re));
  for (const Entry& e : table()) {
    if (e.pre.ignore_merges != ignore_merges || e.pre.regexes.size() != want.size()) continue;
    bool same = true;
    for (size_t i = 0; i < want.size() && same; ++i) same = canonical_regex(std::string(e.pre.regexes[i])) == want[i];
    if (!same) continue;
    if (!e.written.empty()) return e.written;
    return e.names.front().empty() ? std::string_view("default") : e.names.front();
  }
  return std::nullopt;
}

std::string gguf_pretokenizer_names() {
  std::string out;
  for (const Entry& e : table())
    for (std::string_view name : e.names) {
      if (!out.empty()) out += ", ";
      out += name.empty() ? std::string("\"\"") : std::string(name);
    }
  return out;
}

}  // namespace tpp
