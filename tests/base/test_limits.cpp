// Output names from hostile input names stay inside the output folder; label maps with more
// distinct labels than limits::kMaxLabels are refused while they are renumbered.
#include <gtest/gtest.h>

#include <string>

#include "nucleisam/errors.h"
#include "nucleisam/limits.h"
#include "nucleisam/output_path.h"
#include "nucleisam/relabel.h"

using namespace nucleisam;

TEST(OutputPath, HostileNamesBecomeSafeFileNames) {
  EXPECT_EQ(safe_file_name("case 1 (HE)"), "case 1 (HE)");  // ordinary names unchanged
  EXPECT_EQ(safe_file_name("../../etc/passwd"), ".._.._etc_passwd");
  EXPECT_EQ(safe_file_name("/abs/path"), "_abs_path");
  EXPECT_EQ(safe_file_name("a\\b"), "a_b");
  EXPECT_EQ(safe_file_name(std::string("nul\0byte", 8)), "nul_byte");
  EXPECT_EQ(safe_file_name("line\nbreak\x7f"), "line_break_");
  EXPECT_EQ(safe_file_name(".."), "_");
  EXPECT_EQ(safe_file_name("."), "_");
  EXPECT_EQ(safe_file_name(""), "_");
  EXPECT_EQ(safe_file_name(std::string(1000, 'a')).size(), limits::kMaxOutputNameBytes);
  // A cut never splits a UTF-8 character ("é" is 2 bytes).
  std::string accents;
  while (accents.size() < 300) accents += "\xc3\xa9";
  const std::string cut = safe_file_name("x" + accents);
  EXPECT_LE(cut.size(), limits::kMaxOutputNameBytes);
  EXPECT_EQ(static_cast<unsigned char>(cut.back()), 0xa9);
  EXPECT_EQ(output_stem("/data/in/slide.v2.svs"), "slide.v2");
  EXPECT_EQ(output_stem("in/...svs"), "_");
}

TEST(OutputPath, NamesThatWouldLeaveTheFolderAreRefused) {
  EXPECT_EQ(output_path_inside("out", "a_nuclei.csv"), "out/a_nuclei.csv");
  EXPECT_EQ(output_path_inside("out", ".a.journal"), "out/.a.journal");
  for (const std::string& bad :
       {std::string("../x.csv"), std::string("/etc/x"), std::string("a/b"), std::string("a\\b"),
        std::string(".."), std::string("."), std::string(), std::string("a\0b", 3), std::string(300, 'n')}) {
    try {
      output_path_inside("out", bad);
      ADD_FAILURE() << "accepted " << bad;
    } catch (const IoError& e) {
      EXPECT_EQ(std::string(e.what()).rfind("out: refusing to write", 0), 0u) << e.what();
    }
  }
}

TEST(OutputPath, StemsBelowARootMirrorItsFoldersAndStayInsideTheOutputFolder) {
  EXPECT_EQ(output_stem_below("in", "in/x.png"), "x");
  EXPECT_EQ(output_stem_below("in/", "in/case 1/a\\b/x.v2.png"), "case 1/a_b/x.v2");
  EXPECT_EQ(output_stem_below("/data/in", "/data/in/./p/x.tif"), "p/x");
  EXPECT_THROW(output_stem_below("in", "other/x.png"), IoError);
  EXPECT_THROW(output_stem_below("in/p", "in/x.png"), IoError);

  EXPECT_EQ(stem_output_path("out", "x", ".geojson"), "out/x.geojson");
  EXPECT_EQ(stem_output_path("out", "case 1/p/x", "_nuclei.csv"), "out/case 1/p/x_nuclei.csv");
  EXPECT_EQ(stem_output_path("out", "case 1/x", ".journal", true), "out/case 1/.x.journal");
  EXPECT_EQ(stem_output_path("out", "x", ".journal", true), "out/.x.journal");
  for (const std::string& bad :
       {std::string("../x"), std::string("/etc/x"), std::string("a//x"), std::string("a/../x"),
        std::string("a/./x"), std::string("a\\b/x"), std::string("a/"), std::string()}) {
    try {
      stem_output_path("out", bad, bad.empty() || bad.back() == '/' ? "" : ".csv");
      ADD_FAILURE() << "accepted " << bad;
    } catch (const IoError& e) {
      EXPECT_NE(std::string(e.what()).find("refusing to write"), std::string::npos) << e.what();
    }
  }
}

TEST(ResourceLimits, LabelMapsWithTooManyDistinctLabelsAreRefused) {
  // More than kMaxLabels distinct labels, as small and as large ids.
  const int side = 2049;  // 2049^2 > 2^22
  ASSERT_GT(int64_t{side} * side, limits::kMaxLabels);
  for (int32_t offset : {1, 1 << 28}) {
    LabelMap labels(side, side);
    for (size_t i = 0; i < labels.data.size(); ++i) labels.data[i] = static_cast<int32_t>(i) + offset;
    for (RelabelOrder order : {RelabelOrder::ascending, RelabelOrder::first_seen}) {
      LabelMap copy = labels;
      try {
        relabel_consecutive(copy, "gt.tif", order);
        ADD_FAILURE() << "accepted " << labels.data.size() << " labels";
      } catch (const DataError& e) {
        EXPECT_EQ(std::string(e.what()), "gt.tif: more than 4194304 distinct instance labels (limit kMaxLabels)");
      }
    }
  }
  LabelMap ok(2, 2);
  ok.data = {0, 7, 7, 1 << 30};
  EXPECT_EQ(relabel_consecutive(ok, "ok.tif").size(), 2u);
}
