// tpp tokenize: a model's tokenizer on text, as ids (and pieces).
#include <iostream>
#include <iterator>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "commands.h"
#include "tpp/core/error.h"
#include "tpp/infer/model_text.h"

namespace tpp::cli {

Run add_tokenize(CLI::App& app) {
  struct Opts {
    std::string model, prompt;
    bool ids_only = false, no_add_special = false, no_parse_special = false;
  };
  auto o = std::make_shared<Opts>();
  app.add_option("-m,--model", o->model, "model directory, the directory of a tokenizer.json, or a GGUF file")
      ->required();
  app.add_option("-p,--prompt", o->prompt, "text to tokenize (default: standard input)");
  app.add_flag("--ids", o->ids_only, "print only the ids");
  app.add_flag("--no-add-special", o->no_add_special, "add no BOS/EOS template tokens");
  app.add_flag("--no-parse-special", o->no_parse_special, "treat special-token text in the input as plain text");
  return [o] {
    const ModelText text = load_model_text(o->model);
    if (!text.tokenizer)
      fail("{}: no tokenizer found (expected a tokenizer.json in the directory, or a GGUF file with "
           "tokenizer.ggml.* metadata)", o->model);
    const BpeTokenizer& tok = *text.tokenizer;
    std::string input = o->prompt;
    if (input.empty()) input.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    const auto ids = tok.encode(input, !o->no_add_special, !o->no_parse_special);
    if (o->ids_only) {
      std::string line;
      for (size_t i = 0; i < ids.size(); ++i) line += (i ? "," : "") + std::to_string(ids[i]);
      fmt::print("{}\n", line);
      return 0;
    }
    for (int32_t id : ids) fmt::print("{:>8} {:?}\n", id, tok.decode_token(id));
    fmt::print("{} tokens\n", ids.size());
    return 0;
  };
}

}  // namespace tpp::cli
