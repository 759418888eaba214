// The magnification of images that do not record their resolution, judged from the nuclei a method
// finds in them. A tile from a 20x scan (0.5 um/px) given to a model trained at 40x (0.25 um/px)
// shows nuclei at half their size, and one from a microscope camera at 80x (0.125 um/px) at twice
// it; the model loses much of its accuracy on either (docs/segment.md, "Images at another
// resolution"). Two signs tell such images apart, measured on random 16-image samples of the
// MoNuSeg and CoNSeP splits and of the same splits written again at half and at twice their
// magnification (docs/segment.md, "Images that record no resolution"):
//  - size: at half the magnification the nuclei found, taken at the method's resolution, are
//    small (median equivalent diameter 2.6-3.6 um for the 20x versions, 4.1-5.8 um for the
//    originals). At twice it size says little: the model splits nuclei larger than it learned;
//  - confidence: a model is surest at the scale it learned. Segmented again as 20x images
//    (enlarged 2x), true 20x images give nuclei scores about as high as at 40x or higher (mean
//    -0.015 to +0.12), true 40x images clearly lower ones (-0.038 to -0.17); segmented again as
//    80x images (shrunk 2x), true 80x images give clearly higher ones (+0.034 to +0.19), true 40x
//    images lower or about the same (-0.17 to +0.009), and their nuclei shrunk measure 2.5-3.6 um
//    (4.0-5.8 um for the 80x versions).
// Half the magnification is tried when the nuclei are small, twice it otherwise, and either is
// chosen only when both signs say so; otherwise the method's own resolution is kept, as it was
// before this check existed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "nucleisam/infer/segmenter.h"

namespace nucleisam::infer {

// The median equivalent diameter 2 sqrt(area / pi) of nuclei of these areas (pixels) at `mpp` um/px;
// an even count averages the two middle diameters. 0 for no nuclei.
double median_diameter_um(std::vector<int64_t> areas, double mpp);
// The same for areas already in um^2.
double median_diameter_um(std::vector<double> areas_um2);

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
  int64_t min_nuclei = 30;              // fewer in the sample: no judgement, the method's resolution
  double try_lower_below_um = 4.2;      // median diameter at the method's resolution under which the
                                        // sample is segmented again at half the magnification
  double score_margin = 0.02;           // ... which is chosen when its mean score is at least the
                                        // method resolution's minus this
  double higher_score_gain = 0.015;     // otherwise the sample is segmented again at twice the
                                        // magnification, which is chosen only when its mean score is at
                                        // least the method resolution's plus this (a clear gain, not a tie)
  double min_diameter_um = 3.5;         // at half the magnification the nuclei measure at least this
  double higher_min_diameter_um = 4.0;  // ... at twice it at least this (40x nuclei shrunk 2x read
                                        // 2.5-3.6 um, seldom more: a wider gap than the other way)
  double max_diameter_um = 10;          // and at most this (nuclei are about 4-8 um across)
};

// Whether the sample, as segmented at the method's resolution, is worth segmenting again at half
// the magnification: enough scored nuclei, and small ones.
bool worth_trying_lower_magnification(const NucleusSizeEvidence& at_method,
                                      const MagnificationRule& rule = {});

// Whether half the magnification (images at twice the method's um/px) explains the sample better:
// worth trying, enough nuclei found at it, of a plausible size, and a mean score within the margin.
bool lower_magnification_fits(const NucleusSizeEvidence& at_method, const NucleusSizeEvidence& at_lower,
                              const MagnificationRule& rule = {});

// Whether the sample is worth segmenting again at twice the magnification (images at half the
// method's um/px, shrunk 2x: a quarter of the pixels): enough scored nuclei that are not small.
// Size alone does not tell an image at twice the magnification: the model splits nuclei larger
// than it learned, so their median grows far less than 2x (MoNuSeg enlarged 2x reads 6.9 um at
// 0.25 um/px against 5.2 um for the originals; CoNSeP 4.6-5.8 against 4.3-5.1).
bool worth_trying_higher_magnification(const NucleusSizeEvidence& at_method,
                                       const MagnificationRule& rule = {});

// Whether twice the magnification explains the sample better: worth trying, enough nuclei found at
// it, of a plausible size, and a mean score clearly above the method resolution's.
bool higher_magnification_fits(const NucleusSizeEvidence& at_method, const NucleusSizeEvidence& at_higher,
                               const MagnificationRule& rule = {});

// "312 nuclei, median 3.1 um across, mean score 0.852" for logs.
std::string describe(const NucleusSizeEvidence& e);

}  // namespace nucleisam::infer
