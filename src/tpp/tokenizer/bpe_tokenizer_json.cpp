// BpeTokenizer::load: a Hugging Face tokenizer.json (and tokenizer_config.json).
// Each supported piece of the file maps onto the tokenizer's fields; anything
// else is refused by name (see bpe_tokenizer.h for the shapes accepted).
#include <climits>
#include <filesystem>
#include <functional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tpp/core/error.h"
#include "tpp/io/json_file.h"
#include "tpp/tokenizer/bpe_tokenizer.h"
#include "tpp/tokenizer/text_util.h"

namespace tpp {
namespace {

using json = nlohmann::json;
using tok::kMetaspace;

// GPT-2's pre-tokenizer regex (ByteLevel with use_regex).
constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

const json& field(const json& j, const char* key, const std::string& where) {
  if (!j.is_object()) fail("{}: expected an object, got {}", where, j.dump());
  auto it = j.find(key);
  if (it == j.end()) fail("{}: missing key '{}'", where, key);
  return *it;
}

std::string type_of(const json& j) {
  return j.is_object() && j.contains("type") && j["type"].is_string() ? j["type"].get<std::string>() : "?";
}

std::string string_pattern(const json& step) {
  if (!step.is_object() || !step.contains("pattern") || !step["pattern"].is_object()) return {};
  return step["pattern"].value("String", "");
}

// A token named in tokenizer_config.json: "text" or {"content": "text", ...}.
std::string config_token(const json& c, const char* key) {
  auto it = c.find(key);
  if (it == c.end() || it->is_null()) return {};
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) return (*it)["content"];
  return {};
}

}  // namespace

BpeTokenizer BpeTokenizer::load(const std::string& path_in) {
  namespace fs = std::filesystem;
  const std::string path = fs::is_directory(path_in) ? (fs::path(path_in) / "tokenizer.json").string() : path_in;
  return from_json(path, io::read_json_file(path));
}

BpeTokenizer BpeTokenizer::from_json(const std::string& path, const nlohmann::json& j) {
  // A value of the wrong JSON type deep inside (a number where a string belongs)
  // surfaces as nlohmann's exception; report it as ours, naming the file.
  try {
    return load_json(path, j);
  } catch (const json::exception& e) {
    fail("{}: unexpected JSON structure: {}", path, e.what());
  }
}

BpeTokenizer BpeTokenizer::load_json(const std::string& path, const nlohmann::json& j) {
  namespace fs = std::filesystem;
  BpeTokenizer t;
  t.path_ = path;
  t.init_byte_map();
  if (!j.is_object()) fail("{}: expected a JSON object", path);

  // Model: vocabulary and merges.
  const json& model = field(j, "model", path);
  const std::string model_type = model.is_object() ? model.value("type", "") : "";
  if (model_type != "BPE") fail("{}: model.type is \"{}\", expected \"BPE\"", path, model_type);
  t.ignore_merges_ = model.value("ignore_merges", false);
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
    if (model.contains(key) && !model[key].is_null() && model[key] != "")
      fail("{}: model.{} {} is not supported (expected null or \"\")", path, key, model[key].dump());
  if (model.contains("dropout") && !model["dropout"].is_null() && model["dropout"] != 0)
    fail("{}: model.dropout {} is not supported (expected null)", path, model["dropout"].dump());
  const json& vocab = field(model, "vocab", path + ": model");
  if (!vocab.is_object()) fail("{}: model.vocab must be an object of token -> id", path);
  int32_t max_id = -1;
  for (const auto& [text, id] : vocab.items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= INT32_MAX)
      fail("{}: model.vocab['{}']: expected a non-negative id, got {}", path, text, id.dump());
    t.vocab_[text] = id.get<int32_t>();
    max_id = std::max(max_id, id.get<int32_t>());
  }
  const json& merges = field(model, "merges", path + ": model");
  if (!merges.is_array()) fail("{}: model.merges must be an array", path);
  int32_t rank = 0;
  for (const auto& m : merges) {
    std::string a, b;
    if (m.is_string()) {
      const std::string s = m.get<std::string>();
      const size_t space = s.find(' ', 1);
      if (space == std::string::npos)
        fail("{}: model.merges[{}]: expected \"a b\", got {}", path, rank, m.dump());
      a = s.substr(0, space);
      b = s.substr(space + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      a = m[0].get<std::string>();
      b = m[1].get<std::string>();
    } else {
      fail("{}: model.merges[{}]: expected \"a b\" or [\"a\", \"b\"], got {}", path, rank, m.dump());
    }
    const int32_t ia = t.find(a), ib = t.find(b), iab = t.find(a + b);
    if (ia < 0 || ib < 0 || iab < 0)
      fail("{}: model.merges[{}]: '{}' is not in model.vocab", path, rank, ia < 0 ? a : ib < 0 ? b : a + b);
    t.merges_.try_emplace(uint64_t(uint32_t(ia)) << 32 | uint32_t(ib), rank, iab);
    ++rank;
  }

  // Normalizer: NFC; or the metaspace ▁ for spaces, optionally after Prepend ▁.
  bool prepend = false;
  if (auto n = j.find("normalizer"); n != j.end() && !n->is_null()) {
    std::vector<json> steps;
    if (type_of(*n) == "Sequence") steps = field(*n, "normalizers", path + ": normalizer").get<std::vector<json>>();
    else steps.push_back(*n);
    for (const auto& step : steps) {
      const std::string st = type_of(step);
      if (st == "NFC") {
        t.nfc_ = true;
      } else if (st == "Replace" && string_pattern(step) == " " && step.value("content", "") == kMetaspace) {
        t.metaspace_ = true;
      } else if (st == "Prepend" && step.value("prepend", "") == kMetaspace) {
        prepend = true;
      } else {
        fail("{}: normalizer {} is not supported (expected NFC, Replace \" \" -> \"\u2581\" or Prepend \"\u2581\")",
             path, step.dump());
      }
    }
    if (prepend && !t.metaspace_)
      fail("{}: normalizer Prepend \"\u2581\" without Replace \" \" -> \"\u2581\" is not supported", path);
    t.prepend_each_ = prepend;  // Hugging Face's Prepend: every non-empty stretch between added tokens
  }

  // Pre-tokenizer: the regexes that split text before byte-level BPE, or Metaspace.
  const json& pre = field(j, "pre_tokenizer", path);
  const std::string pre_type = pre.is_null() ? "null" : type_of(pre);
  if (pre_type == "Metaspace") {
    if (pre.value("replacement", "") != kMetaspace)
      fail("{}: pre_tokenizer Metaspace: replacement {} is not supported (expected \"\u2581\")", path,
           pre.contains("replacement") ? pre["replacement"].dump() : "(missing)");
    const std::string scheme = pre.contains("prepend_scheme") ? pre.value("prepend_scheme", "?")
                               : pre.value("add_prefix_space", true) ? "always"
                                                                     : "never";
    if (scheme == "always") t.metaspace_prepend_ = Prepend::always;
    else if (scheme == "first") t.metaspace_prepend_ = Prepend::first;
    else if (scheme == "never") t.metaspace_prepend_ = Prepend::never;
    else fail("{}: pre_tokenizer Metaspace: prepend_scheme \"{}\", expected first, always or never", path, scheme);
    t.metaspace_split_ = pre.value("split", true);
    t.metaspace_ = true;
  } else if (t.metaspace_) {
    // After the metaspace normalizer there are no spaces left, so splitting on them is a no-op.
    const bool split_on_space = pre_type == "Split" && string_pattern(pre) == " " &&
                                pre.value("behavior", "") == "MergedWithPrevious" && !pre.value("invert", false);
    if (!pre.is_null() && !split_on_space)
      fail("{}: pre_tokenizer {} is not supported with the metaspace normalizer", path, pre_type);
  } else if (pre_type == "ByteLevel" || pre_type == "Sequence") {
    auto byte_level = [&](const json& p) {
      if (p.value("add_prefix_space", false))
        fail("{}: pre_tokenizer ByteLevel with add_prefix_space is not supported", path);
      if (p.value("use_regex", true)) t.add_regex(kGpt2Pattern, "pre_tokenizer ByteLevel");
    };
    std::vector<json> steps;
    if (pre_type == "Sequence") steps = field(pre, "pretokenizers", path + ": pre_tokenizer").get<std::vector<json>>();
    else steps.push_back(pre);
    bool has_byte_level = false;
    for (const auto& p : steps) {
      const std::string type = type_of(p);
      if (type == "ByteLevel") {
        byte_level(p);
        has_byte_level = true;
      } else if (type == "Split") {
        const json& pat = field(p, "pattern", path + ": pre_tokenizer Split");
        if (!pat.is_object() || !pat.contains("Regex") || !pat["Regex"].is_string() ||
            p.value("behavior", "") != "Isolated" || p.value("invert", false))
          fail("{}: pre_tokenizer Split: only a Regex pattern with behavior Isolated is supported, got {}", path,
               p.dump());
        t.add_regex(pat["Regex"].get<std::string>(), "pre_tokenizer Split");
      } else {
        fail("{}: pre_tokenizer {} is not supported", path, type);
      }
    }
    if (!has_byte_level) fail("{}: pre_tokenizer without ByteLevel is not supported", path);
  } else {
    fail("{}: pre_tokenizer type \"{}\" is not supported (expected ByteLevel, Sequence or Metaspace)", path,
         pre_type);
  }

  if (model.value("byte_fallback", false)) {
    if (!t.metaspace_) fail("{}: model.byte_fallback without the metaspace normalizer is not supported", path);
    t.set_byte_tokens("model.vocab");
  }
  if (auto u = model.find("unk_token"); u != model.end() && !u->is_null()) {
    if (!u->is_string()) fail("{}: model.unk_token must be a string, got {}", path, u->dump());
    t.unk_ = t.find(u->get<std::string>());
    if (t.unk_ < 0) fail("{}: model.unk_token '{}' is not in model.vocab", path, u->get<std::string>());
    t.fuse_unk_ = model.value("fuse_unk", false);
  }

  // Added tokens: split out of the text first; special ones only with parse_special.
  std::vector<std::pair<int32_t, bool>> added;
  std::vector<std::pair<int32_t, std::string>> added_text;
  if (auto it = j.find("added_tokens"); it != j.end() && !it->is_null()) {
    if (!it->is_array()) fail("{}: added_tokens must be an array", path);
    for (const auto& a : *it) {
      const std::string where = fmt::format("{}: added_tokens[{}]", path, added.size());
      const json& content = field(a, "content", where);
      const json& id = field(a, "id", where);
      if (!content.is_string() || content == "" || !id.is_number_integer() || id.get<int64_t>() < 0 ||
          id.get<int64_t>() >= INT32_MAX)
        fail("{}: expected a non-empty content and a non-negative id, got {}", where, a.dump());
      for (const char* flag : {"lstrip", "rstrip", "single_word"})
        if (a.value(flag, false)) fail("{}: {} true is not supported ('{}')", where, flag, content.get<std::string>());
      // A normalized added token is matched after normalization; with the
      // metaspace normalizer that would change which text matches.
      if (t.metaspace_ && a.value("normalized", false))
        fail("{}: normalized true is not supported with the metaspace normalizer ('{}')", where,
             content.get<std::string>());
      added.emplace_back(id.get<int32_t>(), a.value("special", false));
      added_text.emplace_back(id.get<int32_t>(), content.get<std::string>());
      t.vocab_[content.get<std::string>()] = id.get<int32_t>();
      max_id = std::max(max_id, id.get<int32_t>());
    }
  }
  // Ids may leave gaps, but not so many that the table would dwarf the vocabulary.
  const size_t entries = vocab.size() + added.size();
  if (max_id >= 0 && size_t(max_id) >= 4 * entries + 65536)
    fail("{}: token id {} is far beyond the {} tokens of model.vocab and added_tokens, expected ids below {}", path,
         max_id, entries, 4 * entries + 65536);
  t.id_to_token_.resize(size_t(max_id + 1));
  t.kind_.assign(size_t(max_id + 1), Kind::normal);
  for (const auto& [text, id] : vocab.items()) t.id_to_token_[size_t(id.get<int32_t>())] = text;
  for (size_t i = 0; i < added.size(); ++i) {
    const int32_t id = added[i].first;
    t.id_to_token_[size_t(id)] = added_text[i].second;
    // Added tokens are text as they are; in SentencePiece style only the special
    // ones (Gemma's runs of ▁ and newlines are added, non-special tokens that the
    // decoder turns into spaces like any other).
    if (!t.metaspace_ || added[i].second) t.kind_[size_t(id)] = Kind::verbatim;
  }

  // Decoder: how ids turn back into text.
  const json& dec = field(j, "decoder", path);
  if (!t.metaspace_) {
    if (type_of(dec) != "ByteLevel")
      fail("{}: decoder {} is not supported for byte-level BPE (expected ByteLevel)", path,
           dec.is_null() ? "null" : type_of(dec));
  } else {
    std::vector<json> steps;
    if (type_of(dec) == "Sequence") steps = field(dec, "decoders", path + ": decoder").get<std::vector<json>>();
    else if (!dec.is_null()) steps.push_back(dec);
    bool spaces = false, fused = false;
    for (const auto& step : steps) {
      const std::string st = type_of(step);
      if (!spaces && st == "Replace" && string_pattern(step) == kMetaspace && step.value("content", "") == " ") {
        spaces = true;
      } else if (!spaces && st == "Metaspace" && step.value("replacement", "") == kMetaspace) {
        spaces = true;
        const std::string scheme = step.contains("prepend_scheme") ? step.value("prepend_scheme", "?")
                                   : step.value("add_prefix_space", true) ? "always"
                                                                          : "never";
        if (scheme != "always" && scheme != "first" && scheme != "never")
          fail("{}: decoder Metaspace: prepend_scheme \"{}\", expected first, always or never", path, scheme);
        // Hugging Face's Metaspace decoder removes every ▁ of the first token,
        // not only the leading one; we decode as it does.
        t.first_drop_metaspace_ = scheme != "never";
      } else if (spaces && st == "ByteFallback") {
        for (int b = 0; b < 256; ++b)
          if (const int32_t id = t.find(fmt::format("<0x{:02X}>", b)); id >= 0) t.kind_[size_t(id)] = Kind::byte;
      } else if (spaces && st == "Fuse") {
        fused = true;
      } else if (fused && st == "Strip" && step.value("content", "") == " ") {
        const json& start = field(step, "start", path + ": decoder Strip");
        const json& stop = field(step, "stop", path + ": decoder Strip");
        if (!start.is_number_unsigned() || !stop.is_number_unsigned() || start.get<int64_t>() > 64 ||
            stop.get<int64_t>() > 64)
          fail("{}: decoder Strip: expected small non-negative start and stop, got {}", path, step.dump());
        t.strip_start_ = start.get<int>();
        t.strip_stop_ = stop.get<int>();
      } else {
        fail("{}: decoder {} is not supported here (expected Replace \"\u2581\" -> \" \" or Metaspace, then "
             "ByteFallback, Fuse, Strip \" \")",
             path, step.dump());
      }
    }
    if (!spaces)
      fail("{}: decoder {} is not supported: it does not turn \"\u2581\" back into spaces", path,
           dec.is_null() ? "null" : dec.dump());
  }

  // Post-processor: the special tokens add_special adds around the text.
  std::function<void(const json&)> post = [&](const json& p) {
    if (p.is_null()) return;
    const std::string type = type_of(p);
    if (type == "ByteLevel") return;
    if (type == "Sequence") {
      for (const auto& q : field(p, "processors", path + ": post_processor")) post(q);
      return;
    }
    if (type != "TemplateProcessing") fail("{}: post_processor {} is not supported", path, type);
    bool before = true;
    for (const auto& item : field(p, "single", path + ": post_processor")) {
      if (item.contains("Sequence")) {
        before = false;
      } else if (item.contains("SpecialToken")) {
        const std::string name = item["SpecialToken"].value("id", "");
        const int32_t id = t.find(name);
        if (id < 0) fail("{}: post_processor names token '{}', which is not in the vocabulary", path, name);
        (before ? t.prefix_ : t.suffix_).push_back(id);
      }
    }
  };
  post(j.value("post_processor", json()));

  // tokenizer_config.json: eos / bos, and add_bos_token / add_eos_token, which
  // transformers turns into the template (LlamaTokenizerFast.update_post_processor).
  const fs::path config = fs::path(path).parent_path() / "tokenizer_config.json";
  if (fs::exists(config)) {
    const json c = io::read_json_file(config.string());
    if (!c.is_object()) fail("{}: expected a JSON object", config.string());
    auto named = [&](const char* key) {
      const std::string text = config_token(c, key);
      if (text.empty()) return int32_t(-1);
      const int32_t id = t.find(text);
      if (id < 0) fail("{}: {} '{}' is not in the vocabulary of {}", config.string(), key, text, path);
      return id;
    };
    t.eos_ = named("eos_token");
    t.bos_ = named("bos_token");
    auto add = [&](const char* key, int32_t id, const char* token_key, std::vector<int32_t>& into) {
      auto it = c.find(key);
      if (it == c.end() || it->is_null()) return;
      if (!it->is_boolean()) fail("{}: {} must be true or false, got {}", config.string(), key, it->dump());
      into.clear();
      if (!it->get<bool>()) return;
      if (id < 0) fail("{}: {} is true but {} is not set", config.string(), key, token_key);
      into.push_back(id);
    };
    add("add_bos_token", t.bos_, "bos_token", t.prefix_);
    add("add_eos_token", t.eos_, "eos_token", t.suffix_);
  }
  t.stop_ = {t.eos_};
  t.finish_stop_ids();
  t.set_added(std::move(added));
  return t;
}

}  // namespace tpp
