// The magnification of images that do not record their resolution, judged from the nuclei a method
// finds in them. A tile from a 20x scan (0.5 um/px) given to a model trained at 40x (0.25 um/px)
// shows nuclei at half their size, and the model loses much of its accuracy on it (docs/segment.md,
// "Images at another resolution"). Two signs tell such images apart, measured on random 16-image
// samples of the MoNuSeg and CoNSeP splits and of the same splits written again as a 20x scanner
// would give them (docs/segment.md, "Images that record no resolution"):
//  - size: the nuclei found, taken at the method's resolution, are small (median equivalent
//    diameter 2.6-3.6 um for the 20x versions, 4.1-5.8 um for the originals);
//  - confidence: segmented again as 20x images (enlarged 2x), true 20x images give nuclei scores
//    about as high as at 40x or higher (mean -0.015 to +0.12), true 40x images clearly lower ones
//    (-0.038 to -0.17): a model is surest at the scale it learned.
// Half the magnification is chosen only when both say so; otherwise the method's own resolution
// is kept, as it was before this check existed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "nucleisam/infer/segmenter.h"

namespace nucleisam::infer {

// The median equivalent diameter 2 sqrt(area / pi) of nuclei of these areas (pixels) at `mpp` um/px;
// an even count averages the two middle diameters. 0 for no nuclei.
double median_diameter_um(std::vector<int64_t> areas, double mpp);

// What the nuclei of a sample of images look like when the images are taken to be at `mpp`.
struct NucleusSizeEvidence {
  int64_t nuclei = 0;
  double median_diameter_um = 0;  // equivalent diameter 2 sqrt(area / pi), times mpp
  double mean_score = 0;          // of the nuclei's scores (Segmentation::scores)
  bool scored = false;            // every segmentation carried a score per nucleus
};

// The evidence of segmentations on their images' own grid, the images taken to be at `mpp` (> 0).
NucleusSizeEvidence nucleus_size_evidence(const std::vector<const Segmentation*>& segmentations, double mpp);

struct MagnificationRule {
  int64_t min_nuclei = 30;             // fewer in the sample: no judgement, the method's resolution
  double try_lower_below_um = 4.2;     // median diameter at the method's resolution under which the
                                       // sample is segmented again at half the magnification
  double score_margin = 0.02;          // ... which is chosen when its mean score is at least the
                                       // method resolution's minus this
  double lower_min_diameter_um = 3.5;  // ... and its nuclei then measure at least this (nuclei are
  double lower_max_diameter_um = 10;   // about 4-8 um across) and at most this
};

// Whether the sample, as segmented at the method's resolution, is worth segmenting again at half
// the magnification: enough scored nuclei, and small ones.
bool worth_trying_lower_magnification(const NucleusSizeEvidence& at_method,
                                      const MagnificationRule& rule = {});

// Whether half the magnification (images at twice the method's um/px) explains the sample better:
// worth trying, enough nuclei found at it, of a plausible size, and a mean score within the margin.
bool lower_magnification_fits(const NucleusSizeEvidence& at_method, const NucleusSizeEvidence& at_lower,
                              const MagnificationRule& rule = {});

// "312 nuclei, median 3.1 um across, mean score 0.852" for logs.
std::string describe(const NucleusSizeEvidence& e);

}  // namespace nucleisam::infer
