#include <memory>
#include <string>

#include <fmt/format.h>

#include "commands.h"
#include "tpp/core/error.h"
#include "tpp/model/model.h"

namespace tpp::cli {

Run add_init(CLI::App& app) {
  struct Opts {
    std::string config, out, dtype = "f32";
    uint64_t seed = 0;
  };
  auto o = std::make_shared<Opts>();
  app.add_option("--config", o->config, "model config JSON (keys: `tpp config`)")->required();
  app.add_option("--out", o->out, "output directory")->required();
  app.add_option("--seed", o->seed, "initialisation seed");
  app.add_option("--dtype", o->dtype, "matrix dtype: f32 | bf16 | f16");
  return [o] {
    const auto dtype = parse_dtype(o->dtype);
    if (!dtype || (*dtype != DType::f32 && *dtype != DType::bf16 && *dtype != DType::f16))
      fail("--dtype: got \"{}\", expected f32, bf16 or f16", o->dtype);
    const ModelConfig config = load_config_file(o->config);
    const Model model = init_model(config, o->seed, *dtype);
    save_model(model, o->out, *dtype);
    fmt::print("wrote {}/config.json and {}/model.safetensors ({} parameters, {})\n", o->out, o->out,
               config.n_params(), o->dtype);
    return 0;
  };
}

}  // namespace tpp::cli
