// Nucleus CSV table: exact text for hand-made nuclei, quoting, strict reading, round trip.
#include <gtest/gtest.h>

#include "nucleisam/atomic_file.h"
#include "nucleisam/errors.h"
#include "nucleisam/io/nucleus_table.h"
#include "support/test_support.h"

using namespace nucleisam;
using namespace nucleisam::io;

TEST(NucleusTable, ExactTextForHandMadeNuclei) {
  Nucleus a;
  a.id = 3;
  a.centroid_x = 4;
  a.centroid_y = 5.25;
  a.area = 16;
  a.bbox = {2, 3, 4, 4};
  Nucleus b;
  b.id = 8;
  b.class_id = 2;
  b.class_name = "tumour, grade \"2\"";
  b.centroid_x = 10.5;
  b.centroid_y = 0.5;
  b.area = 1;
  b.bbox = {10, 0, 1, 1};
  b.score = 0.125f;
  EXPECT_EQ(nucleus_table_csv({a, b}),
            "id,class,class_name,centroid_x,centroid_y,area,bbox_x,bbox_y,bbox_width,bbox_height,score\n"
            "3,0,,4.000,5.250,16,2,3,4,4,1.0000\n"
            "8,2,\"tumour, grade \"\"2\"\"\",10.500,0.500,1,10,0,1,1,0.1250\n");
  EXPECT_EQ(nucleus_table_csv({}),
            "id,class,class_name,centroid_x,centroid_y,area,bbox_x,bbox_y,bbox_width,bbox_height,score\n");

  test::TempDir dir;
  write_nucleus_table(dir.file("t.csv"), {a, b});
  auto back = read_nucleus_table(dir.file("t.csv"));
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[1].id, 8);
  EXPECT_EQ(back[1].class_id, 2);
  EXPECT_EQ(back[1].class_name, b.class_name);
  EXPECT_DOUBLE_EQ(back[1].centroid_x, 10.5);
  EXPECT_EQ(back[1].bbox, b.bbox);
  EXPECT_FLOAT_EQ(back[1].score, 0.125f);
  EXPECT_EQ(back[0].area, 16);
  EXPECT_TRUE(back[0].polygon.empty());
}

TEST(NucleusTable, MalformedFilesNameTheFileAndTheCause) {
  test::TempDir dir;
  write_file_atomic(dir.file("wrong_header.csv"), "id,x\n1,2\n");
  write_file_atomic(dir.file("short.csv"), std::string(kNucleusTableHeader) + "\n1,0,,1,1,1\n");
  write_file_atomic(dir.file("text.csv"), std::string(kNucleusTableHeader) + "\n1,0,,1,1,big,0,0,1,1,1\n");
  try {
    read_nucleus_table(dir.file("wrong_header.csv"));
    FAIL();
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("wrong_header.csv: not a nucleus table"), std::string::npos) << e.what();
  }
  try {
    read_nucleus_table(dir.file("short.csv"));
    FAIL();
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("short.csv: line 2 has 6 fields"), std::string::npos) << e.what();
  }
  try {
    read_nucleus_table(dir.file("text.csv"));
    FAIL();
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("\"big\" is not a number"), std::string::npos) << e.what();
  }
  EXPECT_THROW(read_nucleus_table(dir.file("missing.csv")), IoError);
}
