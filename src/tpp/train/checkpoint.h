// Resumable checkpoints: model + AdamW moments + the run's state (step, data
// position, RNG seed, options), written so a crash at any moment leaves the
// last good checkpoint intact:
//   OUT/ckpt-<step>/{config.json, model.safetensors, optimizer.safetensors, state.json}
// each file written atomically (temporary file, fsync, rename), then the
// pointer OUT/checkpoint.json is replaced atomically to name the new
// directory, and only then are older ckpt-* directories removed. A directory
// the pointer does not name is never read.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tpp/model/config.h"
#include "tpp/train/params.h"

namespace tpp::train {

struct Checkpoint {
  ModelConfig config;
  std::vector<float> params, m, v;
  int64_t step = 0;          // optimizer steps done (= the next step's index)
  int64_t adam_steps = 0;
  nlohmann::json state;      // the trainer's own fields (options, timings, ...)
};

void save_checkpoint(const std::string& out_dir, const ParamLayout& layout, const Checkpoint& ckpt);

// Reads OUT/checkpoint.json and the directory it names; every file is
// validated (shapes against the config, step numbers agreeing).
Checkpoint load_checkpoint(const std::string& out_dir);

bool has_checkpoint(const std::string& out_dir);

}  // namespace tpp::train
