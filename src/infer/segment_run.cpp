// The segment pipeline over a list of images: read, segment, polygons, writers; resume and
// failure bookkeeping.
#include "nucleisam/infer/segment_run.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <functional>
#include <iomanip>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "nucleisam/atomic_file.h"
#include "nucleisam/errors.h"
#include "nucleisam/image_io.h"
#include "nucleisam/infer/image_resolution.h"
#include "nucleisam/infer/magnification.h"
#include "nucleisam/infer/run_summary.h"
#include "nucleisam/infer/tiling.h"
#include "nucleisam/io/geojson.h"
#include "nucleisam/io/nucleus_table.h"
#include "nucleisam/io/overlay.h"
#include "nucleisam/log.h"
#include "nucleisam/output_path.h"
#include "nucleisam/progress.h"
#include "nucleisam/stain.h"

namespace fs = std::filesystem;

namespace nucleisam::infer {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool same_folder(const std::string& a, const std::string& b) {
  std::error_code ec;
  return fs::exists(a, ec) && fs::exists(b, ec) && fs::equivalent(a, b, ec);
}

// The part of a failure that names the cause: our errors already start with the path.
std::string cause_of(const std::string& image, const std::string& what) {
  if (what.rfind(image + ": ", 0) == 0) return what.substr(image.size() + 2);
  return what;
}

bool all_grey(const Image& image) {
  if (image.channels != 3) return false;
  for (size_t i = 0; i + 2 < image.data.size(); i += 3)
    if (image.data[i] != image.data[i + 1] || image.data[i] != image.data[i + 2]) return false;
  return true;
}

// An image as read, and the pixels the method sees (stain-normalised when they differ).
struct PreparedImage {
  Image image, normalised;
  std::string stains_why;  // why the image's stains could not be estimated
  const Image& method_input() const { return normalised.empty() ? image : normalised; }
};

// The image's pixels: from its dataset, or its file.
Image read_input(const InputImage& input) { return input.read ? input.read() : io::read_image(input.path); }

PreparedImage prepare_image(const InputImage& input, const StainNormalization& stains) {
  PreparedImage p;
  p.image = read_input(input);
  if (stains.mode != StainNormalization::Mode::off) {
    const StainEstimate estimate = estimate_stains({&p.image});
    const StainMap map = plan_stain_map(stains, estimate);
    if (!map.identity) p.normalised = apply_stain_map(map, p.image);
    p.stains_why = estimate.why;
    if (map.identity)
      log::debug(input.path, ": ", map.note);
    else
      log::info(input.path, ": ", map.note);
  }
  return p;
}

// The centre size x size of `image` (all of it when smaller).
Image centre_crop(const Image& image, int size) {
  const int w = std::min(image.width, size), h = std::min(image.height, size);
  return window(image, (image.width - w) / 2, (image.height - h) / 2, w, h);
}

// A sampled image's segmentation at the resolution chosen for the images that record none, kept so
// that the run does not segment it twice.
struct ProbedImage {
  Segmentation segmentation;
  bool normalised = false;
  std::string stains_why;
};

constexpr int kProbeImages = 16;                  // images sampled, evenly over the run's list
constexpr int64_t kProbePixels = 16'000'000;      // sampling stops once this many pixels are segmented
constexpr int64_t kWholeProbePixels = 4'000'000;  // larger images: their centre only, not kept
constexpr int kProbeCrop = 2048;

// The resolution of the images that record none (unknown[i]): the method's, or half or twice its
// magnification when a sample's nuclei say so (infer/magnification.h). Fills `probed` with the
// sampled images' segmentations at the chosen resolution. `what` names them in the log ("images";
// "tissue regions of <slide>").
ResolutionJudgement estimate_unknown_resolution(const std::vector<InputImage>& images,
                                                const std::vector<size_t>& unknown, Segmenter& segmenter,
                                                const SegmentRunOptions& options,
                                                std::map<size_t, ProbedImage>& probed, const std::string& what) {
  ResolutionJudgement j;
  const double method_mpp = segmenter.microns_per_pixel();
  struct Sample {
    size_t index;
    bool whole;
    PreparedImage prepared;
    Segmentation at_method, at_other;  // at the method's resolution; at the other one tried
  };
  std::vector<Sample> samples;
  int64_t pixels = 0;
  const size_t k = std::min<size_t>(kProbeImages, unknown.size());
  for (size_t j = 0; j < k && pixels < kProbePixels; ++j) {
    const size_t index = unknown[(2 * j + 1) * unknown.size() / (2 * k)];
    try {
      Sample s{index, true, prepare_image(images[index], options.stains), {}, {}};
      if (static_cast<int64_t>(s.prepared.image.pixels()) > kWholeProbePixels) {
        s.whole = false;
        s.prepared.image = centre_crop(s.prepared.image, kProbeCrop);
        if (!s.prepared.normalised.empty())
          s.prepared.normalised = centre_crop(s.prepared.normalised, kProbeCrop);
      }
      s.at_method = segment_at_resolution(segmenter, s.prepared.method_input(), images[index].path, 0,
                                          options.tile_size, options.tile_overlap);
      pixels += static_cast<int64_t>(s.prepared.image.pixels());
      samples.push_back(std::move(s));
    } catch (const std::exception& e) {
      // The run itself reports the image when it reaches it.
      log::debug(images[index].path, ": not used to judge the magnification (", e.what(), ")");
    }
  }
  const auto evidence = [&](Segmentation Sample::*which, double mpp) {
    std::vector<const Segmentation*> all;
    for (const Sample& s : samples) all.push_back(&(s.*which));
    return nucleus_size_evidence(all, mpp);
  };
  const NucleusSizeEvidence at_method = evidence(&Sample::at_method, method_mpp);
  std::ostringstream m;
  m << "nuclei of " << samples.size() << " of them at " << method_mpp << " um/px: " << describe(at_method);
  double chosen = method_mpp;
  const MagnificationRule rule;
  if (!at_method.scored && at_method.nuclei > 0)
    m << "; " << segmenter.name() << " gives its nuclei no scores, so nothing is judged";
  else if (at_method.nuclei < rule.min_nuclei)
    m << "; too few nuclei to judge (" << rule.min_nuclei << " needed)";
  // Small nuclei: half the magnification (twice the um/px) is tried; large ones: twice it.
  const bool lower = worth_trying_lower_magnification(at_method, rule);
  if (lower || worth_trying_higher_magnification(at_method, rule)) {
    const double other = lower ? 2 * method_mpp : method_mpp / 2;
    log::info("segment: ", what, " that record no resolution: ", m.str(), "; ", lower ? "small" : "large",
              " for nuclei, so the ", samples.size(), " again as if at ", other, " um/px (",
              lower ? "half" : "twice", " the magnification)");
    try {
      for (Sample& s : samples)
        s.at_other = segment_at_resolution(segmenter, s.prepared.method_input(), images[s.index].path, other,
                                           options.tile_size, options.tile_overlap);
      const NucleusSizeEvidence at_other = evidence(&Sample::at_other, other);
      m << "; at " << other << " um/px: " << describe(at_other);
      j.judged = true;
      if (lower ? lower_magnification_fits(at_method, at_other, rule)
                : higher_magnification_fits(at_method, at_other, rule))
        chosen = other;
    } catch (const std::exception& e) {  // memory, most likely: judge nothing
      m << "; at " << other << " um/px: failed (" << e.what() << ")";
    }
  }
  for (Sample& s : samples)
    if (s.whole)
      probed[s.index] = {std::move(chosen != method_mpp ? s.at_other : s.at_method),
                         !s.prepared.normalised.empty(), s.prepared.stains_why};
  j.mpp = chosen;
  j.evidence = m.str();
  return j;
}

}  // namespace

ResolutionJudgement judge_resolution(const std::vector<InputImage>& sample, Segmenter& segmenter,
                                     const StainNormalization& stains, const std::string& what) {
  std::vector<size_t> all(sample.size());
  for (size_t i = 0; i < sample.size(); ++i) all[i] = i;
  SegmentRunOptions options;
  options.stains = stains;
  std::map<size_t, ProbedImage> probed;  // the run of a sample keeps its segmentations; this call does not
  return estimate_unknown_resolution(sample, all, segmenter, options, probed, what);
}

namespace {

// What a run did to an image's stains, for its summary row.
std::string stains_column(const StainNormalization& stains, bool normalised, const std::string& why) {
  if (stains.mode == StainNormalization::Mode::off) return "off";
  if (normalised) return "normalised";
  return why.empty() ? "as is" : "not estimated: " + why;
}

// The summary row of an image an earlier run finished whose row the summary lacks (a run killed
// before it wrote the summary, or a summary deleted): what its nucleus table says, when it has one.
RunSummaryRow rebuilt_row(const std::string& image, const std::string& table, double mpp) {
  RunSummaryRow row{{"image", image}, {"status", "segmented"}};
  std::error_code ec;
  if (table.empty() || !fs::exists(table, ec)) return row;
  try {
    describe_nuclei(io::read_nucleus_table(table), {}, mpp, row);
  } catch (const std::exception& e) {
    log::warn(e.what(), "; its row in the run summary has no counts");
  }
  return row;
}

// The resolution an earlier run into the same folder judged for the images that record none (it is
// drawn from all of them, done or not, so this run would judge the same): that of a finished one
// whose summary row says the same method judged it from the nuclei. 0 when there is none; `stem`
// names the image.
double earlier_judgement(const RunSummary& summary, const std::vector<size_t>& unknown,
                         const std::vector<char>& done, const std::vector<std::string>& stems,
                         const std::string& method, std::string& stem) {
  for (size_t i : unknown) {
    const RunSummaryRow* row = done[i] ? summary.find(stems[i]) : nullptr;
    const auto is = [&](const char* column, const std::string& value) {
      const auto it = row->find(column);
      return it != row->end() && it->second == value;
    };
    if (!row || !is("status", "segmented") || !is("mpp_source", "nuclei") || !is("method", method) ||
        !row->count("mpp"))
      continue;
    try {
      const double mpp = std::stod(row->at("mpp"));
      if (mpp > 0) {
        stem = stems[i];
        return mpp;
      }
    } catch (const std::exception&) {  // not a number: judge again
    }
  }
  return 0;
}

}  // namespace

std::string resolution_hint(const std::vector<int64_t>& areas, double mpp, double* median_diameter_um) {
  if (median_diameter_um) *median_diameter_um = 0;
  if (!(mpp > 0) || areas.empty()) return "";
  const double d = infer::median_diameter_um(areas, mpp);  // qualified: the parameter has its name
  if (median_diameter_um) *median_diameter_um = d;
  if (areas.size() < 20 || (d >= 3.5 && d <= 10)) return "";
  std::ostringstream m;
  m.precision(2);
  m << "the nuclei found are " << d << " um across (median of " << areas.size() << ") at the assumed " << mpp
    << " um/px, " << (d < 3.5 ? "smaller" : "larger") << " than nuclei usually are (4-8 um): if the images are at "
    << (d < 3.5 ? "a lower magnification (a 20x scan is about 0.5 um/px)" : "a higher magnification")
    << ", give their resolution with --mpp";
  return m.str();
}

OutputFormats parse_output_formats(const std::string& list, bool with_summary) {
  OutputFormats f{false, false, false, false, false};
  const std::string choices =
      with_summary ? "geojson,csv,labels,overlay,summary" : "geojson,csv,labels,overlay";
  std::stringstream s(list);
  std::string item;
  bool any = false;  // a per-image output
  while (std::getline(s, item, ',')) {
    if (item == "summary" && with_summary) {
      f.summary = true;
      continue;
    }
    if (item == "geojson") f.geojson = true;
    else if (item == "csv") f.csv = true;
    else if (item == "labels") f.labels = true;
    else if (item == "overlay") f.overlay = true;
    else
      throw OptionError("--formats: unknown output \"" + item + "\" (choose from " + choices + ")");
    any = true;
  }
  if (!any) throw OptionError("--formats: name at least one of geojson,csv,labels,overlay");
  return f;
}

std::vector<std::string> output_paths(const std::string& out_dir, const std::string& stem,
                                      const OutputFormats& formats) {
  std::vector<std::string> paths;
  if (formats.geojson) paths.push_back(stem_output_path(out_dir, stem, ".geojson"));
  if (formats.csv) paths.push_back(stem_output_path(out_dir, stem, "_nuclei.csv"));
  if (formats.labels) paths.push_back(stem_output_path(out_dir, stem, "_labels.tif"));
  if (formats.overlay) paths.push_back(stem_output_path(out_dir, stem, "_overlay.png"));
  return paths;
}

std::vector<Nucleus> write_segmentation_outputs(const std::string& out_dir, const std::string& stem,
                                                const Image& image, const Segmentation& segmentation,
                                                const OutputFormats& formats, double mpp) {
  if (!segmentation.instances.same_size(image))
    throw DataError(stem + ": segmentation is " + std::to_string(segmentation.instances.width) + "x" +
                    std::to_string(segmentation.instances.height) + " but the image is " +
                    std::to_string(image.width) + "x" + std::to_string(image.height));
  std::vector<Nucleus> nuclei = nuclei_from_instances(segmentation.instances, segmentation.classes,
                                                      segmentation.scores, segmentation.class_names);
  const auto path = [&](const char* suffix) { return stem_output_path(out_dir, stem, suffix); };
  ensure_parent_dir(path(".x"));
  if (formats.geojson) io::write_qupath_geojson(path(".geojson"), nuclei);
  if (formats.csv) io::write_nucleus_table(path("_nuclei.csv"), nuclei);
  if (formats.labels) io::write_label_map(path("_labels.tif"), segmentation.instances, mpp);
  if (formats.overlay) io::write_image(path("_overlay.png"), io::draw_nucleus_overlay(image, nuclei));
  return nuclei;
}

bool is_input_image(const std::string& name, bool skip_output_names) {
  static const std::vector<std::string> kImageExtensions = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"};
  const std::string ext = io::lower_extension(name);
  if (std::find(kImageExtensions.begin(), kImageExtensions.end(), ext) == kImageExtensions.end()) return false;
  return !skip_output_names || !(ends_with(name, "_labels.tif") || ends_with(name, "_overlay.png") ||
                                 ends_with(name, "_thumbnail.png"));
}

std::vector<std::string> list_input_files(const std::string& folder, const std::string& out_dir,
                                          bool recursive,
                                          const std::function<bool(const std::string&, bool)>& accept) {
  std::vector<std::string> files;
  std::set<fs::path> visited;  // folders by their real path: one reached twice (links) is listed once
  std::error_code ec;
  const fs::path out_real = fs::weakly_canonical(out_dir, ec);
  const std::function<void(const fs::path&, const fs::path&)> walk = [&](const fs::path& dir,
                                                                         const fs::path& relative) {
    std::error_code e;
    const fs::path real = fs::canonical(dir, e);
    if (!e && !visited.insert(real).second) return;
    std::vector<fs::directory_entry> entries;
    for (fs::directory_iterator it(dir, e); !e && it != fs::directory_iterator(); it.increment(e))
      entries.push_back(*it);
    if (e) {
      // The folder given must be listed; a subfolder that cannot be (permissions) is left out, said.
      if (relative.empty()) throw IoError(dir.string() + ": cannot list folder (" + e.message() + ")");
      log::warn(dir.string(), ": cannot list folder (", e.message(), "); its files are left out");
      return;
    }
    const bool outputs_here = same_folder(dir.string(), (fs::path(out_dir) / relative).string());
    // By name, so that of two ways to one folder the same is always taken.
    std::sort(entries.begin(), entries.end());
    for (const fs::directory_entry& entry : entries) {
      const std::string name = entry.path().filename().string();
      if (name.empty() || name[0] == '.') continue;  // hidden files and folders
      std::error_code t;
      if (entry.is_directory(t)) {  // links to folders too
        if (!recursive) continue;
        std::error_code r;
        if (fs::canonical(entry.path(), r) == out_real) continue;  // the output folder is no input
        walk(entry.path(), relative / name);
      } else if (entry.is_regular_file(t) && accept(name, outputs_here)) {
        files.push_back(entry.path().string());
      }
    }
  };
  walk(folder, fs::path());
  std::sort(files.begin(), files.end());
  return files;
}

std::vector<std::string> find_input_images(const std::string& input, const std::string& out_dir,
                                           bool recursive) {
  std::error_code ec;
  if (!fs::exists(input, ec)) throw IoError(input + ": no such file or folder");
  if (!fs::is_directory(input, ec)) return {input};

  // Beside their own outputs, or anywhere below a --recursive input (an earlier run's outputs in a
  // subfolder), files named like outputs are not inputs.
  const std::vector<std::string> images =
      list_input_files(input, out_dir, recursive, [recursive](const std::string& name, bool outputs_here) {
        return is_input_image(name, outputs_here || recursive);
      });
  if (images.empty())
    throw IoError(input +
                  (recursive ? ": folder and its subfolders hold no images" : ": folder holds no images") +
                  " (.png .jpg .jpeg .tif .tiff .bmp)");
  std::map<std::string, std::string> by_stem;
  for (const auto& p : images) {
    auto [it, fresh] = by_stem.emplace(output_stem_below(input, p), p);
    if (!fresh)
      throw OptionError(p + " and " + it->second + " share the name \"" + it->first +
                       "\", so their outputs would overwrite each other; rename one");
  }
  return images;
}

SegmentRunReport run_segmentation(const std::vector<std::string>& images, Segmenter& segmenter,
                                  const SegmentRunOptions& options) {
  std::vector<InputImage> inputs;
  for (const auto& path : images) inputs.push_back({path, "", nullptr, 0});
  return run_segmentation(inputs, segmenter, options);
}

SegmentRunReport run_segmentation(const std::vector<InputImage>& images, Segmenter& segmenter,
                                  const SegmentRunOptions& options) {
  SegmentRunReport report;
  if (options.tile_size > 0) plan_tiles(1, 1, options.tile_size, options.tile_overlap);  // bad sizes: OptionError now
  const double method_mpp = segmenter.microns_per_pixel();
  if (options.mpp > 0 && method_mpp > 0) {
    const double factor = snap_scale_factor(options.mpp / method_mpp);
    if (factor == 1)
      log::info("segment: images at ", options.mpp, " um/px, the resolution of ", segmenter.name(), " (", method_mpp,
                " um/px): segmented as they are");
    else
      log::info("segment: images at ", options.mpp, " um/px are resampled x", factor, " to the ", method_mpp,
                " um/px of ", segmenter.name(), "; outputs are in the images' own pixels");
  } else if (options.mpp > 0) {
    log::warn("segment: ", segmenter.name(), " does not say which resolution it expects; --mpp ", options.mpp,
              " is ignored and the images are segmented as they are");
  }
  // Each image's resolution: --mpp, else what the file or dataset records, else (0) unknown.
  std::vector<double> file_mpp(images.size(), 0.0);
  std::vector<size_t> unknown;  // images whose resolution is unknown
  // Images whose selected outputs all exist (skipped unless --overwrite).
  std::vector<char> done(images.size(), 0);
  std::vector<std::string> stems;
  std::set<std::string> subfolders;  // of out_dir, named by stems (a --recursive run's mirrored folders)
  for (const InputImage& input : images) {
    stems.push_back(input.stem.empty() ? output_stem(input.path) : input.stem);
    const size_t slash = stems.back().rfind('/');
    if (slash != std::string::npos) subfolders.insert(stems.back().substr(0, slash));
  }
  for (const std::string& folder : subfolders)  // those of an earlier run killed mid-write
    remove_stale_temporaries(stem_output_path(options.out_dir, folder, ""));
  for (size_t i = 0; i < images.size() && !options.overwrite; ++i) {
    const auto outputs = output_paths(options.out_dir, stems[i], options.formats);
    done[i] = std::all_of(outputs.begin(), outputs.end(), [](const std::string& p) { return fs::exists(p); });
  }
  bool unknown_pending = false;
  for (size_t i = 0; i < images.size() && options.mpp <= 0; ++i) {
    file_mpp[i] = images[i].read ? images[i].mpp : io::read_image_mpp(images[i].path);
    if (file_mpp[i] > 0) continue;
    unknown.push_back(i);
    unknown_pending = unknown_pending || !done[i];
  }
  std::optional<RunSummary> summary;
  if (options.summary) summary.emplace(output_path_inside(options.out_dir, kRunSummaryFile));
  // The images with unknown resolution are taken to be at unknown_mpp; the sample that chose it is
  // not segmented again. The sample is drawn from all of them, done or not, so that a resumed run
  // decides as the first did; one that finds the first run's verdict in the summary takes it.
  double unknown_mpp = method_mpp;
  std::map<size_t, ProbedImage> probed;
  std::string judged_before;  // the finished image whose summary row gave the verdict
  bool judged_now = false;    // this run's sample judged it (the method scores enough nuclei)
  const double earlier =
      options.estimate_unknown_mpp && method_mpp > 0 && unknown_pending && summary
          ? earlier_judgement(*summary, unknown, done, stems, segmenter.name(), judged_before)
          : 0;
  if (earlier > 0) {
    unknown_mpp = earlier;
    std::ostringstream note;
    note << "images that record no resolution are taken to be at " << earlier
         << " um/px, as the run that segmented " << judged_before << " judged from their nuclei ("
         << kRunSummaryFile << "; --overwrite judges again)";
    report.magnification_note = note.str();
    log::info("segment: ", report.magnification_note);
  } else if (options.estimate_unknown_mpp && method_mpp > 0 && unknown_pending) {
    log::info("segment: ", unknown.size(),
              " images record no resolution; their magnification is judged from the ",
              "nuclei of a sample of them (--mpp gives it)");
    const ResolutionJudgement j = estimate_unknown_resolution(images, unknown, segmenter, options, probed, "images");
    unknown_mpp = j.mpp;
    judged_now = j.judged;
    std::ostringstream note;
    note << "images that record no resolution are taken to be at " << unknown_mpp << " um/px";
    if (unknown_mpp != method_mpp)
      note << " (a scan at " << (unknown_mpp > method_mpp ? "half" : "twice") << " the magnification "
           << segmenter.name() << " was made for) and resampled to " << method_mpp
           << " um/px; give --mpp if they are not";
    else
      note << ", the resolution of " << segmenter.name();
    report.magnification_note = note.str() + " (" + j.evidence + ")";
    log::info("segment: ", report.magnification_note);
  } else if (method_mpp > 0 && !unknown.empty()) {
    log::info("segment: images that do not record their resolution are taken to be at ", method_mpp,
              " um/px, the resolution of ", segmenter.name(),
              "; give --mpp when they are not (a 20x scan is about 0.5)");
  }
  report.unknown_mpp = unknown.empty() ? 0 : unknown_mpp;
  const bool judged = earlier > 0 || judged_now;
  // An image's resolution as the run took it, and where that came from (infer/run_summary.h); 0 and
  // "" when unknown.
  const auto resolution_of = [&](size_t index) -> std::pair<double, std::string> {
    if (options.mpp > 0) return {options.mpp, "option"};
    if (file_mpp[index] > 0) return {file_mpp[index], images[index].read ? "dataset" : "file"};
    if (method_mpp <= 0) return {0, ""};
    if (judged) return {unknown_mpp, "nuclei"};
    // Not estimated, or the sample could not judge (a method without scores, too few nuclei).
    if (!options.estimate_unknown_mpp || unknown_pending) return {method_mpp, "model"};
    return {0, ""};  // every such image was done earlier: no judgement this time
  };
  auto summary_written = std::chrono::steady_clock::now();
  // Rewritten every 2 s, or every (images / 500) s for runs over 1000 images, so that a run of
  // 100,000 tiles does not rewrite its 20 MB table every 2 s.
  const auto summary_interval =
      std::chrono::duration<double>(std::max(2.0, static_cast<double>(images.size()) / 500.0));
  const auto record = [&](size_t index, RunSummaryRow row,
                          const std::vector<std::string>& class_columns = {}) {
    if (!summary) return;
    const auto [mpp, source] = resolution_of(index);
    if (mpp > 0 && !row.count("mpp")) {
      std::ostringstream m;
      m << mpp;
      row["mpp"] = m.str();
      row["mpp_source"] = source;
    }
    summary->set(stems[index], std::move(row), class_columns);
    const auto now = std::chrono::steady_clock::now();
    if (now - summary_written > summary_interval) {
      summary->reload_others(stems);
      summary->write(stems);
      summary_written = now;
    }
  };
  std::vector<int64_t> areas;  // of every nucleus of an image whose resolution was assumed
  Progress progress("segment", static_cast<int64_t>(images.size()), "img");
  for (size_t index = 0; index < images.size(); ++index) {
    const InputImage& input_image = images[index];
    const std::string& path = input_image.path;
    const std::string& stem = stems[index];
    if (done[index]) {
      probed.erase(index);  // sampled, but done by an earlier run
      if (summary) {
        // An earlier run's row is kept; a missing one (or one of a failure) is rebuilt.
        const RunSummaryRow* kept = summary->find(stem);
        if (!kept || kept->count("status") == 0 || kept->at("status") != "segmented")
          record(index,
                 rebuilt_row(
                     path, options.formats.csv ? stem_output_path(options.out_dir, stem, "_nuclei.csv") : "",
                     resolution_of(index).first));
      }
      log::info(path, ": outputs already in ", options.out_dir, ", skipped (--overwrite redoes them)");
      ++report.skipped;
      progress.advance();
      continue;
    }
    const auto start = std::chrono::steady_clock::now();
    Image image;
    bool normalised = false;  // the method saw stain-normalised pixels
    std::string stains_why;   // why the image's stains could not be estimated
    Segmentation segmentation;
    const double image_mpp = options.mpp > 0 ? options.mpp : file_mpp[index];  // 0: unknown
    // Where it is unknown, the resolution the run took (the method's, or estimated).
    const double assumed_mpp = image_mpp > 0 ? 0 : unknown_mpp;
    const bool estimated = assumed_mpp > 0 && assumed_mpp != method_mpp;
    const auto sampled = probed.find(index);
    const bool from_sample = sampled != probed.end();
    try {
      if (from_sample) {
        image = read_input(input_image);
        segmentation = std::move(sampled->second.segmentation);
        normalised = sampled->second.normalised;
        stains_why = std::move(sampled->second.stains_why);
        probed.erase(sampled);
      } else {
        PreparedImage p = prepare_image(input_image, options.stains);
        segmentation =
            segment_at_resolution(segmenter, p.method_input(), path, estimated ? assumed_mpp : image_mpp,
                                  options.tile_size, options.tile_overlap);
        normalised = !p.normalised.empty();
        stains_why = std::move(p.stains_why);
        image = std::move(p.image);
      }
    } catch (const std::exception& e) {
      // cv::Exception and bad_alloc are per-image too: a corrupt or huge tile must not cost the rest.
      if (options.stop_on_error) throw;
      std::string cause = cause_of(path, e.what());
      cause = cause.substr(0, cause.find('\n'));
      log::warn(path, ": failed: ", cause);
      report.failures.emplace_back(path, cause);
      record(index, {{"image", path}, {"status", "failed"}, {"method", segmenter.name()}, {"error", cause}});
      progress.advance();
      continue;
    }
    if (all_grey(image)) {
      log::warn(path, ": the image is grey (no colour); ", segmenter.name(),
                " expects colour H&E, so its nuclei may be missed or wrong");
      report.grey_images.push_back(path);
    }
    auto nuclei = write_segmentation_outputs(options.out_dir, stem, image, segmentation, options.formats, image_mpp);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::ostringstream line;
    line.precision(4);  // resolutions as they are (0.125, 0.2527); seconds fixed below
    line << path << ": " << nuclei.size() << " nuclei (" << image.width << "x" << image.height;
    if (options.mpp <= 0 && image_mpp > 0)
      line << " at " << image_mpp << " um/px as "
           << (input_image.read ? "its dataset states" : "the file records");
    else if (estimated)
      line << " taken to be at " << assumed_mpp << " um/px from its nuclei";
    line << ", " << segmenter.name() << ", " << std::fixed << std::setprecision(2);
    if (from_sample)
      line << "segmented with the sample that judged the resolution)";
    else
      line << seconds << " s)";
    log::info(line.str());
    if (summary) {
      RunSummaryRow row{{"image", path},
                        {"status", "segmented"},
                        {"width", std::to_string(image.width)},
                        {"height", std::to_string(image.height)},
                        {"method", segmenter.name()},
                        {"stains", stains_column(options.stains, normalised, stains_why)}};
      if (!from_sample) {
        std::ostringstream s;
        s << std::fixed << std::setprecision(2) << seconds;
        row["seconds"] = s.str();
      }
      const auto class_columns =
          describe_nuclei(nuclei, segmentation.class_names, resolution_of(index).first, row);
      record(index, std::move(row), class_columns);
    }
    ++report.segmented;
    report.stains_normalised += normalised;
    if (!stains_why.empty()) report.stains_not_normalised.emplace_back(path, stains_why);
    report.nuclei += static_cast<long long>(nuclei.size());
    if (assumed_mpp > 0)
      for (const Nucleus& n : nuclei) areas.push_back(n.area);
    progress.advance();
  }
  progress.finish();
  if (summary) {
    summary->reload_others(stems);
    summary->write(stems);
    log::info("segment: a row per image in ", summary->path());
  }
  if (options.stains.mode != StainNormalization::Mode::off && report.segmented > 0)
    log::info("segment: stains normalised in ", report.stains_normalised, " of ", report.segmented, " images");
  if (!report.stains_not_normalised.empty())
    log::warn("segment: ", report.stains_not_normalised.size(), " of ", images.size(),
              " images segmented without stain normalisation (", report.stains_not_normalised.front().first, ": ",
              report.stains_not_normalised.front().second, report.stains_not_normalised.size() > 1 ? "; ..." : "", ")");
  // Over the images whose resolution was assumed (none with --mpp).
  report.resolution_hint = resolution_hint(areas, unknown_mpp, &report.median_diameter_um);
  if (!report.resolution_hint.empty()) log::warn("segment: ", report.resolution_hint);
  return report;
}

}  // namespace nucleisam::infer
