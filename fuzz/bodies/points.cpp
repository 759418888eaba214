// Fuzz body of refine's points files (cli/points.h): JSON {"points": [...]} or a QuPath GeoJSON of
// point annotations, read for a model with CoNSeP's four nucleus classes.
#include <string>

#include "cli/points.h"
#include "harness.h"

namespace nucleisam::fuzz {

void fuzz_points(const uint8_t* data, size_t size) {
  static const models::ModelCard card = [] {
    models::ModelCard c;
    c.arch = "category-sam";
    c.heads.categories = true;
    c.heads.num_classes = 4;
    c.class_names = {"background", "other", "inflammatory", "epithelial", "spindle-shaped"};
    return c;
  }();
  (void)cli::read_points_file(scratch_file(data, size, ".geojson"), card);
}

}  // namespace nucleisam::fuzz
