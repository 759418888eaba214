// `nucleisam segment` on a whole slide: the pyramid level and resampling chosen from the model's
// and the slide's microns per pixel, tissue found on a low-resolution overview, then a streaming
// pipeline over the tissue tiles (read + resample on one thread, the segmenter on the calling
// thread, seam stitching + polygons + writing on another, bounded queues between them), each
// nucleus written once and whole (infer/slide_stitch.h: the tile owning its centroid, or its
// pieces joined across tiles), outputs appended as tiles finish, a journal of finished tiles for
// resuming. Nothing slide-sized is ever held in memory.
//
// Depends only on the Segmenter interface: every registered method and trained model runs here.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "nucleisam/infer/segmenter.h"
#include "nucleisam/io/slide.h"
#include "nucleisam/nucleus.h"
#include "nucleisam/stain.h"
#include "nucleisam/tile_plan.h"

namespace nucleisam::infer {

// How the slide's pixels reach the segmenter: the "processing grid" is the slide resampled to the
// segmenter's resolution; processing pixel (u, v) covers level-0 pixels [u*d, (u+1)*d) x [v*d, (v+1)*d).
struct SlideResampling {
  int level = 0;                  // pyramid level read
  double level_downsample = 1;    // level-0 pixels per pixel of that level
  double factor = 1;              // level pixels per processing pixel
  bool integer_factor = true;     // factor is whole: k x k block means; else block means + bilinear
  double downsample = 1;          // d: level-0 pixels per processing pixel
  double slide_mpp = 0;           // microns per level-0 pixel
  double mpp = 0;                 // microns per processing pixel (slide_mpp * d)
  int64_t width = 0, height = 0;  // processing grid size
};

// The level with the largest downsample not above target_mpp / slide_mpp, and the factor from it.
// A factor within 3% of a whole number is taken as that number (scanners report 0.2527 for
// "0.25"). target_mpp 0 (a method that does not know its resolution) processes level 0 as is.
// Throws OptionError when slide_mpp is not positive.
SlideResampling plan_slide_resampling(const std::vector<io::SlideLevel>& levels, double slide_mpp,
                                      double target_mpp);

// The processing-grid window (x, y, w, h) resampled from the slide (reads only that area).
Image read_processing_window(const io::Slide& slide, const SlideResampling& r, int64_t x, int64_t y, int w,
                             int h);

// A low-resolution RGB overview of the whole slide, at most max_side pixels on its longer side,
// read block by block (bounded memory even for slides without a pyramid). `downsample` receives
// the level-0 pixels per overview pixel.
Image read_slide_overview(const io::Slide& slide, int max_side, double* downsample);

// Tissue on an overview: summed optical density above 0.15 and some colour (max - min channel
// above 10, which rules out glass, grey dust and black scanner borders), specks removed, then
// grown by one pixel. 255 = tissue.
Mask detect_tissue(const Image& overview);

// A user's tissue region on the overview grid (width x height, `downsample` level-0 pixels per
// pixel): an image of any size stretched over the slide (non-zero = tissue) or a GeoJSON of
// Polygon / MultiPolygon features in level-0 pixel coordinates. IoError naming the file.
Mask read_tissue_mask(const std::string& path, int width, int height, double downsample);

enum class TissueSource { detect, all, mask };

struct SlideRunOptions {
  std::string out_dir;
  int tile_size = 1024;   // processing pixels
  int tile_overlap = 64;  // processing pixels; at least the largest nucleus diameter
  double mpp = 0;         // > 0: overrides the slide's microns per pixel
  TissueSource tissue = TissueSource::detect;
  std::string tissue_mask;  // for TissueSource::mask: an image or a GeoJSON
  bool geojson = true;      // <stem>.geojson
  bool csv = true;          // <stem>_nuclei.csv
  bool thumbnail = true;    // <stem>_thumbnail.png
  bool labels = false;      // <stem>_labels.tif: tiled pyramidal instance labels at the processing resolution
  bool overwrite = false;   // false: skip a slide whose outputs exist, resume one with a journal
  int queue_depth = 2;      // tiles waiting between two stages
  int64_t stop_after_tiles = -1;  // tests: throw after this many tiles were written (a "kill")
  // Not off: the slide's stains are estimated once, from up to 16 tissue tiles spread over it, and
  // every tile goes through the same map (so tiles agree at their seams).
  StainNormalization stains;
  // A slide that records no resolution (and no mpp): true, judged from the nuclei of a few tissue
  // regions as image runs judge theirs (segment_run.h, judge_resolution; refused, "give --mpp",
  // when they cannot tell); false, taken to be at the segmenter's resolution.
  bool estimate_unknown_mpp = true;
};

struct SlideTimes {
  double read = 0, preprocess = 0, model = 0, postprocess = 0, write = 0, wall = 0;  // seconds
};

struct SlideReport {
  bool skipped = false;         // outputs existed
  int64_t tiles = 0;            // tiles in the plan
  int64_t tissue_tiles = 0;     // tiles with tissue (the ones segmented)
  int64_t resumed_tiles = 0;    // tissue tiles already done by an earlier run
  int64_t replayed_tiles = 0;   // of those, segmented again to rebuild the pending seams (not written twice)
  int64_t nuclei = 0;
  int64_t merged_nuclei = 0;    // nuclei stitched from pieces of several tiles (whole slide, resumed runs included)
  int64_t cut_nuclei = 0;       // nuclei ending at a window edge with no segmented tile beyond it (no tissue there)
  std::map<std::string, int64_t> per_class;  // class name ("" unclassified) -> count
  // Over every nucleus (0 when there are none): mean area, median equivalent diameter, mean score.
  double mean_area_um2 = 0, median_diameter_um = 0, mean_score = 0;
  double tissue_mm2 = 0;
  SlideResampling resampling;
  std::string stains;  // with stain normalisation: what it did ("haematoxylin amount 6.06 -> 3.31", ...)
  SlideTimes times;
};

// <stem>.geojson, <stem>_nuclei.csv, <stem>_summary.json, <stem>_thumbnail.png, <stem>_labels.tif
// (those selected).
std::vector<std::string> slide_output_paths(const std::string& out_dir, const std::string& stem,
                                            const SlideRunOptions& options);

// Header of the slide nucleus CSV.
inline constexpr const char* kSlideNucleusHeader =
    "id,class,class_name,centroid_x,centroid_y,centroid_x_um,centroid_y_um,area_um2,perimeter_um,score";

// Segments one slide into out_dir. IoError / OptionError naming the slide for a file that is not
// a slide, a slide without resolution and no override, a bad tissue mask; errors of the segmenter
// pass through. The partial outputs of an interrupted run are hidden files plus a journal; the same
// call later resumes and gives byte-identical GeoJSON and CSV. Outputs are named after `stem`
// (output_path.h: it may name subfolders of out_dir, which are created), by default the slide's
// file stem.
SlideReport run_slide(const std::string& slide_path, Segmenter& segmenter, const SlideRunOptions& options,
                      const std::string& stem = "");

// Cohorts. A manifest lists one slide per line (blank lines and # comments skipped; relative paths
// are relative to the manifest's folder). IoError when unreadable or empty, OptionError when two
// slides share a file stem (their outputs would collide).
std::vector<std::string> read_manifest(const std::string& path);

struct Shard {
  int index = 0;  // 0 <= index < count
  int count = 1;
};
// "i/N", or "auto": a Slurm job array (SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN of
// SLURM_ARRAY_TASK_COUNT) or a Kubernetes indexed Job (JOB_COMPLETION_INDEX of
// NUCLEISAM_SHARD_COUNT). `getenv` is std::getenv in the CLI. OptionError for anything else.
Shard parse_shard(const std::string& spec, const std::function<const char*(const char*)>& getenv);
// Slide i belongs to shard i mod N: the shards of one list cover each slide exactly once.
std::vector<std::string> shard_slides(const std::vector<std::string>& slides, const Shard& shard);

}  // namespace nucleisam::infer
