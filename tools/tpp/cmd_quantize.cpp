// tpp quantize: a model as a GGUF file with its matrices in one type or in one
// of llama.cpp's K-quant mixes (the rules in tpp/convert/quantize.h); a model
// directory's tokenizer.json goes into the file's metadata (tpp/tokenizer/gguf_write.h).
#include <chrono>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "commands.h"
#include "tpp/convert/quantize.h"
#include "tpp/core/error.h"
#include "tpp/tokenizer/gguf_write.h"

namespace tpp::cli {

Run add_quantize(CLI::App& app) {
  struct Opts {
    std::string model, out, type;
    bool pure = false, quiet = false;
  };
  auto o = std::make_shared<Opts>();
  app.add_option("-m,--model", o->model,
                 "model to quantize: tpp or Hugging Face directory (its byte-level BPE tokenizer.json, chat template "
                 "and stop tokens go into the GGUF metadata), or GGUF file (its metadata is kept)")
      ->required();
  app.add_option("--type", o->type,
                 "matrix type: f32 | f16 | bf16 | q8_0 | q4_0 | q6_k, or a K-quant mix as llama.cpp's: q4_k_m | "
                 "q5_k_m (output, and attn_v and ffn_down in some layers, in q6_k; q4_k and q5_k name these) | q4_k_s "
                 "| q5_k_s")
      ->required()
      ->check(CLI::IsMember(convert::quantize_type_names()));
  app.add_option("--out", o->out, "output FILE.gguf (written atomically)")->required();
  app.add_flag("--pure", o->pure,
               "every matrix in the base type (by default a q4_0 file keeps its output matrix in q8_0 and the K-quant "
               "types follow llama.cpp's mix); rows that do not fit the block still fall back");
  app.add_flag("-q,--quiet", o->quiet, "print only the summary");
  return [o] {
    convert::QuantizeOptions opts = *convert::parse_quantize_type(o->type);
    opts.pure = o->pure;
    const auto t0 = std::chrono::steady_clock::now();
    const auto s = convert::quantize_model(
        o->model, o->out, opts,
        [&](const std::string& name, DType t) {
          if (!o->quiet) fmt::print("  {:<32} {}\n", name, dtype_name(t));
        },
        [](const std::string& dir, int64_t vocab_size) {
          auto source = std::make_shared<const GgufTokenizerSource>(dir);
          return convert::CarriedTokenizer{source->metadata(vocab_size),
                                           [source](const io::GgufFile& f) { source->check(f); }};
        });
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    fmt::print("wrote {}: {} tensors ({} matrices re-encoded{}), {:.2f} MB -> {:.2f} MB, {:.3f} bits per matrix "
               "weight, {:.1f} s\n",
               o->out, s.tensors, s.quantized,
               s.fallback ? fmt::format(", {} in a fallback type (q8_0 for a K-quant, else f16): rows not a "
                                        "multiple of the block", s.fallback)
                          : "",
               double(s.bytes_in) / 1e6, double(s.bytes_out) / 1e6,
               s.elements ? 8.0 * double(s.matrix_bytes_out) / double(s.elements) : 0.0, secs);
    return 0;
  };
}

}  // namespace tpp::cli
