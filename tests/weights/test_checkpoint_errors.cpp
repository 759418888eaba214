// Bad input gives its own clear CheckpointError naming the file: missing / foreign / truncated /
// unsafe / inconsistent files, and state dicts that do not fit the module they are loaded into.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "nucleisam/errors.h"
#include "nucleisam/weights/state_dict.h"
#include "weights/state_pickle.h"
#include "weights/zip_archive.h"
#include "support/test_support.h"

using namespace nucleisam;
using nucleisam::weights::StateDict;

namespace {

std::string zip_of(const std::vector<std::pair<std::string, std::string>>& members) {
  std::ostringstream out;
  weights::ZipWriter zip(out);
  for (const auto& [name, bytes] : members) zip.add(name, bytes.data(), bytes.size());
  zip.finish();
  return out.str();
}

std::string write_bytes(const test::TempDir& dir, const std::string& name, const std::string& bytes) {
  std::string path = dir.file(name);
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

// The message of the CheckpointError that reading `path` raises ("" if none: the test fails).
std::string read_error(const std::string& path) {
  try {
    weights::read_checkpoint(path);
  } catch (const CheckpointError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find(path), std::string::npos) << "message does not name the file: " << m;
    return m;
  }
  ADD_FAILURE() << path << " was accepted";
  return "";
}

std::string one_tensor_pickle(const std::string& storage_type, int64_t numel, std::vector<int64_t> sizes,
                              std::vector<int64_t> strides, const std::string& key = "0") {
  weights::TensorRecord r;
  r.name = "w";
  r.storage_type = storage_type;
  r.storage_key = key;
  r.numel = numel;
  r.sizes = std::move(sizes);
  r.strides = std::move(strides);
  return weights::write_state_pickle({r});
}

std::string floats(size_t n) { return std::string(n * 4, '\0'); }

#define EXPECT_CONTAINS(text, part) EXPECT_NE((text).find(part), std::string::npos) << (text)

}  // namespace

TEST(CheckpointErrors, MissingFile) {
  test::TempDir dir;
  EXPECT_CONTAINS(read_error(dir.file("nope.pth")), "no such file");
}

TEST(CheckpointErrors, NeitherZipNorSafetensors) {
  test::TempDir dir;
  EXPECT_CONTAINS(read_error(write_bytes(dir, "a.pth", "hello, this is text\n")), "not a checkpoint");
  EXPECT_CONTAINS(read_error(write_bytes(dir, "empty.pth", "")), "empty file");
  EXPECT_CONTAINS(read_error(write_bytes(dir, "legacy.pth", "\x80\x02\x8a\x0al\xfc\x9c" "F\xf9 j\xa8P\x19.")), "legacy");
}

// The issue's case: a data.pkl asking for an arbitrary callable must be refused before anything
// runs. `c os\nsystem\n` + ('ls',) + REDUCE is the classic pickle exploit.
TEST(CheckpointErrors, UnsafeGlobalIsRefused) {
  test::TempDir dir;
  std::string exploit = std::string("\x80\x02") + "cos\nsystem\nq\x00" + std::string("X\x02\x00\x00\x00", 5) + "ls\x85R.";
  std::string path = write_bytes(dir, "evil.pth", zip_of({{"archive/data.pkl", exploit}, {"archive/version", "3\n"}}));
  std::string m = read_error(path);
  EXPECT_CONTAINS(m, "refuses pickle global os.system (a checkpoint may only contain tensors)");

  // The protocol 4 spelling (STACK_GLOBAL) is refused the same way.
  std::string p4 = std::string("\x80\x04\x8c\x08") + "builtins" + "\x8c\x04" + "eval" + "\x93" + "\x8c\x01x\x85R.";
  EXPECT_CONTAINS(read_error(write_bytes(dir, "eval.pth", zip_of({{"a/data.pkl", p4}}))), "refuses pickle global builtins.eval");
}

TEST(CheckpointErrors, OpcodesOutsideTheStateDictSubsetAreRefused) {
  test::TempDir dir;
  // INST (protocol 0 object creation) and a bare protocol-0 INT.
  for (std::string p : {std::string("\x80\x02(icollections\nOrderedDict\n."), std::string("I42\n.")}) {
    std::string m = read_error(write_bytes(dir, "op.pth", zip_of({{"a/data.pkl", p}})));
    EXPECT_CONTAINS(m, "is not allowed");
  }
}

TEST(CheckpointErrors, TruncatedOrMalformedPickle) {
  test::TempDir dir;
  std::string good = one_tensor_pickle("Float", 2, {2}, {1});
  std::string cut = good.substr(0, good.size() / 2);
  EXPECT_CONTAINS(read_error(write_bytes(dir, "cut.pth", zip_of({{"a/data.pkl", cut}, {"a/data/0", floats(2)}}))),
                  "truncated");
  EXPECT_CONTAINS(read_error(write_bytes(dir, "list.pth", zip_of({{"a/data.pkl", "\x80\x02]."}}))),
                  "expected a dict of tensors");
  EXPECT_CONTAINS(read_error(write_bytes(dir, "none.pth", zip_of({{"a/other.txt", "x"}}))), "data.pkl");
}

TEST(CheckpointErrors, StorageProblems) {
  test::TempDir dir;
  // The pickle names data/0 but the archive has no such record.
  EXPECT_CONTAINS(read_error(write_bytes(dir, "nostorage.pth", zip_of({{"a/data.pkl", one_tensor_pickle("Float", 4, {4}, {1})}}))),
                  "storage record a/data/0 is missing");
  // 100 floats declared, 16 bytes present.
  EXPECT_CONTAINS(read_error(write_bytes(dir, "short.pth",
                                         zip_of({{"a/data.pkl", one_tensor_pickle("Float", 100, {100}, {1})},
                                                 {"a/data/0", floats(4)}}))),
                  "has 16 bytes, the pickle declares 400");
  // A 5-element view over a 4-element storage.
  EXPECT_CONTAINS(read_error(write_bytes(dir, "view.pth",
                                         zip_of({{"a/data.pkl", one_tensor_pickle("Float", 4, {5}, {1})},
                                                 {"a/data/0", floats(4)}}))),
                  "needs 5 elements, its storage has 4");
  // Complex tensors have no place in SAM checkpoints.
  EXPECT_CONTAINS(read_error(write_bytes(dir, "complex.pth",
                                         zip_of({{"a/data.pkl", one_tensor_pickle("ComplexFloat", 1, {1}, {1})},
                                                 {"a/data/0", floats(2)}}))),
                  "unsupported storage type torch.ComplexFloatStorage");
}

TEST(CheckpointErrors, CompressedEntryIsRefusedNotMisread) {
  test::TempDir dir;
  std::string bytes = zip_of({{"a/data.pkl", one_tensor_pickle("Float", 1, {1}, {1})}, {"a/data/0", floats(1)}});
  // Mark every entry as deflated (method 8) in the central directory, as `zip -9` would.
  for (size_t pos = 0; (pos = bytes.find(std::string("PK\x01\x02", 4), pos)) != std::string::npos; pos += 4)
    bytes[pos + 10] = 8;
  EXPECT_CONTAINS(read_error(write_bytes(dir, "deflated.pth", bytes)), "is compressed (method 8)");
}

TEST(CheckpointErrors, TorchScriptArchiveIsNamed) {
  test::TempDir dir;
  std::string bytes = zip_of({{"m/constants.pkl", "\x80\x02)."}, {"m/code/m.py", "x"}});
  EXPECT_CONTAINS(read_error(write_bytes(dir, "m.pt", bytes)), "TorchScript");
}

TEST(CheckpointErrors, BadSafetensors) {
  test::TempDir dir;
  auto file = [&](const std::string& name, const std::string& header, const std::string& data) {
    uint64_t n = header.size();
    return write_bytes(dir, name, std::string(reinterpret_cast<const char*>(&n), 8) + header + data);
  };
  EXPECT_CONTAINS(read_error(file("trunc.safetensors", R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", floats(2))),
                  "truncated");
  EXPECT_CONTAINS(read_error(file("size.safetensors", R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", floats(2))),
                  "needs 12 bytes, data_offsets give 8");
  EXPECT_CONTAINS(read_error(file("dtype.safetensors", R"({"a":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}})", "x")),
                  "unsupported dtype F8_E4M3");
  EXPECT_CONTAINS(read_error(file("json.safetensors", R"({"a":{"dtype":"F32",)", "")), "malformed safetensors header");
  EXPECT_CONTAINS(read_error(file("dup.safetensors", R"({"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]},"a":1})", floats(1))),
                  "duplicate key");
  EXPECT_CONTAINS(read_error(file("float.safetensors", R"({"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})", floats(1))),
                  "non-integer");
}

TEST(CheckpointErrors, UnwritableDtype) {
  test::TempDir dir;
  StateDict sd;
  sd.entries.emplace_back("c", torch::zeros({2}, torch::kComplexFloat));
  EXPECT_THROW(weights::write_pth(dir.file("c.pth"), sd), CheckpointError);
  EXPECT_THROW(weights::write_safetensors(dir.file("c.safetensors"), sd), CheckpointError);
}

// --- load_into / state_of ------------------------------------------------------------------------

namespace {

struct TinyNet : torch::nn::Module {
  TinyNet() {
    pixel_mean = register_buffer("pixel_mean", torch::tensor({1.f, 2.f, 3.f}));
    fc = register_module("fc", torch::nn::Linear(3, 2));
    bn = register_module("bn", torch::nn::BatchNorm1d(2));
  }
  torch::Tensor pixel_mean;
  torch::nn::Linear fc{nullptr};
  torch::nn::BatchNorm1d bn{nullptr};
};

const std::set<std::string> kNonPersistent{"pixel_mean"};

std::string load_error(TinyNet& net, const StateDict& sd, const std::string& prefix = "", bool strict = true) {
  try {
    weights::load_into(net, sd, "file.pth", prefix, strict, kNonPersistent);
  } catch (const CheckpointError& e) {
    return e.what();
  }
  ADD_FAILURE() << "load_into accepted a mismatching state dict";
  return "";
}

StateDict without(StateDict sd, const std::string& key) {
  for (size_t i = 0; i < sd.entries.size(); ++i)
    if (sd.entries[i].first == key) sd.entries.erase(sd.entries.begin() + static_cast<std::ptrdiff_t>(i));
  return sd;
}

void replace(StateDict& sd, const std::string& key, torch::Tensor t) {
  for (auto& e : sd.entries)
    if (e.first == key) e.second = t;
}

}  // namespace

TEST(CheckpointLoadInto, StateOfFollowsPyTorchOrder) {
  TinyNet net;
  std::vector<std::string> keys;
  for (const auto& e : weights::state_of(net, "", kNonPersistent).entries) keys.push_back(e.first);
  EXPECT_EQ(keys, (std::vector<std::string>{"fc.weight", "fc.bias", "bn.weight", "bn.bias", "bn.running_mean",
                                            "bn.running_var", "bn.num_batches_tracked"}));
  keys.clear();
  for (const auto& e : weights::state_of(net, "m.").entries) keys.push_back(e.first);
  EXPECT_EQ(keys.front(), "m.pixel_mean");  // persistent unless said otherwise
}

TEST(CheckpointLoadInto, RoundTripThroughAFileRestoresEveryTensor) {
  torch::manual_seed(3);
  TinyNet a, b;
  a.bn->running_mean.fill_(0.25);
  a.bn->num_batches_tracked.fill_(17);
  test::TempDir dir;
  weights::write_pth(dir.file("net.pth"), weights::state_of(a, "", kNonPersistent));
  StateDict sd = weights::read_checkpoint(dir.file("net.pth"));
  weights::load_into(b, sd, "net.pth", "", true, kNonPersistent);
  EXPECT_TRUE(torch::equal(a.fc->weight, b.fc->weight));
  EXPECT_TRUE(torch::equal(a.fc->bias, b.fc->bias));
  EXPECT_TRUE(torch::equal(b.bn->running_mean, torch::full({2}, 0.25f)));
  EXPECT_EQ(b.bn->num_batches_tracked.item<int64_t>(), 17);
  EXPECT_TRUE(torch::equal(b.pixel_mean, torch::tensor({1.f, 2.f, 3.f})));
}

TEST(CheckpointLoadInto, EveryProblemIsReportedByNameAndNothingIsCopied) {
  TinyNet net, other;
  StateDict sd = without(weights::state_of(other, "", kNonPersistent), "fc.bias");
  replace(sd, "fc.weight", torch::zeros({2, 4}));
  replace(sd, "bn.num_batches_tracked", torch::zeros({}, torch::kFloat));
  sd.entries.emplace_back("extra.w", torch::zeros({1}));
  torch::Tensor before = net.bn->weight.clone();
  net.bn->weight.data().fill_(5.f);
  std::string m = load_error(net, sd);
  EXPECT_CONTAINS(m, "file.pth: ");
  EXPECT_CONTAINS(m, "1 missing (fc.bias)");
  EXPECT_CONTAINS(m, "1 unexpected (extra.w)");
  EXPECT_CONTAINS(m, "1 wrong shape (fc.weight expected [2, 3] found [2, 4])");
  EXPECT_CONTAINS(m, "1 wrong dtype (bn.num_batches_tracked expected Long found Float)");
  EXPECT_TRUE(torch::equal(net.bn->weight, torch::full({2}, 5.f)));  // untouched
}

TEST(CheckpointLoadInto, NonStrictIgnoresUnexpectedButNotMissing) {
  TinyNet net, other;
  StateDict sd = weights::state_of(other, "", kNonPersistent);
  sd.entries.emplace_back("extra.w", torch::zeros({1}));
  EXPECT_NO_THROW(weights::load_into(net, sd, "file.pth", "", /*strict=*/false, kNonPersistent));
  EXPECT_CONTAINS(load_error(net, without(sd, "bn.bias"), "", false), "1 missing (bn.bias)");
  // A file that carries a non-persistent buffer is flagged, as PyTorch does under strict.
  StateDict with_mean = weights::state_of(other);
  EXPECT_CONTAINS(load_error(net, with_mean), "1 unexpected (pixel_mean)");
}

TEST(CheckpointLoadInto, PrefixSelectsASubtreeAndFloatsConvert) {
  torch::manual_seed(5);
  TinyNet net, other;
  StateDict sd = weights::state_of(other, "model.", kNonPersistent);
  for (auto& e : sd.entries)
    if (e.second.is_floating_point()) e.second = e.second.to(torch::kHalf);
  sd.entries.emplace_back("optimizer.step", torch::zeros({1}));  // outside the prefix: ignored
  weights::load_into(net, sd, "file.pth", "model.", true, kNonPersistent);
  EXPECT_TRUE(torch::equal(net.fc->weight, other.fc->weight.to(torch::kHalf).to(torch::kFloat)));
  EXPECT_EQ(net.fc->weight.scalar_type(), torch::kFloat);
}

// The issue's "done when": the fixture file loaded into a module that wants a tensor the file
// lacks, and one with a wrong shape, each fail with their own message.
TEST(CheckpointLoadInto, FixtureMissingTensorAndWrongShape) {
  NUCLEISAM_REQUIRE_SHARED("fixtures/sam/vit_tiny");
  std::string path = test::shared_path("fixtures/sam/vit_tiny/sam_vit_tiny.pth");
  StateDict sd = weights::read_checkpoint(path);

  struct Encoder : torch::nn::Module {
    Encoder(int64_t channels, bool wants_extra) {
      register_parameter("pos_embed", torch::zeros({1, 64, 64, channels}));
      if (wants_extra) register_parameter("not_in_file", torch::zeros({3}));
    }
  };
  Encoder wants_more(96, true);
  try {
    weights::load_into(wants_more, sd, path, "image_encoder.", /*strict=*/false);
    FAIL() << "missing tensor accepted";
  } catch (const CheckpointError& e) {
    EXPECT_EQ(std::string(e.what()), path + ": does not match the model (keys under image_encoder.): 1 missing "
                                            "(image_encoder.not_in_file)");
  }
  Encoder wrong(128, false);
  try {
    weights::load_into(wrong, sd, path, "image_encoder.", /*strict=*/false);
    FAIL() << "wrong shape accepted";
  } catch (const CheckpointError& e) {
    EXPECT_EQ(std::string(e.what()), path + ": does not match the model (keys under image_encoder.): 1 wrong shape "
                                            "(image_encoder.pos_embed expected [1, 64, 64, 128] found [1, 64, 64, 96])");
  }
  Encoder right(96, false);
  weights::load_into(right, sd, path, "image_encoder.", false);
  EXPECT_TRUE(torch::equal(right.named_parameters()["pos_embed"], sd.at("image_encoder.pos_embed")));
}

// Declared sizes over limits.h are refused before anything is allocated or read, naming the limit.
TEST(CheckpointLimits, HugeDeclaredTensorsZipBombsAndDeepHeadersAreRefused) {
  test::TempDir dir;
  // 2^36 floats (256 GiB) declared over a 4-byte range.
  auto safetensors = [&](const std::string& name, const std::string& header, const std::string& data) {
    uint64_t n = header.size();
    return write_bytes(dir, name, std::string(reinterpret_cast<const char*>(&n), 8) + header + data);
  };
  EXPECT_CONTAINS(read_error(safetensors("huge.safetensors",
                                         R"({"a":{"dtype":"F32","shape":[68719476736],"data_offsets":[0,4]}})",
                                         floats(1))),
                  "(kMaxTensorBytes)");
  // The same in a .pth: the pickle declares a 2^36-float storage, the archive holds 4 bytes.
  EXPECT_CONTAINS(read_error(write_bytes(dir, "huge.pth",
                                         zip_of({{"a/data.pkl", one_tensor_pickle("Float", int64_t{1} << 36, {1}, {1})},
                                                 {"a/data/0", floats(1)}}))),
                  "(kMaxTensorBytes)");
  // A zip bomb: an 8 KiB entry whose central directory declares 1000 times as much uncompressed.
  std::string bomb = zip_of({{"a/data.pkl", one_tensor_pickle("Float", 2048, {2048}, {1})}, {"a/data/0", floats(2048)}});
  const size_t central = bomb.rfind(std::string("PK\x01\x02", 4));
  const uint32_t declared = 8192 * 1000;
  std::memcpy(&bomb[central + 24], &declared, 4);
  EXPECT_CONTAINS(read_error(write_bytes(dir, "bomb.pth", bomb)), "(kMaxZipRatio; a zip bomb?)");
  // Metadata nested deeper than kMaxJsonDepth.
  const std::string deep = std::string(80, '[') + std::string(80, ']');
  EXPECT_CONTAINS(read_error(safetensors("deep.safetensors", R"({"__metadata__":{"x":)" + deep + "}}", "")),
                  "(limit kMaxJsonDepth)");
}
