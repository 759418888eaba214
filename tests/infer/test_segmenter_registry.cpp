// The segmenter table: the built-in classical entry, options reaching the factory, needs checked
// before building, unknown and duplicate names refused, and methods added from outside.
#include <gtest/gtest.h>

#include "nucleisam/errors.h"
#include "nucleisam/infer/classical_segmenter.h"
#include "nucleisam/infer/segmenter_registry.h"

using namespace nucleisam;
using namespace nucleisam::infer;

namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const OptionError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no OptionError";
  return "";
}

// Records the options it was built with.
struct FakeSegmenter : Segmenter {
  explicit FakeSegmenter(SegmenterOptions o) : options(std::move(o)) {}
  std::string name() const override { return "fake"; }
  Segmentation segment(const Image& image, const std::string&) override {
    Segmentation s;
    s.instances = LabelMap(image.height, image.width);
    return s;
  }
  SegmenterOptions options;
};

}  // namespace

TEST(SegmenterRegistry, ClassicalIsBuiltInAndGetsTheOptions) {
  ASSERT_FALSE(segmenters().empty());
  EXPECT_EQ(segmenters()[0].name, "classical");
  EXPECT_FALSE(segmenters()[0].needs.model_file);
  SegmenterOptions o;
  o.min_area = 77;
  o.split_depth = 0.5f;
  o.threshold_scale = 1.5f;
  auto s = build_segmenter("classical", o);
  auto* classical = dynamic_cast<ClassicalSegmenter*>(s.get());
  ASSERT_NE(classical, nullptr);
  EXPECT_EQ(classical->options().split.min_area, 77);
  EXPECT_FLOAT_EQ(classical->options().split.split_depth, 0.5f);
  EXPECT_FLOAT_EQ(classical->options().threshold_scale, 1.5f);
  EXPECT_NE(error_of([] { build_segmenter("unet", {}); }).find("unknown segmentation method (known: classical"),
            std::string::npos);
}

TEST(SegmenterRegistry, MethodsAddedFromOutsideAreCheckedAndBuilt) {
  register_segmenter({"fake-needs-model", "test entry", {/*model_file=*/true, /*sam_checkpoint=*/false},
                      [](const SegmenterOptions& o) { return std::make_unique<FakeSegmenter>(o); }});
  EXPECT_EQ(segmenters().back().name, "fake-needs-model");
  EXPECT_EQ(error_of([] { build_segmenter("fake-needs-model", {}); }), "--model fake-needs-model needs --model-file (trained weights)");
  SegmenterOptions o;
  o.model_file = "weights.safetensors";
  auto s = build_segmenter("fake-needs-model", o);
  EXPECT_EQ(dynamic_cast<FakeSegmenter&>(*s).options.model_file, "weights.safetensors");
  // Names are unique, and an entry needs a factory.
  EXPECT_NE(error_of([] { register_segmenter({"classical", "again", {}, [](const SegmenterOptions& o) {
                            return std::make_unique<FakeSegmenter>(o);
                          }}); }).find("registered twice"),
            std::string::npos);
  EXPECT_NE(error_of([] { register_segmenter({"no-factory", "x", {}, nullptr}); }).find("has no factory"),
            std::string::npos);
}
