#include "tpp/train/checkpoint.h"

#include <cstring>
#include <filesystem>

#include <fmt/format.h>

#include "tpp/core/error.h"
#include "tpp/io/json_file.h"
#include "tpp/io/atomic_file.h"
#include "tpp/io/safetensors.h"
#include "tpp/model/model.h"

namespace tpp::train {
namespace fs = std::filesystem;

namespace {

std::string pointer_path(const std::string& out_dir) { return (fs::path(out_dir) / "checkpoint.json").string(); }

std::span<const std::byte> as_bytes(const std::vector<float>& v, const ParamEntry& e) {
  return {reinterpret_cast<const std::byte*>(v.data() + e.offset), size_t(e.size) * sizeof(float)};
}

}  // namespace

bool has_checkpoint(const std::string& out_dir) { return fs::exists(pointer_path(out_dir)); }

void save_checkpoint(const std::string& out_dir, const ParamLayout& layout, const Checkpoint& ckpt) {
  const std::string name = fmt::format("ckpt-{:08d}", ckpt.step);
  const fs::path dir = fs::path(out_dir) / name;
  std::error_code ec;
  fs::remove_all(dir, ec);  // a partial directory from an interrupted save
  fs::create_directories(dir, ec);
  if (ec) fail("{}: cannot create checkpoint directory: {}", dir.string(), ec.message());

  save_model(model_from_params(ckpt.config, layout, ckpt.params), dir.string());
  std::vector<io::TensorToWrite> moments;
  for (const auto& e : layout.entries) {
    moments.push_back({"m." + e.name, DType::f32, e.shape, as_bytes(ckpt.m, e)});
    moments.push_back({"v." + e.name, DType::f32, e.shape, as_bytes(ckpt.v, e)});
  }
  io::write_safetensors((dir / "optimizer.safetensors").string(), moments,
                        {{"step", std::to_string(ckpt.step)}, {"adam_steps", std::to_string(ckpt.adam_steps)}});
  nlohmann::json state = ckpt.state;
  state["step"] = ckpt.step;
  state["adam_steps"] = ckpt.adam_steps;
  io::write_file_atomic((dir / "state.json").string(), state.dump(1) + "\n");

  const nlohmann::json pointer = {{"dir", name}, {"step", ckpt.step}};
  io::write_file_atomic(pointer_path(out_dir), pointer.dump(1) + "\n");
  // Only now is the previous checkpoint obsolete.
  for (const auto& entry : fs::directory_iterator(out_dir, ec)) {
    const std::string n = entry.path().filename().string();
    if (entry.is_directory() && n.rfind("ckpt-", 0) == 0 && n != name) fs::remove_all(entry.path(), ec);
  }
}

Checkpoint load_checkpoint(const std::string& out_dir) {
  const std::string ptr_path = pointer_path(out_dir);
  if (!fs::exists(ptr_path)) fail("{}: no checkpoint to resume from (checkpoint.json is missing)", out_dir);
  const auto pointer = io::read_json_file(ptr_path);
  if (!pointer.is_object() || !pointer.contains("dir") || !pointer["dir"].is_string() || !pointer.contains("step") ||
      !pointer["step"].is_number_integer())
    fail("{}: expected {{\"dir\": string, \"step\": integer}}", ptr_path);
  const std::string name = pointer["dir"].get<std::string>();
  if (name.find('/') != std::string::npos || name.rfind("ckpt-", 0) != 0)
    fail("{}: field 'dir' is '{}', expected a ckpt-<step> directory name", ptr_path, name);
  const fs::path dir = fs::path(out_dir) / name;

  Checkpoint c;
  const Model model = load_model(dir.string());
  c.config = model.config;
  const ParamLayout layout = make_layout(c.config);
  c.params = params_from_model(model, layout);

  const std::string state_path = (dir / "state.json").string();
  c.state = io::read_json_file(state_path);
  if (!c.state.is_object() || !c.state.contains("step") || !c.state["step"].is_number_integer() ||
      !c.state.contains("adam_steps") || !c.state["adam_steps"].is_number_integer())
    fail("{}: expected an object with integer 'step' and 'adam_steps'", state_path);
  c.step = c.state["step"].get<int64_t>();
  c.adam_steps = c.state["adam_steps"].get<int64_t>();
  if (c.step != pointer["step"].get<int64_t>())
    fail("{}: step {} does not match checkpoint.json's step {}", state_path, c.step, pointer["step"].get<int64_t>());

  const std::string opt_path = (dir / "optimizer.safetensors").string();
  const auto opt = io::SafeTensors::open(opt_path);
  c.m.assign(size_t(layout.total), 0.0f);
  c.v.assign(size_t(layout.total), 0.0f);
  for (const auto& e : layout.entries)
    for (auto [prefix, dst] : {std::pair{"m.", &c.m}, std::pair{"v.", &c.v}}) {
      const std::string tname = prefix + e.name;
      const io::TensorEntry* t = opt.find(tname);
      if (!t) fail("{}: tensor '{}' is missing", opt_path, tname);
      if (t->dtype != DType::f32 || t->shape != e.shape)
        fail("{}: tensor '{}' must be F32 of the parameter's shape", opt_path, tname);
      std::memcpy(dst->data() + e.offset, t->data, t->nbytes());
    }
  const auto& meta = opt.metadata();
  if (!meta.count("step") || meta.at("step") != std::to_string(c.step))
    fail("{}: metadata step does not match state.json's step {}", opt_path, c.step);
  return c;
}

}  // namespace tpp::train
