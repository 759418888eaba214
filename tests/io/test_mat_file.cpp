// MATLAB .mat round trips through matio (layout transposition, classes), partial reads, and bad
// files; plus a CoNSeP type_mat from ../shared.
#include <gtest/gtest.h>
#include <matio.h>

#include "nucleisam/atomic_file.h"
#include "nucleisam/errors.h"
#include "nucleisam/io/mat_file.h"
#include "support/test_support.h"

using namespace nucleisam;
using namespace nucleisam::io;

TEST(MatFile, RoundTripKeepsCOrderAndClass) {
  test::TempDir dir;
  MatArray a;
  a.name = "inst_map";
  a.type = MatClass::int32;
  a.dims = {2, 3};
  a.values = {1, 2, 3, 4, 5, 6};  // row 0 = 1 2 3, row 1 = 4 5 6
  MatArray b;
  b.name = "centroid";
  b.type = MatClass::float64;
  b.dims = {2, 2, 2};
  b.values = {0.5, 1, 2, 3, 4, 5, 6, 7.25};
  write_mat(dir.file("x.mat"), {a, b});
  auto all = read_mat(dir.file("x.mat"));
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all["inst_map"].type, MatClass::int32);
  EXPECT_EQ(all["inst_map"].dims, (std::vector<size_t>{2, 3}));
  EXPECT_EQ(all["inst_map"].values, a.values);
  EXPECT_EQ(all["inst_map"].rows(), 2u);
  EXPECT_EQ(all["inst_map"].cols(), 3u);
  EXPECT_EQ(all["centroid"].values, b.values);
  EXPECT_EQ(all["centroid"].dims, b.dims);
}

TEST(MatFile, ColumnMajorStorageIsTransposed) {
  // A 2 x 3 uint8 array written compressed, then read back by name: element (1, 0) must be the
  // 4th value in C order. A layout bug shows up as 2 in its place.
  test::TempDir dir;
  MatArray a{"m", MatClass::uint8, {2, 3}, {1, 2, 3, 4, 5, 6}};
  write_mat(dir.file("c.mat"), {a}, /*compress=*/true);
  auto got = read_mat(dir.file("c.mat"), {"m", "absent"});
  ASSERT_EQ(got.count("m"), 1u);
  EXPECT_EQ(got.count("absent"), 0u);
  EXPECT_EQ(got["m"].values[3], 4.0);
  EXPECT_EQ(got["m"].to_int32("c.mat"), (std::vector<int32_t>{1, 2, 3, 4, 5, 6}));
}

TEST(MatFile, ToInt32RejectsFractions) {
  MatArray a{"class", MatClass::float64, {1, 2}, {1, 2.5}};
  try {
    a.to_int32("labels/x.mat");
    FAIL();
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("labels/x.mat"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("class"), std::string::npos);
  }
}

TEST(MatFile, BadFilesNameThePath) {
  test::TempDir dir;
  write_file_atomic(dir.file("junk.mat"), std::string(300, 'z'));
  try {
    read_mat(dir.file("junk.mat"));
    FAIL();
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("junk.mat"), std::string::npos);
  }
  EXPECT_THROW(read_mat(dir.file("missing.mat")), IoError);
  MatArray wrong{"w", MatClass::int32, {2, 2}, {1, 2, 3}};
  EXPECT_THROW(write_mat(dir.file("w.mat"), {wrong}), IoError);
}

TEST(MatFile, ReadsConsepTypeMat) {
  NUCLEISAM_REQUIRE_SHARED("data/consep256/train/type_mat/train_10_000.mat");
  auto v = read_mat(test::shared_path("data/consep256/train/type_mat/train_10_000.mat"),
                    {"inst_type", "inst_centroid"});
  ASSERT_EQ(v.count("inst_type"), 1u);
  ASSERT_EQ(v.count("inst_centroid"), 1u);
  const MatArray& t = v["inst_type"];
  EXPECT_EQ(t.cols(), 1u);
  EXPECT_EQ(v["inst_centroid"].cols(), 2u);
  EXPECT_EQ(v["inst_centroid"].rows(), t.rows());
  // instances.csv lists the first instance of this patch as type 3 at (71.93, 54.03).
  ASSERT_GT(t.rows(), 0u);
  EXPECT_EQ(t.values[0], 3.0);
  EXPECT_NEAR(v["inst_centroid"].values[0], 71.927, 1e-3);
  EXPECT_NEAR(v["inst_centroid"].values[1], 54.033, 1e-3);
}

TEST(MatFile, ReadsVersion73WhenMatioHasHdf5) {
  // Lizard ships MAT v5, but users re-save labels from MATLAB as v7.3 (HDF5). Written here with
  // matio directly, since write_mat only produces v5.
  test::TempDir dir;
  const std::string path = dir.file("v73.mat");
  mat_t* mat = Mat_CreateVer(path.c_str(), nullptr, MAT_FT_MAT73);
  if (!mat) GTEST_SKIP() << "this matio cannot write v7.3 (no HDF5)";
  int32_t data[6] = {1, 4, 2, 5, 3, 6};  // column-major 2 x 3: rows 1 2 3 / 4 5 6
  size_t dims[2] = {2, 3};
  matvar_t* var = Mat_VarCreate("inst_map", MAT_C_INT32, MAT_T_INT32, 2, dims, data, MAT_F_DONT_COPY_DATA);
  ASSERT_NE(var, nullptr);
  ASSERT_EQ(Mat_VarWrite(mat, var, MAT_COMPRESSION_NONE), 0);
  Mat_VarFree(var);
  Mat_Close(mat);
  auto got = read_mat(path, {"inst_map"});
  ASSERT_EQ(got.count("inst_map"), 1u);
  EXPECT_EQ(got["inst_map"].dims, (std::vector<size_t>{2, 3}));
  EXPECT_EQ(got["inst_map"].values, (std::vector<double>{1, 2, 3, 4, 5, 6}));
}

// A hand-made MATLAB v5 file whose double matrix declares 100000 x 100000 elements (80 GB) over 8
// bytes of data: refused from its header, naming the limit, before matio allocates.
TEST(MatFile, HugeDeclaredVariableIsRefusedFromItsHeader) {
  test::TempDir dir;
  std::string mat(116, ' ');
  mat.replace(0, 10, "MATLAB 5.0");
  mat += std::string(8, '\0');           // subsystem data offset
  mat += std::string("\x00\x01IM", 4);   // version 0x0100, little-endian
  auto u32 = [&](uint32_t v) {
    for (int i = 0; i < 4; ++i) mat.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  };
  u32(14), u32(64);                       // miMATRIX, 64 bytes follow
  u32(6), u32(8), u32(6), u32(0);         // array flags: miUINT32, mxDOUBLE_CLASS
  u32(5), u32(8), u32(100000), u32(100000);  // dimensions: miINT32
  u32(1), u32(8);                         // name: miINT8
  mat += "inst_map";
  u32(9), u32(8);                         // real part: miDOUBLE, 8 bytes
  mat += std::string(8, '\0');
  write_file_atomic(dir.file("huge.mat"), mat);
  for (const std::vector<std::string>& names : {std::vector<std::string>{}, std::vector<std::string>{"inst_map"}}) {
    try {
      read_mat(dir.file("huge.mat"), names);
      ADD_FAILURE() << "a 100000 x 100000 variable was read";
    } catch (const IoError& e) {
      EXPECT_EQ(std::string(e.what()), dir.file("huge.mat") +
                                           ": variable 'inst_map' declares more than 34359738368 bytes (limit "
                                           "kMaxTensorBytes)");
    }
  }
}
