// Hugging Face config.json -> ModelConfig. The only place that knows HF
// model_type strings and key names. Keys whose value tpp cannot honour are
// refused by name; keys that do not change the computation are listed and
// skipped explicitly.
#pragma once

#include <string>

#include <nlohmann/json_fwd.hpp>

#include "tpp/model/config.h"

namespace tpp {

bool is_hf_config(const nlohmann::json& j);
ModelConfig config_from_hf(const nlohmann::json& j, const std::string& source);

}  // namespace tpp
