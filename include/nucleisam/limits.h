// Resource limits for untrusted input, in one place. Every reader checks the sizes a file
// declares (in its header) against these before it allocates, and refuses with an error that
// names the file and the limit. docs/security.md lists them with the reasons for each default.
#pragma once

#include <cstdint>
#include <string>

namespace nucleisam::limits {

// Pixels of an image read whole into memory (width x height, from the header, before decoding).
// 2^30 is OpenCV's own default (OPENCV_IO_MAX_IMAGE_PIXELS); larger images are whole slides.
constexpr int64_t kMaxImagePixels = int64_t{1} << 30;
// Bytes of a decoded image (width x height x channels x bytes per sample), from the header.
constexpr int64_t kMaxImageBytes = int64_t{4} << 30;
// Bytes of one tensor or array a checkpoint, model file or .npy declares (shape x item size),
// checked before the data is touched; it must also fit inside the file.
constexpr int64_t kMaxTensorBytes = int64_t{32} << 30;
// Nesting depth of any JSON document (configs, model metadata, safetensors headers, GeoJSON,
// point files): deeper documents are refused before the recursive parser sees them.
constexpr int kMaxJsonDepth = 64;
// Zip archives (.pth): entries, declared uncompressed bytes of one entry, and the ratio of
// declared uncompressed to compressed size (a zip bomb declares a huge ratio).
constexpr int64_t kMaxZipEntries = 1'000'000;
constexpr int64_t kMaxZipEntryBytes = kMaxTensorBytes;
constexpr int64_t kMaxZipRatio = 100;
// Distinct instance labels in one label map (4.2 million nuclei in one image, several times what
// the largest image read whole can hold): the per-label arrays of evaluation, training targets and
// stitching are sized by this count. Checked when labels are renumbered (relabel_consecutive, which
// every label-map reader calls), before any per-label array exists.
constexpr int64_t kMaxLabels = int64_t{1} << 22;
// Longest name (bytes) of a file written under an output folder (POSIX NAME_MAX is 255; the
// suffixes we append need room).
constexpr size_t kMaxOutputNameBytes = 200;

// Throws IoError("<name>: JSON nests deeper than <kMaxJsonDepth> levels ...") when `text` (a JSON
// document) opens more than kMaxJsonDepth arrays or objects inside each other. Strings are
// skipped, so brackets inside them do not count. Call it before handing text to a recursive parser.
void check_json_depth(const std::string& text, const std::string& name);

}  // namespace nucleisam::limits
