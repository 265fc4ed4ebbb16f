#include "tpp/infer/model_text.h"

#include <algorithm>
#include <filesystem>

#include "tpp/core/error.h"
#include "tpp/io/gguf.h"
#include "tpp/tokenizer/gguf_read.h"

namespace tpp {
namespace {

void add_stop(std::vector<int32_t>& stops, int32_t id) {
  if (id >= 0 && std::find(stops.begin(), stops.end(), id) == stops.end()) stops.push_back(id);
}

}  // namespace

ModelText load_model_text(const std::string& model_path) {
  namespace fs = std::filesystem;
  ModelText t;
  std::error_code ec;
  if (fs::is_regular_file(model_path, ec)) {
    const io::GgufFile f = io::GgufFile::open(model_path);
    if (!io::gguf_has_tokenizer(f)) return t;
    GgufVocab vocab = read_gguf_vocab(f);
    t.tokenizer = BpeTokenizer::from_gguf(vocab);
    for (int32_t id : t.tokenizer->stop_ids()) add_stop(t.stop_ids, id);
    // The template's bos_token / eos_token: the ids the tokenizer settled on
    // (llama.cpp's defaults where the file names none, BOS 1 for SentencePiece).
    if (const int32_t b = t.tokenizer->bos_id(); b >= 0) t.bos_token = t.tokenizer->piece(b);
    if (vocab.eos) t.eos_token = vocab.tokens[size_t(*vocab.eos)];
    if (!vocab.chat_template.empty())
      t.chat_template.emplace(vocab.chat_template, model_path + ": tokenizer.chat_template");
    return t;
  }
  if (!fs::exists(fs::path(model_path) / "tokenizer.json")) return t;
  t.tokenizer = BpeTokenizer::load(model_path);
  for (int32_t id : t.tokenizer->stop_ids()) add_stop(t.stop_ids, id);
  for (int32_t id : load_generation_eos_ids(model_path)) {
    if (id < 0 || id >= t.tokenizer->vocab_size())
      fail("{}: key 'eos_token_id': {} is outside the vocabulary of {} tokens",
           (fs::path(model_path) / "generation_config.json").string(), id, t.tokenizer->vocab_size());
    add_stop(t.stop_ids, id);
  }
  if (auto config = load_chat_template_config(model_path)) {
    t.bos_token = config->bos_token;
    t.eos_token = config->eos_token;
    t.chat_template.emplace(config->source, config->origin);
  }
  return t;
}

std::vector<int32_t> ModelText::chat_prompt(std::span<const ChatMessage> messages) const {
  if (!tokenizer) fail("chat: the model has no tokenizer (tokenizer.json or GGUF tokenizer metadata)");
  if (!chat_template)
    fail("chat: the model has no chat template (tokenizer_config.json's chat_template or GGUF "
         "tokenizer.chat_template)");
  const std::string text = chat_template->apply(messages, true, bos_token, eos_token);
  return tokenizer->encode(text, /*add_special=*/false, /*parse_special=*/true);
}

}  // namespace tpp
