#include "tpp/report/loss_curve.h"

#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "tpp/core/error.h"
#include "tpp/io/atomic_file.h"
#include "tpp/report/chart.h"

namespace tpp::report {

std::vector<nlohmann::json> read_metrics(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail("{}: cannot open the metrics file", path);
  std::vector<nlohmann::json> records;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.is_object() && j.contains("step")) records.push_back(std::move(j));
  }
  return records;
}

void write_loss_curve(const std::string& run_dir) {
  namespace fs = std::filesystem;
  const auto records = read_metrics((fs::path(run_dir) / "metrics.jsonl").string());
  io::write_file_atomic((fs::path(run_dir) / "loss.svg").string(), loss_curve_svg(records));
}

std::string loss_curve_svg(const std::vector<nlohmann::json>& records) {
  Series train{"train"}, val{"validation"};
  val.markers = true;
  for (const auto& r : records) {
    if (r.contains("loss")) train.x.push_back(r["step"].get<double>()), train.y.push_back(r["loss"].get<double>());
    if (r.contains("val_loss")) val.x.push_back(r["step"].get<double>()), val.y.push_back(r["val_loss"].get<double>());
  }
  Chart c;
  c.title = "Loss (nats per token)";
  c.x_label = "step";
  c.series = {std::move(train), std::move(val)};
  return chart_svg(c);
}

}  // namespace tpp::report
