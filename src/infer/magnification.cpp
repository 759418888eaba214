// Judging the magnification of images from the nuclei found in them (infer/magnification.h).
#include "nucleisam/infer/magnification.h"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace nucleisam::infer {

namespace {

// The median of diameter(a) over `areas` (diameter monotone, so the median area's diameter).
template <typename Area, typename Diameter>
double median_diameter(std::vector<Area> areas, Diameter diameter) {
  if (areas.empty()) return 0;
  const size_t mid = areas.size() / 2;
  std::nth_element(areas.begin(), areas.begin() + static_cast<std::ptrdiff_t>(mid), areas.end());
  const double upper = diameter(areas[mid]);
  if (areas.size() % 2) return upper;
  return 0.5 * (upper + diameter(*std::max_element(areas.begin(), areas.begin() + static_cast<std::ptrdiff_t>(mid))));
}

}  // namespace

double median_diameter_um(std::vector<int64_t> areas, double mpp) {
  return median_diameter(std::move(areas),
                         [mpp](int64_t a) { return 2.0 * std::sqrt(static_cast<double>(a) / M_PI) * mpp; });
}

double median_diameter_um(std::vector<double> areas_um2) {
  return median_diameter(std::move(areas_um2), [](double a) { return 2.0 * std::sqrt(a / M_PI); });
}

NucleusSizeEvidence nucleus_size_evidence(const std::vector<const Segmentation*>& segmentations, double mpp) {
  NucleusSizeEvidence e;
  std::vector<int64_t> areas;
  double score_sum = 0;
  e.scored = !segmentations.empty();
  for (const Segmentation* s : segmentations) {
    int32_t n = 0;
    for (int32_t id : s->instances.data) n = std::max(n, id);
    std::vector<int64_t> area(static_cast<size_t>(n) + 1, 0);
    for (int32_t id : s->instances.data)
      if (id > 0) ++area[static_cast<size_t>(id)];
    for (int32_t id = 1; id <= n; ++id)
      if (area[static_cast<size_t>(id)] > 0) areas.push_back(area[static_cast<size_t>(id)]);
    if (s->scores.size() != static_cast<size_t>(n)) e.scored = false;
    for (float v : s->scores) score_sum += v;
  }
  e.nuclei = static_cast<int64_t>(areas.size());
  if (areas.empty()) {
    e.scored = false;
    return e;
  }
  e.median_diameter_um = median_diameter_um(std::move(areas), mpp);
  if (e.scored) e.mean_score = score_sum / static_cast<double>(e.nuclei);
  return e;
}

bool worth_trying_lower_magnification(const NucleusSizeEvidence& at_method, const MagnificationRule& rule) {
  return at_method.scored && at_method.nuclei >= rule.min_nuclei &&
         at_method.median_diameter_um < rule.try_lower_below_um;
}

namespace {

// Enough scored nuclei of a median size between `smallest` and the rule's largest.
bool plausible_nuclei(const NucleusSizeEvidence& e, double smallest, const MagnificationRule& rule) {
  return e.scored && e.nuclei >= rule.min_nuclei && e.median_diameter_um >= smallest &&
         e.median_diameter_um <= rule.max_diameter_um;
}

}  // namespace

bool lower_magnification_fits(const NucleusSizeEvidence& at_method, const NucleusSizeEvidence& at_lower,
                              const MagnificationRule& rule) {
  return worth_trying_lower_magnification(at_method, rule) &&
         plausible_nuclei(at_lower, rule.min_diameter_um, rule) &&
         at_lower.mean_score >= at_method.mean_score - rule.score_margin;
}

bool worth_trying_higher_magnification(const NucleusSizeEvidence& at_method, const MagnificationRule& rule) {
  return at_method.scored && at_method.nuclei >= rule.min_nuclei &&
         at_method.median_diameter_um >= rule.try_lower_below_um;
}

bool higher_magnification_fits(const NucleusSizeEvidence& at_method, const NucleusSizeEvidence& at_higher,
                               const MagnificationRule& rule) {
  return worth_trying_higher_magnification(at_method, rule) &&
         plausible_nuclei(at_higher, rule.higher_min_diameter_um, rule) &&
         at_higher.mean_score >= at_method.mean_score + rule.higher_score_gain;
}

std::string describe(const NucleusSizeEvidence& e) {
  std::ostringstream m;
  m.setf(std::ios::fixed);
  m.precision(1);
  m << e.nuclei << " nuclei, median " << e.median_diameter_um << " um across";
  m.precision(3);
  if (e.scored) m << ", mean score " << e.mean_score;
  return m.str();
}

}  // namespace nucleisam::infer
