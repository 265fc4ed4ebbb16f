// The loss-curve SVG drawn from a run's metrics.jsonl.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "common/test_util.h"
#include "tpp/core/error.h"
#include "tpp/report/loss_curve.h"

namespace tpp::test {
namespace {

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}

TEST(LossCurveTest, DrawsTrainingAndValidationCurves) {
  std::vector<nlohmann::json> records;
  for (int s = 1; s <= 20; ++s) records.push_back({{"step", s}, {"loss", 5.0 / s}, {"lr", 1e-3}});
  for (int s : {10, 20}) records.push_back({{"step", s}, {"val_loss", 6.0 / s}, {"val_bpb", 1.0}});
  const std::string svg = report::loss_curve_svg(records);
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_EQ(count(svg, "<polyline"), 2u);
  EXPECT_EQ(count(svg, "<circle"), 2u);  // one per evaluation
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  // No records: an empty frame, still a valid drawing.
  EXPECT_EQ(count(report::loss_curve_svg({}), "<polyline"), 0u);
}

TEST(LossCurveTest, WritesTheRunsSvgAndSkipsATornLine) {
  const std::string dir = temp_dir("loss_curve");
  std::ofstream(dir + "/metrics.jsonl") << "{\"step\": 1, \"loss\": 3.0}\n{\"step\": 2, \"loss\": 2.5}\n{\"step\": 3, \"lo";
  report::write_loss_curve(dir);
  std::ifstream in(dir + "/loss.svg");
  const std::string svg((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(count(svg, "<polyline"), 1u);
  EXPECT_EQ(report::read_metrics(dir + "/metrics.jsonl").size(), 2u);
  try {
    report::write_loss_curve(dir + "/none");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("metrics.jsonl"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tpp::test
