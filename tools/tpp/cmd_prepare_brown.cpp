// tpp prepare-brown: the tagged Brown corpus to plain text for training.
#include <memory>
#include <string>

#include <fmt/format.h>

#include "commands.h"
#include "tpp/corpus/brown.h"

namespace tpp::cli {

Run add_prepare_brown(CLI::App& app) {
  struct Opts {
    std::string in, out;
  };
  auto o = std::make_shared<Opts>();
  app.add_option("--in", o->in, "directory of the tagged Brown corpus files (ca01 .. cr09)")->required();
  app.add_option("--out", o->out, "plain-text output file")->required();
  return [o] {
    const int n = corpus::prepare_brown(o->in, o->out);
    fmt::print("{}: {} documents of the Brown corpus as plain text\n", o->out, n);
    return 0;
  };
}

}  // namespace tpp::cli
