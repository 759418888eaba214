// Dataset readers: every format on small files written here in the published layouts (Lizard
// .mat, CoNIC and PanNuke .npy, generic folder), MoNuSeg and CoNSeP from ../shared, format
// detection, relabelling, and the bad-data errors.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "nucleisam/atomic_file.h"
#include "nucleisam/data/readers.h"
#include "nucleisam/errors.h"
#include "nucleisam/image_io.h"
#include "nucleisam/io/aperio_xml.h"
#include "nucleisam/io/mat_file.h"
#include "nucleisam/npy.h"
#include "support/test_support.h"

using namespace nucleisam;
using namespace nucleisam::io;
using namespace nucleisam::data;
namespace fs = std::filesystem;

namespace {

// 6 x 8 image whose pixel (y, x) has colour (10 y, 10 x, 7).
Image test_image(int h = 6, int w = 8) {
  Image img(h, w, 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      img.at(y, x, 0) = static_cast<uint8_t>(10 * y);
      img.at(y, x, 1) = static_cast<uint8_t>(10 * x);
      img.at(y, x, 2) = 7;
    }
  return img;
}

// 6 x 8 instances with gaps: ids 4 (2 px), 9 (3 px) and 20 (1 px).
LabelMap gappy_labels() {
  LabelMap m(6, 8);
  m.at(0, 0) = 4;
  m.at(0, 1) = 4;
  m.at(2, 2) = 9;
  m.at(2, 3) = 9;
  m.at(3, 3) = 9;
  m.at(5, 7) = 20;
  return m;
}

void write_text(const std::string& path, const std::string& text) { write_file_atomic(path, text); }

template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

int count_ids(const LabelMap& m) {
  std::set<int32_t> s(m.data.begin(), m.data.end());
  s.erase(0);
  return static_cast<int>(s.size());
}

}  // namespace

TEST(Relabel, RemovesGapsKeepingOrder) {
  LabelMap m = gappy_labels();
  std::vector<int32_t> old = relabel_consecutive(m);
  EXPECT_EQ(old, (std::vector<int32_t>{4, 9, 20}));
  EXPECT_EQ(m.at(0, 0), 1);
  EXPECT_EQ(m.at(3, 3), 2);
  EXPECT_EQ(m.at(5, 7), 3);
  EXPECT_EQ(m.at(1, 1), 0);
  LabelMap neg(1, 2);
  neg.data = {0, -3};
  EXPECT_NE(error_of([&] { relabel_consecutive(neg, "bad.png"); }).find("bad.png"), std::string::npos);
}

TEST(SampleTest, ClassMapFollowsInstances) {
  Sample s;
  s.instances = LabelMap(1, 4);
  s.instances.data = {0, 1, 2, 2};
  s.classes = {3, 5};
  s.classed = true;
  EXPECT_EQ(s.instance_count(), 2);
  EXPECT_EQ(s.class_map().data, (std::vector<int32_t>{0, 3, 5, 5}));
  s.classed = false;
  s.classes.clear();
  EXPECT_EQ(s.class_map().data, (std::vector<int32_t>{0, 1, 1, 1}));
}

TEST(FolderDataset, LoadsImagesLabelsAndClasses) {
  test::TempDir dir;
  write_image(dir.file("images/a.png"), test_image());
  write_label_map(dir.file("labels/a.png"), gappy_labels());
  write_text(dir.file("classes/a.csv"), "instance,class\n4,2\n9,1\n20,2\n");
  write_text(dir.file("class_names.txt"), "tumour\nstroma\n");
  EXPECT_EQ(detect_format(dir.path()), "folder");
  auto ds = open_dataset(dir.path());
  ASSERT_EQ(ds->size(), 1u);
  EXPECT_EQ(ds->name(0), "a");
  EXPECT_EQ(ds->class_names(), (ClassNames{"background", "tumour", "stroma"}));
  Sample s = ds->get(0);
  EXPECT_EQ(s.image, test_image());
  EXPECT_EQ(s.instance_count(), 3);
  EXPECT_EQ(s.classes, (std::vector<int>{2, 1, 2}));
  EXPECT_TRUE(s.classed);
  EXPECT_EQ(s.instances.at(2, 3), 2);
}

TEST(FolderDataset, ClassNamesWithoutClassesAreRefused) {
  test::TempDir dir;
  write_image(dir.file("images/a.png"), test_image());
  write_label_map(dir.file("labels/a.png"), gappy_labels());
  write_text(dir.file("class_names.txt"), "tumour\nstroma\n");
  const std::string e = error_of([&] { open_dataset(dir.path(), "folder"); });
  EXPECT_NE(e.find("class_names.txt"), std::string::npos) << e;
  EXPECT_NE(e.find("classes/"), std::string::npos) << e;
  write_text(dir.file("classes/a.csv"), "instance,class\n4,2\n9,1\n20,2\n");
  EXPECT_EQ(open_dataset(dir.path(), "folder")->class_names().size(), 3u);
}

TEST(FolderDataset, BadDataNamesTheFile) {
  test::TempDir dir;
  write_image(dir.file("images/a.png"), test_image());
  LabelMap short_labels(5, 8);  // one row short
  short_labels.at(1, 1) = 4;
  write_label_map(dir.file("labels/a.png"), short_labels);
  write_image(dir.file("images/b.png"), test_image());
  write_label_map(dir.file("labels/b.png"), gappy_labels());
  write_text(dir.file("classes/a.csv"), "instance,class\n4,1\n9,1\n20,1\n");
  write_text(dir.file("classes/b.csv"), "instance,class\n4,1\n9,7\n20,1\n");
  write_text(dir.file("class_names.txt"), "x\ny\n");
  auto ds = open_dataset(dir.path(), "folder");
  std::string e = error_of([&] { ds->get(0); });
  EXPECT_NE(e.find("labels/a.png"), std::string::npos) << e;
  EXPECT_NE(e.find("8x5"), std::string::npos) << e;
  e = error_of([&] { ds->get(1); });
  EXPECT_NE(e.find("classes/b.csv"), std::string::npos) << e;
  EXPECT_NE(e.find("unknown class id 7"), std::string::npos) << e;
  // An unreadable image: the error names it.
  write_text(dir.file("images/b.png"), "not a png");
  e = error_of([&] { ds->get(1); });
  EXPECT_NE(e.find("images/b.png"), std::string::npos) << e;
  // Numbers are strict: "12abc" is an error naming the file and the line.
  write_text(dir.file("classes/b.csv"), "instance,class\n4,1\n9,12abc\n");
  write_image(dir.file("images/b.png"), test_image());
  e = error_of([&] { ds->get(1); });
  EXPECT_NE(e.find("classes/b.csv: line 3: \"12abc\" is not a number (expected an integer)"), std::string::npos) << e;
  // An instance missing from the class CSV.
  write_text(dir.file("classes/b.csv"), "instance,class\n4,1\n");
  write_image(dir.file("images/b.png"), test_image());
  e = error_of([&] { ds->get(1); });
  EXPECT_NE(e.find("instance 9 has no class"), std::string::npos) << e;
  // Two images with one stem would share one label file: refused at open.
  write_image(dir.file("images/a.jpg"), test_image());
  e = error_of([&] { open_dataset(dir.path(), "folder"); });
  EXPECT_NE(e.find("share the stem 'a'"), std::string::npos) << e;
  std::filesystem::remove(dir.file("images/a.jpg"));
  // A missing label map is reported at open time.
  fs::remove(dir.file("labels/b.png"));
  e = error_of([&] { open_dataset(dir.path(), "folder"); });
  EXPECT_NE(e.find("images/b.png"), std::string::npos) << e;
}

TEST(LizardDataset, ReadsMatLabelsInPublishedLayout) {
  test::TempDir dir;
  const std::string labels = dir.file("Lizard_Labels/Labels/consep_1.mat");
  write_image(dir.file("Lizard_Images1/consep_1.png"), test_image());
  LabelMap inst = gappy_labels();
  MatArray map{"inst_map", MatClass::int32, {6, 8}, {}};
  for (int32_t v : inst.data) map.values.push_back(v);
  // Lizard lists ids in any order; class follows the same row.
  MatArray id{"id", MatClass::int32, {3, 1}, {20, 4, 9}};
  MatArray cls{"class", MatClass::int32, {3, 1}, {6, 1, 3}};
  MatArray bbox{"bbox", MatClass::int32, {3, 4}, std::vector<double>(12, 0)};
  write_mat(labels, {map, id, cls, bbox}, true);
  EXPECT_EQ(detect_format(dir.path()), "lizard");
  auto ds = open_dataset(dir.path());
  ASSERT_EQ(ds->size(), 1u);
  EXPECT_EQ(ds->class_names().at(1), "neutrophil");
  EXPECT_EQ(ds->class_names().at(6), "connective");
  Sample s = ds->get(0);
  EXPECT_EQ(s.name, "consep_1");
  EXPECT_EQ(s.instances.at(0, 1), 1);
  EXPECT_EQ(s.instances.at(2, 2), 2);
  EXPECT_EQ(s.classes, (std::vector<int>{1, 3, 6}));

  cls.values = {6, 1, 9};
  write_mat(labels, {map, id, cls}, false);
  std::string e = error_of([&] { ds->get(0); });
  EXPECT_NE(e.find("consep_1.mat"), std::string::npos) << e;
  EXPECT_NE(e.find("unknown class id 9"), std::string::npos) << e;

  write_mat(labels, {MatArray{"inst_map", MatClass::int32, {2, 2}, {0, 0, 0, 0}}, id, cls});
  e = error_of([&] { ds->get(0); });
  EXPECT_NE(e.find("consep_1.mat"), std::string::npos) << e;
  EXPECT_NE(e.find("2x2"), std::string::npos) << e;
}

TEST(ConicDataset, ReadsStackedArrays) {
  test::TempDir dir;
  const int n = 2, h = 6, w = 8;
  std::vector<uint8_t> images;
  std::vector<int32_t> labels(static_cast<size_t>(n) * h * w * 2, 0);
  for (int i = 0; i < n; ++i) {
    Image img = test_image();
    for (auto& v : img.data) images.push_back(static_cast<uint8_t>(v + i));
  }
  // Sample 1: instance 5 (class 3) with one stray pixel voting class 2, instance 8 (class 6).
  auto at = [&](int i, int y, int x, int c) -> int32_t& {
    return labels[((static_cast<size_t>(i) * h + y) * w + x) * 2 + c];
  };
  for (int x = 0; x < 3; ++x) at(1, 1, x, 0) = 5, at(1, 1, x, 1) = 3;
  at(1, 1, 2, 1) = 2;
  at(1, 4, 4, 0) = 8, at(1, 4, 4, 1) = 6;
  write_npy(dir.file("images.npy"), images, {n, h, w, 3});
  write_npy(dir.file("labels.npy"), labels, {n, h, w, 2});
  EXPECT_EQ(detect_format(dir.path()), "conic");
  auto ds = open_dataset(dir.path());
  ASSERT_EQ(ds->size(), 2u);
  Sample s0 = ds->get(0), s1 = ds->get(1);
  EXPECT_EQ(s0.instance_count(), 0);
  EXPECT_TRUE(s0.classed);
  EXPECT_EQ(s1.image.at(2, 3, 1), 31);  // 10 * x + sample index
  EXPECT_EQ(s1.instances.at(1, 0), 1);
  EXPECT_EQ(s1.instances.at(4, 4), 2);
  EXPECT_EQ(s1.classes, (std::vector<int>{3, 6}));  // majority vote for instance 5
  EXPECT_NE(ds->name(0), ds->name(1));

  at(1, 4, 4, 1) = 0;  // an instance whose pixels say "background class"
  write_npy(dir.file("labels.npy"), labels, {n, h, w, 2});
  std::string e = error_of([&] { open_dataset(dir.path())->get(1); });
  EXPECT_NE(e.find("labels.npy"), std::string::npos) << e;
  EXPECT_NE(e.find("unknown class id 0"), std::string::npos) << e;

  write_npy(dir.file("labels.npy"), labels.data(), {n, h, w - 1, 2});
  e = error_of([&] { open_dataset(dir.path()); });
  EXPECT_NE(e.find("labels.npy"), std::string::npos) << e;
  EXPECT_NE(e.find("does not match"), std::string::npos) << e;
}

TEST(PannukeDataset, MergesPerClassChannelsInReleaseLayout) {
  test::TempDir dir;
  const int n = 1, h = 4, w = 5;
  std::vector<double> images(static_cast<size_t>(n) * h * w * 3, 200.4);
  std::vector<double> masks(static_cast<size_t>(n) * h * w * 6, 0);
  auto at = [&](int y, int x, int c) -> double& { return masks[(static_cast<size_t>(y) * w + x) * 6 + c]; };
  at(0, 0, 1) = 12;  // inflammatory
  at(0, 1, 1) = 12;
  at(2, 2, 0) = 30;  // neoplastic
  at(3, 4, 4) = 12;  // epithelial, same id as the inflammatory one: still a separate nucleus
  at(3, 4, 5) = 0;
  fs::create_directories(dir.file("images/fold1"));
  fs::create_directories(dir.file("masks/fold1"));
  write_npy(dir.file("images/fold1/images.npy"), images, {n, h, w, 3});
  write_npy(dir.file("masks/fold1/masks.npy"), masks, {n, h, w, 6});
  EXPECT_EQ(detect_format(dir.path()), "pannuke");
  auto ds = open_dataset(dir.path());
  Sample s = ds->get(0);
  EXPECT_EQ(s.image.at(1, 1, 2), 200);
  EXPECT_EQ(s.instance_count(), 3);
  // Channel order: neoplastic (1), inflammatory (2), epithelial (5).
  EXPECT_EQ(s.instances.at(2, 2), 1);
  EXPECT_EQ(s.instances.at(0, 1), 2);
  EXPECT_EQ(s.instances.at(3, 4), 3);
  EXPECT_EQ(s.classes, (std::vector<int>{1, 2, 5}));
  EXPECT_EQ(ds->class_names().at(4), "dead");
  EXPECT_EQ(s.group, "");  // no types.npy

  // The release's types.npy beside images.npy gives each image its tissue (numpy '<U6' strings).
  NpyArray types;
  types.kind = 'U';
  types.itemsize = 24;
  types.shape = {1};
  for (char c : std::string("Breast"))
    for (int k = 0; k < 4; ++k) types.bytes.push_back(k == 0 ? static_cast<uint8_t>(c) : 0);
  write_file_atomic(dir.file("images/fold1/types.npy"), serialize_npy(types));
  EXPECT_EQ(open_dataset(dir.path())->get(0).group, "Breast");
  types.shape = {2};
  types.bytes.resize(48, 0);
  write_file_atomic(dir.file("images/fold1/types.npy"), serialize_npy(types));
  const std::string e = error_of([&] { open_dataset(dir.path()); });
  EXPECT_NE(e.find("types.npy: 2 tissue types for 1 images"), std::string::npos) << e;
  // A types.npy that is not a string array (an object array needs pickle): the images stay
  // readable, without tissues.
  write_npy(dir.file("images/fold1/types.npy"), std::vector<float>{1.0f}, {1});
  EXPECT_EQ(open_dataset(dir.path())->get(0).group, "");
}

TEST(DetectFormat, RejectsDatasetRootsAndUnknownFolders) {
  test::TempDir dir;
  write_image(dir.file("train/images/a.png"), test_image());
  write_label_map(dir.file("train/labels/a.png"), gappy_labels());
  std::string e = error_of([&] { detect_format(dir.path()); });
  EXPECT_NE(e.find("dataset root"), std::string::npos) << e;
  EXPECT_NE(e.find("train"), std::string::npos) << e;
  e = error_of([&] { open_dataset(dir.file("train/images")); });
  EXPECT_NE(e.find("unknown dataset layout"), std::string::npos) << e;
  e = error_of([&] { open_dataset(dir.file("train"), "cityscapes"); });
  EXPECT_NE(e.find("cityscapes"), std::string::npos) << e;
  EXPECT_THROW(open_dataset(dir.file("absent")), DataError);
}

TEST(MonusegDataset, TrainSplitFromLabelPngs) {
  NUCLEISAM_REQUIRE_SHARED("data/monuseg/train");
  auto ds = open_dataset(test::shared_path("data/monuseg/train"));
  EXPECT_EQ(ds->format(), "monuseg");
  ASSERT_EQ(ds->size(), 30u);
  EXPECT_TRUE(ds->class_names().empty());
  Sample s = ds->get(0);
  EXPECT_EQ(s.name, ds->name(0));
  EXPECT_EQ(s.image.width, 1000);
  EXPECT_EQ(s.image.height, 1000);
  EXPECT_FALSE(s.classed);
  // Consecutive after relabelling: the number of distinct ids equals the maximum.
  EXPECT_GT(s.instance_count(), 100);
  EXPECT_EQ(count_ids(s.instances), s.instance_count());
}

TEST(MonusegDataset, TestSplitFromXmlAndRootIsRejected) {
  NUCLEISAM_REQUIRE_SHARED("data/monuseg/test");
  auto ds = open_dataset(test::shared_path("data/monuseg/test"));
  ASSERT_EQ(ds->size(), 14u);
  Sample s = ds->get(0);
  auto regions = read_aperio_xml(test::shared_path("data/monuseg/test/annotations_xml/" + s.name + ".xml"));
  EXPECT_EQ(count_ids(s.instances), s.instance_count());
  EXPECT_LE(s.instance_count(), static_cast<int>(regions.size()));
  EXPECT_GE(s.instance_count(), static_cast<int>(regions.size()) - 5);
  std::string e = error_of([&] { open_dataset(test::shared_path("data/monuseg")); });
  EXPECT_NE(e.find("dataset root"), std::string::npos) << e;
}

TEST(ConsepDataset, ClassesAgreeWithSegMask) {
  NUCLEISAM_REQUIRE_SHARED("data/consep256/test");
  const std::string root = test::shared_path("data/consep256/test");
  auto ds = open_dataset(root);
  EXPECT_EQ(ds->format(), "consep");
  ASSERT_EQ(ds->size(), 224u);
  EXPECT_EQ(ds->class_names().at(4), "spindle-shaped");
  int checked = 0;
  for (size_t i = 0; i < ds->size(); i += 37) {
    Sample s = ds->get(i);
    EXPECT_EQ(s.image.width, 256);
    EXPECT_EQ(static_cast<int>(s.classes.size()), s.instance_count());
    EXPECT_EQ(count_ids(s.instances), s.instance_count());
    // The class mask PNG is an independent record of the same classes.
    LabelMap seg = read_label_map(root + "/seg_mask/" + s.name + ".png");
    EXPECT_EQ(s.class_map(), seg) << s.name;
    ++checked;
  }
  EXPECT_GE(checked, 6);
}

TEST(ConsepDataset, InstancesCsvGivesTheSameClassesAsTypeMat) {
  NUCLEISAM_REQUIRE_SHARED("data/consep256/train");
  const std::string root = test::shared_path("data/consep256/train");
  test::TempDir dir;
  // Two patches without type_mat: classes must come from instances.csv.
  for (const char* stem : {"train_10_000", "train_11_005"}) {
    fs::create_directories(dir.file("images"));
    fs::create_directories(dir.file("inst_png"));
    fs::copy_file(root + "/images/" + stem + ".jpg", dir.file(std::string("images/") + stem + ".jpg"));
    fs::copy_file(root + "/inst_png/" + stem + ".png", dir.file(std::string("inst_png/") + stem + ".png"));
  }
  fs::copy_file(root + "/instances.csv", dir.file("instances.csv"));
  auto from_csv = open_dataset(dir.path(), "consep");
  auto from_mat = open_dataset(root);
  ASSERT_EQ(from_csv->size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    Sample a = from_csv->get(i);
    size_t j = 0;
    while (from_mat->name(j) != a.name) ++j;
    Sample b = from_mat->get(j);
    EXPECT_EQ(a.instances, b.instances);
    EXPECT_EQ(a.classes, b.classes);
    EXPECT_GT(a.instance_count(), 0);
  }
  // A type_mat with the wrong number of rows is caught and named.
  fs::create_directories(dir.file("type_mat"));
  write_mat(dir.file("type_mat/train_10_000.mat"), {MatArray{"inst_type", MatClass::int64, {1, 1}, {2}}});
  std::string e = error_of([&] { open_dataset(dir.path(), "consep")->get(0); });
  EXPECT_NE(e.find("train_10_000.mat"), std::string::npos) << e;
}
