// Writers and readers agree (.pth and .safetensors, every supported dtype, views, ZIP64), and
// hand-built files with known bytes read as worked out by hand: shared storages with offsets and
// strides, nested dicts, an exact safetensors byte layout, misaligned data.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "nucleisam/weights/state_dict.h"
#include "weights/checkpoint_formats.h"
#include "weights/state_pickle.h"
#include "weights/zip_archive.h"
#include "support/test_support.h"

using namespace nucleisam;
using nucleisam::weights::StateDict;

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

StateDict every_dtype_and_layout() {
  torch::manual_seed(7);
  StateDict sd;
  auto add = [&](const std::string& k, torch::Tensor t) { sd.entries.emplace_back(k, t); };
  add("f32", torch::randn({3, 4}));
  add("f64", torch::randn({5}, torch::kDouble));
  add("f16", torch::randn({2, 3}).to(torch::kHalf));
  add("bf16", torch::randn({2, 3}).to(torch::kBFloat16));
  add("i64_scalar", torch::tensor(int64_t{1} << 40));
  add("i32", torch::arange(-5, 5, torch::kInt));
  add("i16", torch::arange(-300, 300, 7, torch::kShort));
  add("i8", torch::arange(-128, 127, 5, torch::kChar));
  add("u8", torch::arange(0, 256, 3).to(torch::kByte));
  add("bool", torch::tensor({true, false, true}));
  add("empty", torch::empty({0, 5}));
  add("transposed", torch::arange(24, torch::kFloat).view({4, 6}).t());  // non-contiguous
  add("sliced", torch::arange(40, torch::kFloat).view({8, 5}).slice(0, 3, 7).slice(1, 1, 4));  // offset + strides
  add("nested.name.with.dots", torch::ones({1, 1, 1, 1, 2}));
  return sd;
}

void expect_same(const StateDict& a, const StateDict& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a.entries[i].first, b.entries[i].first);
    const torch::Tensor& x = a.entries[i].second;
    const torch::Tensor& y = b.entries[i].second;
    EXPECT_EQ(x.scalar_type(), y.scalar_type()) << a.entries[i].first;
    EXPECT_EQ(x.sizes(), y.sizes()) << a.entries[i].first;
    EXPECT_TRUE(torch::equal(x, y)) << a.entries[i].first;
  }
}

std::string archive_with(const std::string& pickle, const std::vector<std::pair<std::string, std::string>>& data) {
  std::ostringstream out;
  weights::ZipWriter zip(out);
  zip.add("hand/data.pkl", pickle.data(), pickle.size());
  for (const auto& [name, bytes] : data) zip.add("hand/data/" + name, bytes.data(), bytes.size());
  zip.add("hand/version", "3\n", 2);
  zip.finish();
  return out.str();
}

std::string floats(std::initializer_list<float> v) {
  return std::string(reinterpret_cast<const char*>(v.begin()), v.size() * sizeof(float));
}

}  // namespace

TEST(CheckpointRoundTrip, PthKeepsEveryDtypeShapeValueAndOrder) {
  test::TempDir dir;
  StateDict sd = every_dtype_and_layout();
  weights::write_pth(dir.file("all.pth"), sd);
  expect_same(sd, weights::read_checkpoint(dir.file("all.pth")));
}

TEST(CheckpointRoundTrip, SafetensorsKeepsEveryDtypeShapeValueAndOrder) {
  test::TempDir dir;
  StateDict sd = every_dtype_and_layout();
  weights::write_safetensors(dir.file("all.safetensors"), sd, {{"format", "pt"}, {"note", "quote \" and \\ ok"}});
  expect_same(sd, weights::read_checkpoint(dir.file("all.safetensors")));
  auto meta = weights::read_safetensors_metadata(dir.file("all.safetensors"));
  EXPECT_EQ(meta.size(), 2u);
  EXPECT_EQ(meta["note"], "quote \" and \\ ok");
}

TEST(CheckpointRoundTrip, ForcedZip64RecordsReadBack) {
  test::TempDir dir;
  StateDict sd = every_dtype_and_layout();
  weights::write_pth_archive(dir.file("z64.pth"), sd, /*force_zip64=*/true);
  std::string bytes = slurp(dir.file("z64.pth"));
  EXPECT_NE(bytes.find(std::string("PK\x06\x06", 4)), std::string::npos);  // ZIP64 end record
  EXPECT_NE(bytes.find(std::string("\xff\xff\xff\xff", 4)), std::string::npos);  // sizes moved to extras
  expect_same(sd, weights::read_checkpoint(dir.file("z64.pth")));
}

// The layout torch.save uses: members under "<file stem>/", data starting on 64-byte
// boundaries, a version record "3\n".
TEST(CheckpointRoundTrip, PthLayoutMatchesTorchSave) {
  test::TempDir dir;
  StateDict sd;
  sd.entries.emplace_back("a", torch::ones({3}));
  sd.entries.emplace_back("b", torch::zeros({2, 2}, torch::kLong));
  weights::write_pth(dir.file("my_model.pth"), sd);
  std::string bytes = slurp(dir.file("my_model.pth"));
  auto entries = weights::read_zip_directory(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "x");
  std::vector<std::string> names;
  for (const auto& e : entries) names.push_back(e.name);
  EXPECT_EQ(names, (std::vector<std::string>{"my_model/data.pkl", "my_model/data/0", "my_model/data/1", "my_model/version"}));
  for (const auto& e : entries) {
    EXPECT_EQ(e.data_offset % 64, 0u) << e.name;
    EXPECT_EQ(e.method, 0) << e.name;
    EXPECT_EQ(e.crc32, weights::crc32(bytes.data() + e.data_offset, e.size)) << e.name;
  }
  EXPECT_EQ(bytes.substr(entries[3].data_offset, entries[3].size), "3\n");
  EXPECT_EQ(bytes.substr(entries[1].data_offset, 12), floats({1, 1, 1}));
}

TEST(CheckpointRoundTrip, Crc32KnownAnswer) {
  // The standard check value of CRC-32/ISO-HDLC.
  EXPECT_EQ(weights::crc32("123456789", 9), 0xCBF43926u);
  EXPECT_EQ(weights::crc32("", 0), 0u);
}

// Three tensors over one storage of 12 floats 0..11: a 3x4 matrix, its transpose, and a 2x3
// window at offset 5 (rows 1-2, columns 1-3). They must share memory, like torch.load's.
TEST(CheckpointRoundTrip, TensorsSharingOneStorageAreViews) {
  std::vector<weights::TensorRecord> recs(3);
  for (auto& r : recs) {
    r.storage_type = "Float";
    r.storage_key = "0";
    r.numel = 12;
  }
  recs[0].name = "m";
  recs[0].sizes = {3, 4};
  recs[0].strides = {4, 1};
  recs[1].name = "m_t";
  recs[1].sizes = {4, 3};
  recs[1].strides = {1, 4};
  recs[2].name = "window";
  recs[2].offset = 5;
  recs[2].sizes = {2, 3};
  recs[2].strides = {4, 1};
  std::string storage = floats({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
  test::TempDir dir;
  std::ofstream(dir.file("views.pth"), std::ios::binary) << archive_with(weights::write_state_pickle(recs), {{"0", storage}});

  StateDict sd = weights::read_checkpoint(dir.file("views.pth"));
  torch::Tensor m = sd.at("m"), mt = sd.at("m_t"), w = sd.at("window");
  EXPECT_TRUE(torch::equal(m, torch::arange(12, torch::kFloat).view({3, 4})));
  EXPECT_TRUE(torch::equal(mt, m.t()));
  EXPECT_TRUE(torch::equal(w, torch::tensor({{5.f, 6.f, 7.f}, {9.f, 10.f, 11.f}})));
  m[1][2] = 100.f;  // element 6: row 1 col 2 of m, row 2 col 1 of m_t, row 0 col 1 of window
  EXPECT_EQ(mt[2][1].item<float>(), 100.f);
  EXPECT_EQ(w[0][1].item<float>(), 100.f);
  // Writing into a loaded tensor never touches the file (private copy-on-write mapping).
  EXPECT_EQ(weights::read_checkpoint(dir.file("views.pth")).at("m")[1][2].item<float>(), 6.f);
}

// {'model': OrderedDict(w=tensor([1.5, -2.0])), 'epoch': 3} pickled by hand, protocol 2.
TEST(CheckpointRoundTrip, NestedDictsFlattenAndScalarsAreSkipped) {
  auto str = [](const std::string& s) {
    std::string out = "X";
    uint32_t n = static_cast<uint32_t>(s.size());
    out.append(reinterpret_cast<const char*>(&n), 4);
    return out + s;
  };
  std::string p = "\x80\x02}(" + str("model") + "ccollections\nOrderedDict\n)R" + str("w") +
                  "ctorch._utils\n_rebuild_tensor_v2\n((" + str("storage") + "ctorch\nFloatStorage\n" + str("0") +
                  str("cpu") + "K\x02tQK";
  p += std::string("\x00", 1) + "K\x02\x85K\x01\x85\x89" + "ccollections\nOrderedDict\n)RtRs" + str("epoch") +
       "K\x03u.";
  test::TempDir dir;
  std::ofstream(dir.file("nested.pth"), std::ios::binary) << archive_with(p, {{"0", floats({1.5f, -2.f})}});
  StateDict sd = weights::read_checkpoint(dir.file("nested.pth"));
  ASSERT_EQ(sd.size(), 1u);
  EXPECT_EQ(sd.entries[0].first, "model.w");
  EXPECT_TRUE(torch::equal(sd.entries[0].second, torch::tensor({1.5f, -2.f})));
  EXPECT_TRUE(weights::has_prefix(sd, "model."));
  EXPECT_FALSE(weights::has_prefix(sd, "epoch"));
}

// The exact bytes of a one-tensor safetensors file, worked out from the format description:
// 8-byte length, JSON padded with spaces to a multiple of 8, then 1.5f and -2.0f little-endian.
TEST(CheckpointRoundTrip, SafetensorsExactBytes) {
  StateDict sd;
  sd.entries.emplace_back("a", torch::tensor({1.5f, -2.f}));
  test::TempDir dir;
  weights::write_safetensors(dir.file("a.safetensors"), sd);
  std::string header = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  ASSERT_EQ(header.size(), 54u);
  header += "  ";
  std::string expected = std::string("\x38\0\0\0\0\0\0\0", 8) + header + std::string("\0\0\xc0\x3f\0\0\0\xc0", 8);
  EXPECT_EQ(slurp(dir.file("a.safetensors")), expected);
}

// Unpadded header: the data starts at byte 62, misaligned for float, and must still read right.
TEST(CheckpointRoundTrip, MisalignedSafetensorsDataIsCopied) {
  std::string header = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}})";
  header.pop_back();  // 54 bytes -> data at 8 + 54 = 62
  std::string bytes = std::string("\x36\0\0\0\0\0\0\0", 8) + header + floats({0.25f, 4.f});
  test::TempDir dir;
  std::ofstream(dir.file("odd.safetensors"), std::ios::binary) << bytes;
  StateDict sd = weights::read_checkpoint(dir.file("odd.safetensors"));
  EXPECT_TRUE(torch::equal(sd.at("a"), torch::tensor({0.25f, 4.f})));
}

TEST(CheckpointRoundTrip, FixtureSurvivesPthAndSafetensors) {
  NUCLEISAM_REQUIRE_SHARED("fixtures/sam/vit_t_mobilesam");
  StateDict sd = weights::read_checkpoint(test::shared_path("fixtures/sam/vit_t_mobilesam/mobile_sam_random.pth"));
  test::TempDir dir;
  weights::write_pth(dir.file("copy.pth"), sd);
  weights::write_safetensors(dir.file("copy.safetensors"), sd);
  expect_same(sd, weights::read_checkpoint(dir.file("copy.pth")));
  expect_same(sd, weights::read_checkpoint(dir.file("copy.safetensors")));
}

// Storages past 2^31 elements (ViT-H scale and beyond) need LONG1 integers in the pickle.
TEST(CheckpointRoundTrip, PickleIntegersBeyond32Bits) {
  weights::TensorRecord r;
  r.name = "big";
  r.storage_type = "Byte";
  r.storage_key = "0";
  r.numel = int64_t{5} << 30;
  r.offset = (int64_t{3} << 30) + 7;
  r.sizes = {int64_t{1} << 31};
  r.strides = {1};
  std::string p = weights::write_state_pickle({r});
  weights::PickleRef root = weights::read_state_pickle(reinterpret_cast<const uint8_t*>(p.data()), p.size(), "x");
  ASSERT_EQ(root->kind, weights::PickleValue::Kind::dict);
  ASSERT_EQ(root->entries.size(), 1u);
  const auto& t = *root->entries[0].second->tensor;
  EXPECT_EQ(t.storage->numel, int64_t{5} << 30);
  EXPECT_EQ(t.offset, (int64_t{3} << 30) + 7);
  EXPECT_EQ(t.sizes, std::vector<int64_t>{int64_t{1} << 31});
  EXPECT_EQ(t.storage->type, "Byte");
}
