// `nucleisam segment` as a library call: images in, the standard outputs out (QuPath GeoJSON,
// nucleus CSV, instance label TIFF, overlay PNG), resumable and robust to bad images in a folder.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "nucleisam/infer/nucleus.h"
#include "nucleisam/infer/segmenter.h"
#include "nucleisam/stain.h"

namespace nucleisam::infer {

struct OutputFormats {
  bool geojson = true;  // <stem>.geojson
  bool csv = true;      // <stem>_nuclei.csv
  bool labels = true;   // <stem>_labels.tif
  bool overlay = true;  // <stem>_overlay.png
  bool summary = true;  // segment_summary.csv of a run over several inputs (not per image)
};

// "geojson,csv,labels,overlay" (any subset, any order, at least one of them), and "summary" when
// with_summary (segment's; refine writes none). Throws OptionError naming the unknown entry.
OutputFormats parse_output_formats(const std::string& list, bool with_summary = false);

// The files `formats` selects for one image, in the order above.
std::vector<std::string> output_paths(const std::string& out_dir, const std::string& stem, const OutputFormats& formats);

// Builds the Nucleus list from `segmentation` and writes each selected output atomically (a
// crash leaves each file either complete or absent). mpp > 0: the label TIFF records the image's
// resolution. Returns the nuclei written.
std::vector<Nucleus> write_segmentation_outputs(const std::string& out_dir, const std::string& stem,
                                                const Image& image, const Segmentation& segmentation,
                                                const OutputFormats& formats, double mpp = 0);

// The files of `folder` (not hidden) whose name `accept` takes, sorted by path; recursive: those of
// its subfolders too, at any depth (hidden folders skipped; links to folders followed, each folder
// listed once; out_dir skipped when it lies inside). accept's second argument says whether the
// file's outputs go to its own folder (out_dir is that folder, or mirrors it there). Throws IoError
// when a folder cannot be listed.
std::vector<std::string> list_input_files(const std::string& folder, const std::string& out_dir,
                                          bool recursive,
                                          const std::function<bool(const std::string&, bool)>& accept);

// Whether a file of this name is an image to segment (.png .jpg .jpeg .tif .tiff .bmp); with
// skip_output_names, not when it is named like our outputs (*_labels.tif, *_overlay.png,
// *_thumbnail.png).
bool is_input_image(const std::string& name, bool skip_output_names);

// The images to segment: `input` itself when it is a file; else the image files (.png .jpg .jpeg
// .tif .tiff .bmp, not hidden) of the folder (recursive: and of its subfolders, list_input_files),
// sorted by path. Files named like our own outputs (*_labels.tif, *_overlay.png,
// *_thumbnail.png) are left out where outputs go to their own folder, and everywhere in a
// recursive search (an earlier run's outputs below the input). Their outputs are named by
// output_stem_below(input, image) (output_path.h): a file's stem, under its folders below input.
// Throws IoError when the input is missing or holds no images, OptionError when two images share
// an output stem (their outputs would collide).
std::vector<std::string> find_input_images(const std::string& input, const std::string& out_dir,
                                           bool recursive = false);

struct SegmentRunOptions {
  std::string out_dir;
  OutputFormats formats;
  bool overwrite = false;      // false: skip images whose selected outputs all exist (resume)
  bool stop_on_error = false;  // true: the first failing image throws (single-file runs)
  int tile_size = 0;           // > 0: segment in windows of this size and stitch (segment_in_tiles)
  int tile_overlap = 64;
  // Microns per pixel of the images; > 0: each image is segmented at the segmenter's resolution
  // and its outputs mapped back to the image's pixels (infer/image_resolution.h). 0: each image's
  // own record of its resolution (io::read_image_mpp) is used, and an image without one is taken
  // to be at the segmenter's resolution. Tile size and overlap are in processing pixels.
  double mpp = 0;
  // With mpp 0, for the images whose resolution is unknown: true, a sample of them is segmented at
  // the segmenter's resolution and again at half the magnification (twice the um/px) when its
  // nuclei are small, else at twice it (half the um/px), and all of them are taken to be at
  // whichever the nuclei favour (infer/magnification.h); false, they are taken to be at the
  // segmenter's resolution.
  bool estimate_unknown_mpp = true;
  // Not off: each image's stains are estimated (Macenko, nucleisam/stain.h) and the image is
  // segmented through the normalisation's map (the overlay keeps the original pixels). An image
  // whose stains cannot be estimated (too little tissue, one stain) is segmented as it is.
  StainNormalization stains;
  // true: out_dir/segment_summary.csv gets a row per image (infer/run_summary.h), kept with the rows
  // earlier runs wrote; rewritten atomically every 2 s (images / 500 s for more than 1000 images)
  // and at the end.
  bool summary = false;
};

struct SegmentRunReport {
  int segmented = 0;
  int skipped = 0;
  long long nuclei = 0;                                      // over the images segmented now
  std::vector<std::pair<std::string, std::string>> failures;  // image, cause
  // Images whose pixels are all grey (R = G = B): segmented, with a warning that the methods expect
  // colour H&E.
  std::vector<std::string> grey_images;
  // With stain normalisation: images whose stains were changed, and those whose could not be
  // estimated (with why).
  int stains_normalised = 0;
  std::vector<std::pair<std::string, std::string>> stains_not_normalised;
  // The resolution the images that record none (and no --mpp) were taken to be at: the
  // segmenter's, or twice or half its um/px when their nuclei said so; 0 when there were none or the
  // segmenter's resolution is unknown. magnification_note: what the sample's nuclei said ("" when
  // no sample was segmented: estimate_unknown_mpp off, or every such image already done).
  double unknown_mpp = 0;
  std::string magnification_note;
  // Median equivalent diameter (um) of the nuclei of the images whose resolution was assumed
  // (unknown_mpp); 0 when there are none or the segmenter's resolution is unknown.
  double median_diameter_um = 0;
  // Non-empty when those images gave at least 20 nuclei with a median diameter outside 3.5-10 um
  // (nuclei are about 4-8 um across): a warning, logged too, that the images are probably at
  // another magnification.
  std::string resolution_hint;
};

// The hint of SegmentRunReport::resolution_hint for nuclei with these areas (pixels) segmented by a
// method at method_mpp um/px from images taken to be at it; "" when nothing looks wrong.
std::string resolution_hint(const std::vector<int64_t>& areas, double method_mpp, double* median_diameter_um = nullptr);

// One image of a run: a file, or an image held elsewhere (a sample of a dataset stored as arrays).
struct InputImage {
  std::string path;  // the file; for another image, the name that logs and failures give it
  // Outputs are <stem>.geojson, ...; "" = output_stem(path). A stem may name subfolders of the
  // output folder ("case 1/x", output_path.h): they are created, and temporaries a killed run left
  // there removed.
  std::string stem;
  // null: read the file at `path` (and the resolution it records). Else the image's pixels, and
  // `mpp` its resolution (0 unknown); --mpp (SegmentRunOptions::mpp) overrides it as for files.
  std::function<Image()> read;
  double mpp = 0;
};

// The resolution of images that record none, judged from the nuclei of `sample` (all taken to be
// at one unknown resolution) as a run judges its images' (SegmentRunOptions::estimate_unknown_mpp):
// the segmenter's, or twice or half its um/px. judged: false when the nuclei could not tell (a
// method without scores, too few nuclei, a failure); mpp is then the segmenter's. evidence: what
// the nuclei said. `what` names the sample in the log ("images", "regions of slide.tif").
struct ResolutionJudgement {
  double mpp = 0;
  bool judged = false;
  std::string evidence;
};
ResolutionJudgement judge_resolution(const std::vector<InputImage>& sample, Segmenter& segmenter,
                                     const StainNormalization& stains, const std::string& what = "images");

// Segments each image in turn with a progress display and one info line per image. An image that
// cannot be read or segmented is recorded in failures and the run goes on (unless stop_on_error);
// a failure to write outputs stops the run (it concerns the destination, so every later image would
// fail the same way) by throwing.
SegmentRunReport run_segmentation(const std::vector<InputImage>& images, Segmenter& segmenter,
                                  const SegmentRunOptions& options);
// The same for image files.
SegmentRunReport run_segmentation(const std::vector<std::string>& images, Segmenter& segmenter,
                                  const SegmentRunOptions& options);

}  // namespace nucleisam::infer
