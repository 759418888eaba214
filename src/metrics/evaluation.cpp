// Per-image metrics and their dataset aggregation (see evaluation.h, docs/metrics.md).
#include "nucleisam/metrics/evaluation.h"

#include <cmath>
#include <map>
#include <string>

#include "nucleisam/errors.h"

namespace nucleisam::metrics {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

struct MeanAccumulator {
  double sum = 0;
  size_t n = 0;
  void add(double v) {
    if (std::isnan(v)) return;
    sum += v;
    ++n;
  }
  MeanOverImages result() const { return {n ? sum / static_cast<double>(n) : kNaN, n}; }
};

// CoNIC computes each class's PQ from the pooled counts with 1e-6 added to both denominators,
// which makes a class that never occurs (in ground truth or prediction) score 0; we keep that
// outcome but compute the defined cases exactly.
double conic_class_pq(const PanopticCounts& c) { return c.empty() ? 0.0 : c.pq(); }

// PanNuke scores a class of an image only when the image's ground truth has it (predictions of a
// class the truth lacks are not counted there); the same for binary PQ and an empty truth.
double pannuke_pq(const PanopticCounts& c) { return c.tp + c.fn > 0 ? c.pq() : kNaN; }

double pannuke_mpq_of(const ImageEvaluation& e) {
  MeanAccumulator m;
  for (const auto& c : e.class_pq) m.add(pannuke_pq(c));
  return m.result().mean;
}

GroupedMean grouped_mean(const std::vector<ImageEvaluation>& images,
                         double (*value)(const ImageEvaluation&)) {
  std::map<std::string, MeanAccumulator> groups;
  GroupedMean g;
  for (const auto& e : images) {
    const double v = value(e);
    if (std::isnan(v)) continue;
    groups[e.group].add(v);
    ++g.images;
  }
  MeanAccumulator over_groups;
  for (const auto& [name, m] : groups) over_groups.add(m.result().mean);
  g.mean = over_groups.result().mean;
  g.groups = groups.size();
  return g;
}

}  // namespace

double mean_f1_c(const EvaluationSummary& s) {
  MeanAccumulator m;
  for (const auto& k : s.classes) m.add(k.centroid.f1());
  return m.result().mean;
}

Evaluation::Evaluation(EvaluationOptions options)
    : options_(options), binary_ap_(1, options.max_detections), total_counts_(1) {
  if (options_.num_classes < 0) throw DataError("number of classes must be >= 0");
  if (!(options_.pair_radius >= 0)) throw DataError("centroid pairing radius must be >= 0");
  if (options_.num_classes > 0) {
    class_ap_.emplace(options_.num_classes, options_.max_detections);
    confusion_.emplace(options_.num_classes);
    class_counts_.emplace(options_.num_classes);
  }
}

const ImageEvaluation& Evaluation::add_image(const std::string& name, const InstanceSet& gt,
                                             const InstanceSet& pred, const std::string& group) {
  if (!gt.instances || !pred.instances) throw DataError(name + ": missing instance map");
  const InstanceOverlap o = instance_overlap(*gt.instances, *pred.instances);

  ImageEvaluation e;
  e.name = name;
  e.group = group;
  e.gt_instances = o.gt_count();
  e.pred_instances = o.pred_count();
  e.pixels = foreground_counts(o);
  e.aji = aggregated_jaccard_index(o);
  e.aji_plus = aggregated_jaccard_index_plus(o);
  e.pq = panoptic_counts(o, options_.pq_match_iou);
  e.detection = object_detection_counts(o, options_.f1_match_iou);

  std::vector<double> scores = pred.scores && !pred.scores->empty()
                                   ? by_dense_index(o.pred_labels, *pred.scores, "prediction scores")
                                   : std::vector<double>(o.pred_count(), 1.0);
  const int C = options_.num_classes;
  std::vector<int> gt_class, pred_class;
  if (C > 0) {
    if (!gt.classes || (gt.classes->empty() && o.gt_count() > 0))
      throw DataError(name + ": ground truth has no classes but " + std::to_string(C) +
                      " classes are evaluated");
    if (!pred.classes || (pred.classes->empty() && o.pred_count() > 0))
      throw DataError(name + ": prediction has no classes but " + std::to_string(C) +
                      " classes are evaluated");
    gt_class = by_dense_index(o.gt_labels, *gt.classes, "ground-truth classes");
    pred_class = by_dense_index(o.pred_labels, *pred.classes, "predicted classes");
    for (int c : gt_class)
      if (c < 0 || c > C)
        throw DataError(name + ": ground-truth class " + std::to_string(c) + " outside 0.." +
                        std::to_string(C));
    for (int c : pred_class)
      if (c < 0 || c > C)
        throw DataError(name + ": predicted class " + std::to_string(c) + " outside 0.." + std::to_string(C));
  }

  e.centroid = centroid_detection(o, options_.pair_radius, gt_class, pred_class, C);

  binary_ap_.add_image(o, std::vector<int>(o.gt_count(), 1), std::vector<int>(o.pred_count(), 1), scores);
  total_counts_.add_image({static_cast<int64_t>(o.gt_count())}, {static_cast<int64_t>(o.pred_count())});

  if (C > 0) {
    class_ap_->add_image(o, gt_class, pred_class, scores);
    confusion_->add(o, gt_class, pred_class);
    e.class_pq.resize(C);
    e.class_detection.resize(C);
    e.gt_counts.assign(C, 0);
    e.pred_counts.assign(C, 0);
    for (int c = 1; c <= C; ++c) {
      std::vector<bool> keep_gt(o.gt_count()), keep_pred(o.pred_count());
      for (size_t g = 0; g < keep_gt.size(); ++g) keep_gt[g] = gt_class[g] == c;
      for (size_t p = 0; p < keep_pred.size(); ++p) keep_pred[p] = pred_class[p] == c;
      const InstanceOverlap oc = o.restricted(keep_gt, keep_pred);
      e.class_pq[c - 1] = panoptic_counts(oc, options_.pq_match_iou);
      e.class_detection[c - 1] = object_detection_counts(oc, options_.f1_match_iou);
      e.gt_counts[c - 1] = static_cast<int64_t>(oc.gt_count());
      e.pred_counts[c - 1] = static_cast<int64_t>(oc.pred_count());
    }
    class_counts_->add_image(e.gt_counts, e.pred_counts);
  }
  images_.push_back(std::move(e));
  return images_.back();
}

EvaluationSummary Evaluation::summary() const {
  EvaluationSummary s;
  s.images = images_.size();
  s.max_detections = options_.max_detections;
  MeanAccumulator dice, iou, aji, aji_plus, dq, sq, pq;
  for (const auto& e : images_) {
    dice.add(e.pixels.dice());
    iou.add(e.pixels.iou());
    aji.add(e.aji);
    aji_plus.add(e.aji_plus);
    dq.add(e.pq.dq());
    sq.add(e.pq.sq());
    pq.add(e.pq.pq());
    s.pixels += e.pixels;
    s.detection += e.detection;
    s.centroid += e.centroid.all;
  }
  s.dice = dice.result();
  s.iou = iou.result();
  s.aji = aji.result();
  s.aji_plus = aji_plus.result();
  s.dq = dq.result();
  s.sq = sq.result();
  s.pq = pq.result();
  s.map = binary_ap_.result();
  s.count_r2 = total_counts_.r2(1);
  s.pannuke_bpq = grouped_mean(images_, [](const ImageEvaluation& e) { return pannuke_pq(e.pq); });

  const int C = options_.num_classes;
  if (C == 0) return s;
  const auto class_map = class_ap_->result();
  s.classes.resize(C);
  double pq_sum = 0, f1_sum = 0;
  int f1_n = 0;
  for (int c = 1; c <= C; ++c) {
    ClassSummary& k = s.classes[c - 1];
    for (const auto& e : images_) {
      k.pq += e.class_pq[c - 1];
      k.detection += e.class_detection[c - 1];
      k.centroid += e.centroid.classes[c - 1];
    }
    k.pq_plus = conic_class_pq(k.pq);
    MeanAccumulator per_image;
    for (const auto& e : images_) per_image.add(pannuke_pq(e.class_pq[c - 1]));
    k.pannuke_pq = per_image.result();
    pq_sum += k.pq_plus;
    if (double f = k.detection.f1(); !std::isnan(f)) {
      f1_sum += f;
      ++f1_n;
    }
    k.ap = class_map.ap[c - 1];
    k.ap50 = class_map.ap50[c - 1];
    k.ap75 = class_map.ap75[c - 1];
    k.pixel_iou = confusion_->iou(c);
    k.pixel_dice = confusion_->dice(c);
    k.count_r2 = class_counts_->r2(c);
  }
  s.mpq_plus = pq_sum / C;
  s.mean_f1 = f1_n ? f1_sum / f1_n : kNaN;
  s.class_map = class_map.map;
  s.class_map50 = class_map.map50;
  s.class_map75 = class_map.map75;
  s.miou = confusion_->mean_iou();
  s.mean_count_r2 = class_counts_->mean_r2();
  s.pannuke_mpq = grouped_mean(images_, pannuke_mpq_of);
  return s;
}

}  // namespace nucleisam::metrics
