// Reporting a training run: the loss curves of OUT/metrics.jsonl (the records
// the trainer appends, one JSON object per line) drawn as an SVG.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace tpp::report {

// Every record of a metrics.jsonl file; blank and malformed lines are skipped
// (a run killed mid-write can leave half a line). A missing file throws,
// naming it.
std::vector<nlohmann::json> read_metrics(const std::string& path);

// A loss-curve SVG from metrics records: train loss per step ({"step", "loss"})
// and validation points ({"step", "val_loss"}).
std::string loss_curve_svg(const std::vector<nlohmann::json>& records);

// RUN/metrics.jsonl drawn into RUN/loss.svg (written atomically).
void write_loss_curve(const std::string& run_dir);

}  // namespace tpp::report
