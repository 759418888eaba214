// A refinement session on disk: the per-crop results of one image with one category-SAM model and
// the points each crop ran with, so that the next `nucleisam refine` of the same image (another
// process) re-runs only the crops whose points changed (CategorySamSegmenter::update). The file
// is a cache: a missing, stale or damaged session only means that every crop runs again.
#pragma once

#include <optional>
#include <string>

#include "nucleisam/predict/category_sam_segmenter.h"

namespace nucleisam::predict {

// What a session must match to be reused: the image's pixels, the model file's bytes, the precision
// and the decoding of crops into instances (the crop grid is checked by CategorySamSegmenter::update).
// The digests are FNV-1a, 64 bits: they tell versions of the inputs apart, they do not authenticate
// them (whoever can write the output folder can write the outputs themselves).
std::string refine_session_key(const Image& image, const std::string& model_path,
                               const CategorySamSegmenterOptions& options);

// The most crop pixels (crops x crop side^2) a session may hold: 2^27, 512 MiB of labels, about a
// 5,800 x 5,800 image at the default stride of half a crop. Larger images are refined without a
// session (every call runs every crop).
constexpr int64_t kMaxRefineSessionPixels = int64_t{1} << 27;

struct RefineSession {
  std::string key;
  TiledSegmentation tiled;
};

// Writes the session atomically (nucleisam::IoError when it cannot).
void write_refine_session(const std::string& path, const RefineSession& session);
// The session in `path`; nullopt when there is no such file. DataError naming the file when it is
// not a session or is damaged (every count is checked against the grid before anything is allocated).
std::optional<RefineSession> read_refine_session(const std::string& path);

}  // namespace nucleisam::predict
