// Hugging Face config.json -> ModelConfig. The only place that knows HF
// config key names; the families themselves (their model_type names and the
// switches they fix) are described in families.h. Keys whose value tpp cannot
// honour are refused by name and value; keys that do not change the
// computation are listed and skipped explicitly; any other key is refused.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "tpp/model/config.h"
#include "tpp/model/families.h"

namespace tpp {

bool is_hf_config(const nlohmann::json& j);

struct HfMapping {
  ModelConfig config;
  const Family* family = nullptr;
  std::string model_type;          // as the file gives it ("gemma3" for the multimodal wrapper)
  std::vector<std::string> notes;  // what was mapped specially or left out, for `tpp config --check`
  // A multimodal wrapper's language model: its tensors carry one more prefix
  // (language_model.model.* in the original files, model.language_model.* in
  // later transformers exports), and the other towers' tensors are not used.
  bool wrapped_language_model = false;
  std::vector<std::string> other_towers;  // tensor name prefixes the loader skips
};

// Maps config.json without looking at weights. Also accepts Gemma 3's
// multimodal wrapper (model_type "gemma3"): its text_config is mapped and the
// vision tower is left out (a note says so).
HfMapping map_hf_config(const nlohmann::json& j, const std::string& source);

// map_hf_config's config alone.
ModelConfig config_from_hf(const nlohmann::json& j, const std::string& source);

}  // namespace tpp
