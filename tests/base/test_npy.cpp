// .npy round trips, known byte layouts, and bad-input cases.
#include <gtest/gtest.h>

#include <fstream>

#include "nucleisam/atomic_file.h"
#include "nucleisam/errors.h"
#include "nucleisam/npy.h"
#include "support/test_support.h"

using namespace nucleisam;

TEST(Npy, RoundTripFloatAndInt) {
  test::TempDir dir;
  std::vector<float> f = {1.5f, -2.25f, 0.f, 3.f, 4.f, 5.f};
  write_npy(dir.file("f.npy"), f, {2, 3});
  NpyArray a = read_npy(dir.file("f.npy"));
  EXPECT_EQ(a.kind, 'f');
  EXPECT_EQ(a.itemsize, 4);
  EXPECT_EQ(a.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(a.to_vector<float>(), f);

  std::vector<int64_t> i = {-1, 1LL << 40, 7};
  write_npy(dir.file("i.npy"), i, {3});
  NpyArray b = read_npy(dir.file("i.npy"));
  EXPECT_EQ(b.dtype(), "int64");
  EXPECT_EQ(b.to_vector<int64_t>(), i);
  // Cross-type conversion.
  EXPECT_EQ(read_npy(dir.file("f.npy")).to_vector<int32_t>()[1], -2);
}

TEST(Npy, HeaderIsWhatNumpyWrites) {
  // numpy.save(np.array([7, 9], np.uint8)) writes: magic, version 1.0, a little-endian header
  // length of 118, the dict below padded with spaces to a 128-byte prefix ending in '\n', then data.
  NpyArray a;
  a.kind = 'u';
  a.itemsize = 1;
  a.shape = {2};
  a.bytes = {7, 9};
  std::string s = serialize_npy(a);
  ASSERT_EQ(s.size(), 128u + 2u);
  EXPECT_EQ(s.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  EXPECT_EQ(static_cast<uint8_t>(s[8]), 118);
  EXPECT_EQ(static_cast<uint8_t>(s[9]), 0);
  const std::string dict = "{'descr': '|u1', 'fortran_order': False, 'shape': (2,), }";
  EXPECT_EQ(s.substr(10, dict.size()), dict);
  EXPECT_EQ(s[127], '\n');
  EXPECT_EQ(s[126], ' ');
  EXPECT_EQ(static_cast<uint8_t>(s[128]), 7);
  NpyArray back = parse_npy(s, "mem");
  EXPECT_EQ(back.bytes, a.bytes);
  EXPECT_EQ(back.shape, a.shape);
}

TEST(Npy, ScalarAndEmptyShapes) {
  test::TempDir dir;
  std::vector<double> one = {3.25};
  write_npy(dir.file("s.npy"), one, {});
  NpyArray s = read_npy(dir.file("s.npy"));
  EXPECT_TRUE(s.shape.empty());
  EXPECT_EQ(s.numel(), 1);
  EXPECT_EQ(s.to_vector<double>()[0], 3.25);
  std::vector<float> none;
  write_npy(dir.file("e.npy"), none, {0, 4});
  EXPECT_EQ(read_npy(dir.file("e.npy")).numel(), 0);
}

TEST(Npy, BadInputsNameTheFile) {
  test::TempDir dir;
  EXPECT_THROW(read_npy(dir.file("missing.npy")), IoError);
  write_file_atomic(dir.file("junk.npy"), "hello world, not numpy");
  try {
    read_npy(dir.file("junk.npy"));
    FAIL() << "expected IoError";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("junk.npy"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("bad magic"), std::string::npos);
  }
  // Truncated payload.
  std::vector<float> f(100, 1.f);
  write_npy(dir.file("t.npy"), f, {100});
  std::string bytes = read_file(dir.file("t.npy"));
  write_file_atomic(dir.file("t.npy"), bytes.substr(0, bytes.size() - 8));
  try {
    read_npy(dir.file("t.npy"));
    FAIL() << "expected IoError";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos);
  }
  // Big-endian and Fortran order are refused rather than misread.
  std::string be = bytes;
  auto p = be.find("'<f4'");
  ASSERT_NE(p, std::string::npos);
  be[p + 1] = '>';
  EXPECT_THROW(parse_npy(be, "be"), IoError);
  std::string fo = bytes;
  p = fo.find("False");
  fo.replace(p, 5, "True ");
  EXPECT_THROW(parse_npy(fo, "fo"), IoError);
}

namespace {

// A version-1 .npy file with the given header dict and payload (header padded to 64 bytes).
std::string npy_with_header(std::string dict, const std::string& payload) {
  size_t total = 10 + dict.size() + 1;
  dict.append((total + 63) / 64 * 64 - total, ' ');
  dict.push_back('\n');
  std::string out = "\x93NUMPY";
  out.push_back(1);
  out.push_back(0);
  out.push_back(static_cast<char>(dict.size() & 0xff));
  out.push_back(static_cast<char>(dict.size() >> 8));
  return out + dict + payload;
}

std::string header_error(const std::string& bytes) {
  try {
    parse_npy_header(bytes.data(), bytes.size(), "h.npy");
  } catch (const IoError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(NpyHeader, OneParserWithOneSetOfRules) {
  // '>u1' is a byte: no byte order to get wrong, so it is read.
  std::string bytes = npy_with_header("{'descr': '>u1', 'fortran_order': False, 'shape': (2, 3), }", "abcdef");
  NpyHeader h = parse_npy_header(bytes.data(), bytes.size(), "h.npy");
  EXPECT_EQ(h.kind, 'u');
  EXPECT_EQ(h.itemsize, 1);
  EXPECT_EQ(h.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(h.data_offset, 128u);  // 10 + 60-byte dict + newline, padded to 64
  EXPECT_EQ(npy_header_size(bytes.data(), 12, "h.npy"), 128u);
  EXPECT_EQ(parse_npy(bytes, "h.npy").to_vector<int>()[0], 'a');
  // A scalar.
  bytes = npy_with_header("{'descr': '<f8', 'fortran_order': False, 'shape': (), }", std::string(8, '\0'));
  EXPECT_TRUE(parse_npy_header(bytes.data(), bytes.size(), "h.npy").shape.empty());

  EXPECT_NE(header_error(npy_with_header("{'descr': '>i2', 'fortran_order': False, 'shape': (1,), }", "")).find("big-endian"),
            std::string::npos);
  EXPECT_NE(header_error(npy_with_header("{'descr': '<u1', 'shape': (1,), }", "")).find("h.npy: .npy header lacks fortran_order"),
            std::string::npos);
  EXPECT_NE(header_error(npy_with_header("{'descr': '<f2', 'fortran_order': False, 'shape': (1,), }", "")).find("dtype f2"),
            std::string::npos);
  EXPECT_NE(header_error(npy_with_header("{'descr': '<u1', 'fortran_order': False, 'shape': (12abc,), }", "")).find("bad .npy shape"),
            std::string::npos);
  EXPECT_NE(header_error(npy_with_header("{'descr': '<u1', 'fortran_order': False, 'shape': (-1,), }", "")).find("bad .npy shape"),
            std::string::npos);
  EXPECT_NE(header_error(bytes.substr(0, 40)).find("truncated"), std::string::npos);
  EXPECT_NE(header_error("\x93NUMPY\x04").find("bad magic"), std::string::npos);  // too short to be one
}

namespace {
// A numpy string array ('<U6': UTF-32LE, NUL-padded), as np.save(np.array([...])) writes it.
std::string string_npy(const std::vector<std::u32string>& items, int width) {
  NpyArray a;
  a.kind = 'U';
  a.itemsize = 4 * width;
  a.shape = {static_cast<int64_t>(items.size())};
  for (const auto& s : items)
    for (int c = 0; c < width; ++c) {
      const uint32_t cp = c < static_cast<int>(s.size()) ? static_cast<uint32_t>(s[c]) : 0;
      for (int k = 0; k < 4; ++k) a.bytes.push_back(static_cast<uint8_t>(cp >> (8 * k)));
    }
  return serialize_npy(a);
}
}  // namespace

TEST(Npy, StringArraysReadAsUtf8) {
  const std::string bytes = string_npy({U"Breast", U"Col\u00f3n", U""}, 6);
  // numpy 1.24's header for np.array(['Breast', 'Colón', '']).
  EXPECT_EQ(bytes.substr(10, 57), "{'descr': '<U6', 'fortran_order': False, 'shape': (3,), }");
  const NpyArray a = parse_npy(bytes, "types.npy");
  EXPECT_EQ(a.kind, 'U');
  EXPECT_EQ(a.itemsize, 24);
  EXPECT_EQ(a.dtype(), "str6");
  EXPECT_EQ(a.to_strings(), (std::vector<std::string>{"Breast", "Col\xc3\xb3n", ""}));
  EXPECT_THROW(a.to_vector<float>(), IoError);
  EXPECT_THROW(parse_npy(string_npy({U"\U0010FFFF", std::u32string(1, char32_t{0x110000})}, 1), "bad.npy")
                   .to_strings(),
               IoError);  // beyond Unicode
  NpyArray numbers;
  numbers.shape = {1};
  numbers.bytes.assign(4, 0);
  EXPECT_THROW(numbers.to_strings(), IoError);
}
