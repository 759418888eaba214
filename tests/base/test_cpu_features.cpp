// CPU feature parsing and precision resolution.
#include <gtest/gtest.h>

#include "nucleisam/cpu_features.h"
#include "nucleisam/errors.h"

using namespace nucleisam;

TEST(CpuFeatures, ParsesTheFirstProcessor) {
  const std::string text =
      "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Platinum 8480+\n"
      "flags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_tile amx_bf16\n\n"
      "processor\t: 1\nmodel name\t: Other\nflags\t\t: fpu\n";
  CpuFeatures c = parse_cpuinfo(text);
  EXPECT_EQ(c.model, "Intel(R) Xeon(R) Platinum 8480+");
  EXPECT_TRUE(c.avx2);
  EXPECT_TRUE(c.avx512f);
  EXPECT_TRUE(c.avx512_bf16);
  EXPECT_TRUE(c.amx_bf16);
  EXPECT_TRUE(c.native_bf16());
  EXPECT_EQ(c.vendor, "GenuineIntel");
  EXPECT_TRUE(c.bf16_faster());
  EXPECT_EQ(c.summary(), "Intel(R) Xeon(R) Platinum 8480+ (AVX2 AVX-512 AVX-512-BF16 AMX-BF16)");
}

// bf16 is chosen where it was measured faster: AMX, or AVX-512-BF16 on AMD; not Intel's
// AVX-512-BF16 alone (an Emerald Rapids whose hypervisor hides AMX ran he-nuclei 1.56x slower).
TEST(CpuFeatures, Bf16IsPreferredWhereItWasMeasuredFaster) {
  const auto cpu = [](const std::string& vendor, const std::string& flags) {
    return parse_cpuinfo("processor : 0\nvendor_id : " + vendor + "\nmodel name : X\nflags : " + flags +
                         "\n");
  };
  EXPECT_TRUE(cpu("AuthenticAMD", "avx2 avx512f avx512_bf16").bf16_faster());   // Zen 4
  EXPECT_FALSE(cpu("GenuineIntel", "avx2 avx512f avx512_bf16").bf16_faster());  // AMX hidden, Cooper Lake
  EXPECT_TRUE(cpu("GenuineIntel", "avx2 avx512f avx512_bf16 amx_bf16").bf16_faster());
  EXPECT_FALSE(cpu("AuthenticAMD", "avx2 avx512f").bf16_faster());             // Zen 3
  EXPECT_FALSE(cpu("", "avx2 avx512f avx512_bf16").bf16_faster());             // vendor unknown
  EXPECT_TRUE(cpu("GenuineIntel", "avx2 avx512f avx512_bf16").native_bf16());  // it still has them
}

TEST(CpuFeatures, NoBf16OnCascadeLakeLikeFlags) {
  // "avx512_bf16" must be matched as a whole flag: "avx512bw" or "avx512_vnni" are not bf16.
  CpuFeatures c = parse_cpuinfo("model name : X\nflags : avx2 avx512f avx512bw avx512_vnni\n");
  EXPECT_FALSE(c.native_bf16());
  EXPECT_TRUE(c.avx512f);
  EXPECT_EQ(parse_cpuinfo("").summary(), "unknown CPU (no AVX2)");
}

TEST(CpuFeatures, ResolvePrecision) {
  EXPECT_EQ(resolve_precision("fp32"), "fp32");
  EXPECT_EQ(resolve_precision("bf16"), "bf16");
  EXPECT_EQ(resolve_precision("auto", true), "bf16");
  EXPECT_EQ(resolve_precision("auto"), cpu_features().bf16_faster() ? "bf16" : "fp32");
  EXPECT_THROW(resolve_precision("fp16"), OptionError);
}
