// The evaluation report as files (per_image.csv, summary.json) and as the printed table.
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <ostream>
#include <sstream>

#include "nucleisam/atomic_file.h"
#include "nucleisam/eval/evaluate.h"
#include "nucleisam/log.h"

namespace fs = std::filesystem;

namespace nucleisam::eval {
namespace {

std::string number(double v, int precision = 10) {
  if (std::isnan(v)) return "nan";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*g", precision, v);
  return buf;
}

nlohmann::json json_number(double v) { return std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(v); }

// Names may end up as CSV column names: keep them free of separators.
std::string column_safe(std::string s) {
  for (char& c : s)
    if (c == ',' || c == ' ' || c == '"' || c == '\n') c = '_';
  return s;
}

}  // namespace

std::string per_image_csv(const EvalReport& report) {
  const std::vector<std::string>& classes = report.classes;
  std::ostringstream out;
  out << "image,gt_instances,pred_instances,dice,iou,aji,aji_plus,dq,sq,pq,tp,fp,fn,object_f1,f1_d";
  for (const auto& c : classes) {
    const std::string n = column_safe(c);
    out << ",pq_" << n << ",f1_" << n << ",fc_" << n << ",gt_count_" << n << ",pred_count_" << n;
  }
  out << '\n';
  for (const auto& e : report.images) {
    out << column_safe(e.name) << ',' << e.gt_instances << ',' << e.pred_instances << ','
        << number(e.pixels.dice()) << ',' << number(e.pixels.iou()) << ',' << number(e.aji) << ','
        << number(e.aji_plus) << ',' << number(e.pq.dq()) << ',' << number(e.pq.sq()) << ','
        << number(e.pq.pq()) << ',' << e.pq.tp << ',' << e.pq.fp << ',' << e.pq.fn << ','
        << number(e.detection.f1()) << ',' << number(e.centroid.all.f1());
    for (size_t c = 0; c < classes.size(); ++c)
      out << ',' << number(e.class_pq[c].pq()) << ',' << number(e.class_detection[c].f1()) << ','
          << number(e.centroid.classes[c].f1()) << ',' << e.gt_counts[c] << ',' << e.pred_counts[c];
    out << '\n';
  }
  return out.str();
}

std::string summary_json(const EvalReport& report) {
  using nlohmann::json;
  const metrics::EvaluationSummary& s = report.summary;
  const metrics::EvaluationOptions& options = report.options;
  const std::vector<std::string>& classes = report.classes;
  json j;
  j["images"] = s.images;
  j["options"] = {
      {"pq_match_iou", options.pq_match_iou},
      {"f1_match_iou", options.f1_match_iou},
      {"pair_radius", options.pair_radius},
      {"max_detections", options.max_detections > 0 ? json(options.max_detections) : json("unlimited")}};
  auto mean = [](const metrics::MeanOverImages& m) {
    return json{{"mean", json_number(m.mean)}, {"images", m.counted}};
  };
  auto grouped = [](const metrics::GroupedMean& m) {
    return json{{"mean", json_number(m.mean)}, {"images", m.images}, {"groups", m.groups}};
  };
  j["binary"] = {
      {"dice", mean(s.dice)},
      {"iou", mean(s.iou)},
      {"aji", mean(s.aji)},
      {"aji_plus", mean(s.aji_plus)},
      {"dq", mean(s.dq)},
      {"sq", mean(s.sq)},
      {"pq", mean(s.pq)},
      {"pixel_dice_pooled", json_number(s.pixels.dice())},
      {"object_f1",
       {{"f1", json_number(s.detection.f1())},
        {"precision", json_number(s.detection.precision())},
        {"recall", json_number(s.detection.recall())},
        {"tp", s.detection.tp},
        {"fp", s.detection.fp},
        {"fn", s.detection.fn}}},
      {"centroid_detection",
       {{"f1_d", json_number(s.centroid.f1())},
        {"precision", json_number(s.centroid.precision())},
        {"recall", json_number(s.centroid.recall())},
        {"paired", s.centroid.paired},
        {"unpaired_pred", s.centroid.unpaired_pred},
        {"unpaired_gt", s.centroid.unpaired_gt}}},
      {"map", json_number(s.map.map)},
      {"map50", json_number(s.map.map50)},
      {"map75", json_number(s.map.map75)},
      {"count_r2", json_number(s.count_r2)},
      {"pannuke_bpq", grouped(s.pannuke_bpq)},
  };
  if (!classes.empty()) {
    json per_class = json::object();
    for (size_t c = 0; c < classes.size(); ++c) {
      const auto& k = s.classes[c];
      per_class[classes[c]] = {{"id", c + 1},
                               {"pq_plus", json_number(k.pq_plus)},
                               {"dq", json_number(k.pq.dq())},
                               {"sq", json_number(k.pq.sq())},
                               {"tp", k.pq.tp},
                               {"fp", k.pq.fp},
                               {"fn", k.pq.fn},
                               {"object_f1", json_number(k.detection.f1())},
                               {"f1_type", json_number(k.centroid.f1())},
                               {"ap", json_number(k.ap)},
                               {"ap50", json_number(k.ap50)},
                               {"ap75", json_number(k.ap75)},
                               {"pixel_iou", json_number(k.pixel_iou)},
                               {"pixel_dice", json_number(k.pixel_dice)},
                               {"count_r2", json_number(k.count_r2)},
                               {"pannuke_pq", mean(k.pannuke_pq)}};
    }
    j["classes"] = {{"names", classes},
                    {"mpq_plus", json_number(s.mpq_plus)},
                    {"mean_object_f1", json_number(s.mean_f1)},
                    {"type_accuracy", json_number(s.centroid.type_accuracy())},
                    {"map", json_number(s.class_map)},
                    {"map50", json_number(s.class_map50)},
                    {"map75", json_number(s.class_map75)},
                    {"miou", json_number(s.miou)},
                    {"mean_count_r2", json_number(s.mean_count_r2)},
                    {"pannuke_mpq", grouped(s.pannuke_mpq)},
                    {"per_class", per_class}};
  }
  j["pred"] = report.pred;
  j["gt"] = report.gt;
  j["missing_predictions"] = report.missing_predictions;
  j["unmatched_predictions"] = report.unmatched_predictions;
  return j.dump(2) + "\n";
}

void print_table(std::ostream& out, const EvalReport& report) {
  const metrics::EvaluationSummary& s = report.summary;
  const metrics::EvaluationOptions& options = report.options;
  const std::vector<std::string>& classes = report.classes;
  auto row = [&](const std::string& name, double v, const std::string& note) {
    char buf[128];
    std::snprintf(buf, sizeof buf, "  %-14s %8s  %s\n", name.c_str(), number(v, 4).c_str(), note.c_str());
    out << buf;
  };
  auto over = [](const metrics::MeanOverImages& m) {
    return "mean of " + std::to_string(m.counted) + " images";
  };
  auto pannuke = [](const metrics::GroupedMean& m) {
    return "PanNuke: " + std::to_string(m.images) + " images with ground truth" +
           (m.groups > 1 ? ", mean of " + std::to_string(m.groups) + " groups" : std::string());
  };
  out << "images: " << s.images << "   max detections per image (mAP): "
      << (options.max_detections > 0 ? std::to_string(options.max_detections) : std::string("unlimited"))
      << '\n';
  row("Dice", s.dice.mean, over(s.dice));
  row("IoU", s.iou.mean, over(s.iou));
  row("AJI", s.aji.mean, over(s.aji));
  row("AJI+", s.aji_plus.mean, over(s.aji_plus));
  row("DQ", s.dq.mean, over(s.dq));
  row("SQ", s.sq.mean, over(s.sq));
  row("PQ", s.pq.mean, over(s.pq));
  row("object F1", s.detection.f1(), "pooled, IoU >= " + number(options.f1_match_iou, 3));
  row("F_d", s.centroid.f1(),
      "pooled, centroids within " + number(options.pair_radius, 4) + " px (HoVer-Net)");
  row("mAP", s.map.map, "IoU 0.50:0.95, class-agnostic");
  row("AP50", s.map.map50, "");
  row("count R2", s.count_r2, "instances per image");
  row("bPQ", s.pannuke_bpq.mean, pannuke(s.pannuke_bpq));
  if (classes.empty()) return;
  row("mPQ+", s.mpq_plus, "counts pooled over images (CoNIC)");
  row("mean F1", s.mean_f1, "over classes");
  row("type accuracy", s.centroid.type_accuracy(), "of the F_d pairs (HoVer-Net)");
  row("class mAP", s.class_map, "over classes with ground truth");
  row("mIoU", s.miou, "pixels pooled");
  row("mean R2", s.mean_count_r2, "per-class counts");
  row("mPQ", s.pannuke_mpq.mean, pannuke(s.pannuke_mpq) + ", classes in each");
  char buf[160];
  std::snprintf(buf, sizeof buf, "  %-18s %8s %8s %8s %8s %8s %8s %8s\n", "class", "PQ+", "F1", "F_c", "AP",
                "IoU", "R2", "GT");
  out << buf;
  for (size_t c = 0; c < classes.size(); ++c) {
    const auto& k = s.classes[c];
    std::snprintf(buf, sizeof buf, "  %-18s %8s %8s %8s %8s %8s %8s %8lld\n",
                  classes[c].substr(0, 18).c_str(), number(k.pq_plus, 4).c_str(),
                  number(k.detection.f1(), 4).c_str(), number(k.centroid.f1(), 4).c_str(),
                  number(k.ap, 4).c_str(), number(k.pixel_iou, 4).c_str(), number(k.count_r2, 4).c_str(),
                  static_cast<long long>(k.pq.tp + k.pq.fn));
    out << buf;
  }
}

void write_report(const EvalReport& report, const std::string& folder) {
  const std::string csv = (fs::path(folder) / "per_image.csv").string();
  const std::string json = (fs::path(folder) / "summary.json").string();
  write_file_atomic(csv, per_image_csv(report));
  write_file_atomic(json, summary_json(report));
  log::info("wrote ", csv, " and ", json);
}

}  // namespace nucleisam::eval
