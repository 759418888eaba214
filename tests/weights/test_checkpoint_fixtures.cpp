// The official-format fixtures (written by torch.save from the official SAM / MobileSAM code)
// read exactly: every key, shape and dtype against state_dict_keys.txt, element counts from the
// README, tensor bytes against the zip members found by an independent local-header scan, value
// statistics from the documented random recipe, and every truncation of the file refused.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include "nucleisam/errors.h"
#include "nucleisam/weights/state_dict.h"
#include "support/test_support.h"

using namespace nucleisam;
using nucleisam::weights::StateDict;

namespace {

struct KeyLine {
  std::string key;
  std::vector<int64_t> shape;
  std::string dtype;
};

std::vector<KeyLine> read_keys(const std::string& path) {
  std::ifstream in(path);
  std::vector<KeyLine> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::istringstream s(line);
    KeyLine k;
    std::string shape;
    std::getline(s, k.key, '\t');
    std::getline(s, shape, '\t');
    std::getline(s, k.dtype, '\t');
    std::string inner = shape.substr(1, shape.size() - 2);
    std::istringstream dims(inner);
    std::string d;
    while (std::getline(dims, d, ',')) k.shape.push_back(std::stoll(d));
    out.push_back(k);
  }
  return out;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

uint32_t le16(const std::string& b, size_t at) {
  return static_cast<uint8_t>(b[at]) | (static_cast<uint8_t>(b[at + 1]) << 8);
}

// Data start of every zip member, found by walking local headers only (no central directory):
// torch.save writes sizes into data descriptors, so the caller supplies each member's length.
std::map<std::string, size_t> local_member_offsets(const std::string& bytes) {
  std::map<std::string, size_t> out;
  size_t pos = 0;
  while ((pos = bytes.find(std::string("PK\x03\x04", 4), pos)) != std::string::npos) {
    size_t name_len = le16(bytes, pos + 26), extra_len = le16(bytes, pos + 28);
    out[bytes.substr(pos + 30, name_len)] = pos + 30 + name_len + extra_len;
    pos += 4;
  }
  return out;
}

struct Fixture {
  const char* folder;
  const char* file;
  const char* archive;
  size_t entries;
  int64_t elements;
};
const Fixture kViTTiny{"fixtures/sam/vit_tiny", "sam_vit_tiny.pth", "sam_vit_tiny", 202, 5609424};
const Fixture kMobileSam{"fixtures/sam/vit_t_mobilesam", "mobile_sam_random.pth", "mobile_sam_random", 439, 10140231};

void check_against_key_list(const Fixture& f) {
  std::string dir = test::shared_path(f.folder);
  StateDict sd = weights::read_checkpoint(dir + "/" + f.file);
  std::vector<KeyLine> keys = read_keys(dir + "/state_dict_keys.txt");
  ASSERT_EQ(keys.size(), f.entries);
  ASSERT_EQ(sd.size(), keys.size());
  EXPECT_EQ(sd.numel(), f.elements);
  for (size_t i = 0; i < keys.size(); ++i) {
    const auto& [key, t] = sd.entries[i];
    EXPECT_EQ(key, keys[i].key) << "entry " << i;
    EXPECT_EQ(t.sizes().vec(), keys[i].shape) << key;
    EXPECT_EQ(t.scalar_type(), keys[i].dtype == "int64" ? torch::kLong : torch::kFloat) << key;
    EXPECT_TRUE(t.device().is_cpu());
  }
}

// torch.save numbers storages in the order it meets them, so tensor i lives in data/<i>.
void check_bytes_against_zip_members(const Fixture& f) {
  std::string path = test::shared_path(f.folder) + "/" + f.file;
  StateDict sd = weights::read_checkpoint(path);
  std::string bytes = slurp(path);
  auto members = local_member_offsets(bytes);
  ASSERT_EQ(members.size(), f.entries + 2);  // + data.pkl + version
  for (size_t i = 0; i < sd.size(); ++i) {
    const torch::Tensor t = sd.entries[i].second.contiguous();
    std::string name = std::string(f.archive) + "/data/" + std::to_string(i);
    ASSERT_TRUE(members.count(name)) << name;
    size_t at = members[name];
    ASSERT_LE(at + t.nbytes(), bytes.size());
    EXPECT_EQ(0, std::memcmp(bytes.data() + at, t.data_ptr(), t.nbytes())) << sd.entries[i].first;
  }
}

double mean_of(const StateDict& sd, const std::string& suffix, const std::string& contains = "") {
  double sum = 0;
  int64_t n = 0;
  for (const auto& [k, t] : sd.entries)
    if (k.size() >= suffix.size() && k.compare(k.size() - suffix.size(), suffix.size(), suffix) == 0 &&
        k.find(contains) != std::string::npos) {
      sum += t.to(torch::kDouble).sum().item<double>();
      n += t.numel();
    }
  EXPECT_GT(n, 0) << suffix;
  return sum / static_cast<double>(n);
}

}  // namespace

TEST(CheckpointFixtures, VitTinyKeysShapesDtypesMatchTheKeyList) {
  NUCLEISAM_REQUIRE_SHARED("fixtures/sam/vit_tiny");
  check_against_key_list(kViTTiny);
}

TEST(CheckpointFixtures, MobileSamKeysShapesDtypesMatchTheKeyList) {
  NUCLEISAM_REQUIRE_SHARED("fixtures/sam/vit_t_mobilesam");
  check_against_key_list(kMobileSam);
}

TEST(CheckpointFixtures, VitTinyTensorBytesEqualTheRawZipMembers) {
  NUCLEISAM_REQUIRE_SHARED("fixtures/sam/vit_tiny");
  check_bytes_against_zip_members(kViTTiny);
}

TEST(CheckpointFixtures, MobileSamTensorBytesEqualTheRawZipMembers) {
  NUCLEISAM_REQUIRE_SHARED("fixtures/sam/vit_t_mobilesam");
  check_bytes_against_zip_members(kMobileSam);
}

// The README's recipe: LayerNorm weights 1 + 0.1 randn, pos_embed 0.02 randn, Linear weights
// randn / sqrt(fan_in). Means and spreads over thousands of draws pin these down to a few %.
TEST(CheckpointFixtures, VitTinyValuesFollowTheDocumentedRecipe) {
  NUCLEISAM_REQUIRE_SHARED("fixtures/sam/vit_tiny");
  StateDict sd = weights::read_checkpoint(test::shared_path("fixtures/sam/vit_tiny/sam_vit_tiny.pth"));
  EXPECT_NEAR(mean_of(sd, "norm1.weight"), 1.0, 0.02);
  torch::Tensor pos = sd.at("image_encoder.pos_embed");
  EXPECT_NEAR(pos.std().item<double>(), 0.02, 0.0005);
  EXPECT_NEAR(pos.mean().item<double>(), 0.0, 0.0005);
  torch::Tensor qkv = sd.at("image_encoder.blocks.0.attn.qkv.weight");  // Linear(96 -> 288)
  ASSERT_EQ(qkv.size(1), 96);
  EXPECT_NEAR(qkv.std().item<double>(), 1.0 / std::sqrt(96.0), 0.01);
}

TEST(CheckpointFixtures, MobileSamBatchNormStateFollowsTheDocumentedRecipe) {
  NUCLEISAM_REQUIRE_SHARED("fixtures/sam/vit_t_mobilesam");
  StateDict sd = weights::read_checkpoint(test::shared_path("fixtures/sam/vit_t_mobilesam/mobile_sam_random.pth"));
  int counters = 0;
  for (const auto& [k, t] : sd.entries) {
    if (k.find("num_batches_tracked") != std::string::npos) {
      EXPECT_EQ(t.dim(), 0) << k;
      EXPECT_EQ(t.item<int64_t>(), 0) << k;
      ++counters;
    }
    if (k.find("running_var") != std::string::npos) {
      EXPECT_GE(t.min().item<float>(), 0.5f) << k;
      EXPECT_LT(t.max().item<float>(), 1.5f) << k;
    }
  }
  EXPECT_EQ(counters, 27);
  EXPECT_NEAR(mean_of(sd, "bn.weight"), 1.0, 0.02);
}

// Every prefix of the file is a truncated download: each must fail with a CheckpointError that
// names the file, never crash or return a partial state dict.
TEST(CheckpointFixtures, EveryTruncationIsRefused) {
  NUCLEISAM_REQUIRE_SHARED("fixtures/sam/vit_tiny");
  std::string bytes = slurp(test::shared_path("fixtures/sam/vit_tiny/sam_vit_tiny.pth"));
  const size_t n = bytes.size();
  std::vector<size_t> cuts = {1,     4,         29,        64,        1000,      36422,    36600,
                              n / 3, n / 2,     n - 4096,  n - 120,   n - 98,    n - 60,   n - 22,
                              n - 21, n - 1};
  test::TempDir dir;
  for (size_t cut : cuts) {
    std::string path = dir.file("cut_" + std::to_string(cut) + ".pth");
    std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(cut));
    try {
      weights::read_checkpoint(path);
      ADD_FAILURE() << "a file cut at " << cut << " of " << n << " bytes was accepted";
    } catch (const CheckpointError& e) {
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
  }
}

TEST(CheckpointFixtures, CorruptPickleBytesFailTheCrcCheck) {
  NUCLEISAM_REQUIRE_SHARED("fixtures/sam/vit_tiny");
  std::string bytes = slurp(test::shared_path("fixtures/sam/vit_tiny/sam_vit_tiny.pth"));
  test::TempDir dir;
  std::string path = dir.file("flipped.pth");
  size_t pkl = local_member_offsets(bytes).at("sam_vit_tiny/data.pkl");
  bytes[pkl + 500] = static_cast<char>(bytes[pkl + 500] ^ 0x5A);
  std::ofstream(path, std::ios::binary) << bytes;
  try {
    weights::read_checkpoint(path);
    FAIL() << "corrupt data.pkl accepted";
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("CRC"), std::string::npos) << e.what();
  }
}
