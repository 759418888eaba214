// Category-descriptor SAM: shapes, hand-counted parameters, what trains and what stays frozen,
// the alignment's place and identity start, batched decoding = one pass per category, point
// prompts, SAM checkpoints (random-weight fixtures) and the model-file round trip.
#include <gtest/gtest.h>

#include "nucleisam/errors.h"
#include "nucleisam/models/autocast.h"
#include "nucleisam/models/category_sam.h"
#include "nucleisam/models/model_file.h"
#include "nucleisam/weights/state_dict.h"
#include "support/test_support.h"

using namespace nucleisam;
using models::CategorySamImpl;

namespace {

// A ViT of 32 channels, 2 blocks (the second global), input 64 -> a 4 x 4 token grid.
std::map<std::string, std::string> tiny_options(const std::string& trainable = "adapters", int blocks = 2) {
  return {{"encoder", "vit"},         {"encoder_embed_dim", "32"}, {"encoder_depth", "2"},
          {"encoder_heads", "2"},     {"encoder_window", "2"},     {"encoder_global_attn", "1"},
          {"encoder_img_size", "64"}, {"alignment_blocks", std::to_string(blocks)},
          {"alignment_hidden", "8"},  {"descriptors", "3"},        {"input_size", "64"},
          {"trainable", trainable}};
}

std::shared_ptr<CategorySamImpl> tiny(const std::string& trainable = "adapters", int blocks = 2, int64_t k = 4) {
  torch::manual_seed(3);
  auto net = models::build_network("category-sam", k, models::ModelOptions(tiny_options(trainable, blocks)));
  return std::dynamic_pointer_cast<CategorySamImpl>(net);
}

int64_t trainable_count(torch::nn::Module& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters())
    if (p.requires_grad()) n += p.numel();
  return n;
}

int64_t count(const std::vector<torch::Tensor>& ps) {
  int64_t n = 0;
  for (const auto& p : ps) n += p.numel();
  return n;
}

}  // namespace

TEST(CategorySam, ShapesOfMasksScoresAndLogits) {
  auto net = tiny();
  net->eval();
  torch::NoGradGuard no_grad;
  auto x = torch::randn({2, 3, 48, 48});  // resized to the 64-pixel SAM input
  auto out = net->predict(x);
  EXPECT_EQ(out.masks.sizes(), (std::vector<int64_t>{2, 4, 48, 48}));
  EXPECT_EQ(out.iou.sizes(), (std::vector<int64_t>{2, 4}));
  auto low = net->decode(net->encode(x));
  EXPECT_EQ(low.masks.sizes(), (std::vector<int64_t>{2, 4, 16, 16}));  // 4 x the 4 x 4 grid
  EXPECT_EQ(net->forward(x, {}).sizes(), (std::vector<int64_t>{2, 4, 48, 48}));
  EXPECT_EQ(net->out_channels(), 4);
}

TEST(CategorySam, ParameterCountsByHand) {
  // Inverted residual, C = 32, hidden 8: expand 32*8, BN 2*8, depthwise 8*9, BN 2*8,
  // project 8*32, BN 2*32 = 2*256 + 72 + 32 + 64 = 680 per block.
  auto net = tiny();
  EXPECT_EQ(count(net->domain_alignment->parameters()), 2 * 680);
  EXPECT_EQ(net->category_descriptors.numel(), 4 * 3 * 256);
  // The paper's setting trains exactly these.
  EXPECT_EQ(trainable_count(*net), 2 * 680 + 4 * 3 * 256);
  // ViT-B's alignment (C = 768, hidden 96, 12 blocks): 12 * (2*768*96 + 13*96 + 2*768) = 1,802,880.
  models::InvertedResidualImpl block(768, 96);
  EXPECT_EQ(count(block.parameters()), 150240);
  // "decoder" adds the whole mask decoder, "all" everything.
  auto dec = tiny("decoder");
  EXPECT_EQ(trainable_count(*dec), 2 * 680 + 4 * 3 * 256 + count(dec->sam->mask_decoder->parameters()));
  auto all = tiny("all");
  EXPECT_EQ(trainable_count(*all), count(all->parameters()));
}

TEST(CategorySam, FrozenPartsGetNoGradient) {
  for (const std::string mode : {"adapters", "decoder", "encoder"}) {
    auto net = tiny(mode);
    net->train();
    auto logits = net->forward(torch::randn({2, 3, 64, 64}), {});
    (logits * torch::randn_like(logits)).sum().backward();
    const bool enc = mode == "encoder", dec = mode == "decoder";
    for (const auto& p : net->sam->image_encoder()->named_parameters())
      EXPECT_EQ(p.value().grad().defined(), enc) << mode << " image_encoder." << p.key();
    for (const auto& p : net->sam->mask_decoder->named_parameters()) {
      // The IoU head does not reach the mask logits: it never has a gradient here.
      if (p.key().rfind("iou_prediction_head", 0) == 0) continue;
      EXPECT_EQ(p.value().grad().defined(), dec) << mode << " mask_decoder." << p.key();
    }
    for (const auto& p : net->sam->prompt_encoder->named_parameters())
      EXPECT_FALSE(p.value().grad().defined()) << mode << " prompt_encoder." << p.key();
    ASSERT_TRUE(net->category_descriptors.grad().defined());
    EXPECT_GT(net->category_descriptors.grad().abs().sum().item<double>(), 0);
    // A fresh block is the identity (project_bn scale 0): its scale is what moves first.
    auto bn = net->domain_alignment->blocks[0]->as<models::InvertedResidualImpl>()->project_bn;
    ASSERT_TRUE(bn->weight.grad().defined());
    EXPECT_GT(bn->weight.grad().abs().sum().item<double>(), 0);
  }
}

TEST(CategorySam, FreshAlignmentIsTheIdentityAtTheLowLevelPoint) {
  auto with = tiny("adapters", 2), without = tiny("adapters", 0);
  weights::load_into(*without->sam, weights::state_of(*with->sam), "test");
  with->eval(), without->eval();
  torch::NoGradGuard no_grad;
  auto x = torch::randn({1, 3, 64, 64});
  EXPECT_TRUE(torch::allclose(with->encode(x), without->encode(x), 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(without->encode(x), without->sam->encode_image(x), 1e-5, 1e-6));
  // Once the block is not the identity, the encoder's output moves.
  with->domain_alignment->blocks[1]->as<models::InvertedResidualImpl>()->project_bn->weight.fill_(1.0);
  EXPECT_FALSE(torch::allclose(with->encode(x), without->encode(x), 1e-3, 1e-3));
}

TEST(CategorySam, BatchedDecodingEqualsOnePassPerCategory) {
  auto net = tiny();
  net->eval();
  torch::NoGradGuard no_grad;
  auto emb = net->encode(torch::randn({2, 3, 64, 64}));
  auto batched = net->decode(emb);
  auto& pe = net->sam->prompt_encoder;
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t k = 0; k < 4; ++k) {
      auto [masks, iou] = net->sam->mask_decoder->forward(emb.narrow(0, n, 1), pe->dense_pe(),
                                                          net->category_descriptors[k].unsqueeze(0),
                                                          pe->no_mask_dense(1), /*multimask=*/false);
      EXPECT_TRUE(torch::allclose(batched.masks[n][k], masks[0][0], 1e-4, 1e-5)) << n << "," << k;
      EXPECT_NEAR(batched.iou[n][k].item<float>(), iou[0][0].item<float>(), 1e-5);
    }
}

TEST(CategorySam, PointPromptChangesOnlyItsCategory) {
  auto net = tiny();
  net->eval();
  torch::NoGradGuard no_grad;
  auto x = torch::randn({1, 3, 32, 32});
  auto plain = net->predict(x);
  auto none = net->predict(x, {{2, {}}});  // a category with no points: same as no prompt
  EXPECT_TRUE(torch::allclose(plain.masks, none.masks, 1e-4, 1e-5));
  auto clicked = net->predict(x, {{2, {{10.0f, 20.0f}}}});
  for (int64_t k = 0; k < 4; ++k) {
    const bool same = torch::allclose(plain.masks[0][k], clicked.masks[0][k], 1e-4, 1e-5);
    EXPECT_EQ(same, k != 2) << "category " << k;
  }
  EXPECT_THROW(net->predict(x, {{7, {{1.0f, 1.0f}}}}), ModelError);
  EXPECT_THROW(net->predict(torch::randn({2, 3, 32, 32}), {{1, {{1.0f, 1.0f}}}}), ModelError);
}

TEST(CategorySam, FrozenTinyViTKeepsItsBatchNormStatistics) {
  torch::manual_seed(1);
  auto net = std::dynamic_pointer_cast<CategorySamImpl>(models::build_network(
      "category-sam", 3,
      models::ModelOptions({{"encoder", "vit_t"}, {"alignment_blocks", "1"}, {"input_size", "64"}, {"descriptors", "2"}})));
  net->train();
  EXPECT_FALSE(net->sam->tiny_vit->is_training());
  EXPECT_FALSE(net->sam->mask_decoder->is_training());
  EXPECT_TRUE(net->domain_alignment->is_training());
  // The low-level point of TinyViT: the stem's 64 channels.
  EXPECT_EQ(net->domain_alignment->blocks[0]->as<models::InvertedResidualImpl>()->expand->weight.size(1), 64);
  auto before = net->sam->tiny_vit->named_buffers();
  std::map<std::string, torch::Tensor> saved;
  for (const auto& b : before) saved[b.key()] = b.value().clone();
  net->forward(torch::randn({2, 3, 64, 64}), {}).sum().backward();
  for (const auto& b : net->sam->tiny_vit->named_buffers())
    EXPECT_TRUE(torch::equal(b.value(), saved[b.key()])) << b.key();
}

TEST(CategorySam, BadOptionsAreNamed) {
  auto build = [](std::map<std::string, std::string> o, int64_t k = 4) {
    models::build_network("category-sam", k, models::ModelOptions(std::move(o)));
  };
  auto message = [&](std::map<std::string, std::string> o, int64_t k = 4) -> std::string {
    try {
      build(std::move(o), k);
    } catch (const ModelError& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(message({{"trainable", "everything"}}).find("'trainable'"), std::string::npos);
  EXPECT_NE(message({{"input_size", "100"}}).find("'input_size'"), std::string::npos);
  EXPECT_NE(message({{"encoder", "vit"}, {"encoder_heads", "5"}, {"encoder_embed_dim", "32"}}).find("encoder_heads"),
            std::string::npos);
  EXPECT_NE(message({{"encoder_depth", "2"}}).find("not used"), std::string::npos);  // only for encoder "vit"
  EXPECT_NE(message({}, 2).find("at least 3 categories"), std::string::npos);
}

TEST(CategorySam, LoadsTheViTFixtureCheckpoint) {
  NUCLEISAM_REQUIRE_SHARED("fixtures/sam/vit_tiny/sam_vit_tiny.pth");
  const std::string path = test::shared_path("fixtures/sam/vit_tiny/sam_vit_tiny.pth");
  const weights::StateDict state = weights::read_checkpoint(path);
  auto options = models::category_sam_encoder_options(state, path);
  EXPECT_EQ(options.at("encoder"), "vit");
  EXPECT_EQ(options.at("encoder_embed_dim"), "96");
  EXPECT_EQ(options.at("encoder_global_attn"), "1,3");
  options["alignment_blocks"] = "2";
  options["descriptors"] = "4";
  options["input_size"] = "128";
  auto net = std::dynamic_pointer_cast<CategorySamImpl>(
      models::build_network("category-sam", 5, models::ModelOptions(options)));
  net->load_sam_weights(state, path);
  EXPECT_TRUE(torch::equal(net->sam->vit->pos_embed, state.at("image_encoder.pos_embed")));
  // With a fresh (identity) alignment the encoder is exactly the checkpoint's SAM at 128 pixels.
  auto sam = sam::load_sam(path);
  net->eval();
  torch::NoGradGuard no_grad;
  auto x = torch::randn({1, 3, 128, 128});
  EXPECT_TRUE(torch::allclose(net->encode(x), sam->encode_image(x), 1e-4, 1e-5));
  // A MobileSAM-configured model refuses it, naming the file.
  auto mobile = std::dynamic_pointer_cast<CategorySamImpl>(models::build_network(
      "category-sam", 5, models::ModelOptions({{"encoder", "vit_t"}, {"input_size", "64"}})));
  try {
    mobile->load_sam_weights(state, path);
    FAIL() << "a ViT checkpoint loaded into a TinyViT model";
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos);
  }
}

TEST(CategorySam, LoadsTheMobileSamFixtureCheckpoint) {
  NUCLEISAM_REQUIRE_SHARED("fixtures/sam/vit_t_mobilesam/mobile_sam_random.pth");
  const std::string path = test::shared_path("fixtures/sam/vit_t_mobilesam/mobile_sam_random.pth");
  const weights::StateDict state = weights::read_checkpoint(path);
  auto options = models::category_sam_encoder_options(state, path);
  EXPECT_EQ(options, (std::map<std::string, std::string>{{"encoder", "vit_t"}}));
  options["alignment_blocks"] = "1";
  options["input_size"] = "64";
  auto net = std::dynamic_pointer_cast<CategorySamImpl>(
      models::build_network("category-sam", 3, models::ModelOptions(options)));
  net->load_sam_weights(state, path);
  auto sam = sam::load_sam(path);
  net->eval();
  torch::NoGradGuard no_grad;
  auto x = torch::randn({1, 3, 64, 64});
  EXPECT_TRUE(torch::allclose(net->encode(x), sam->encode_image(x), 1e-4, 1e-5));
}

TEST(CategorySam, ModelFileRoundTrip) {
  auto net = tiny();
  {
    torch::NoGradGuard no_grad;
    for (auto& p : net->domain_alignment->parameters()) p.add_(0.1 * torch::randn_like(p));
  }
  models::ModelCard card;
  card.name = "cat";
  card.arch = "category-sam";
  card.options = tiny_options();
  card.heads.distance = false;
  card.heads.categories = true;
  card.heads.num_classes = 2;
  card.class_names = {"background", "a", "b"};
  ASSERT_EQ(card.heads.channels(), 4);
  test::TempDir dir;
  models::save_model(dir.file("cat.safetensors"), *net, card);
  models::LoadedModel loaded = models::load_model(dir.file("cat.safetensors"));
  EXPECT_TRUE(loaded.card.heads.categories);
  EXPECT_EQ(loaded.card.heads.boundary_category(), 3);
  net->eval();
  torch::NoGradGuard no_grad;
  auto x = torch::randn({1, 3, 64, 64});
  EXPECT_TRUE(torch::equal(net->forward(x, {}), loaded.network->forward(x, {})));
}

TEST(CategorySam, RunsInBf16UnderAutocastCloseToFp32) {
  for (const std::string encoder : {"vit", "vit_t"}) {
    torch::manual_seed(2);
    auto options = tiny_options("all");
    if (encoder == "vit_t")
      options = {{"encoder", "vit_t"}, {"alignment_blocks", "1"}, {"input_size", "64"}, {"descriptors", "2"},
                 {"trainable", "all"}};
    auto net = std::dynamic_pointer_cast<CategorySamImpl>(
        models::build_network("category-sam", 4, models::ModelOptions(options)));
    net->train();
    auto x = torch::randn({2, 3, 64, 64});
    torch::Tensor logits;
    {
      models::Bf16AutocastScope autocast(true);
      logits = net->forward(x, {});
      EXPECT_TRUE(at::autocast::is_cpu_enabled());  // the prompt encoder's fp32 scope restores it
    }
    EXPECT_EQ(logits.scalar_type(), torch::kFloat32) << encoder;
    logits.sum().backward();
    for (const auto& p : net->named_parameters()) {
      const bool checked = p.key().find("mask_decoder.transformer.layers.0.self_attn") != std::string::npos ||
                           p.key() == "category_descriptors" || p.key().find("domain_alignment") != std::string::npos;
      if (checked) {
        EXPECT_TRUE(p.value().grad().defined()) << encoder << " " << p.key();
      }
    }

    // In eval mode bf16 must really run (the logits differ) and stay close to fp32.
    net->eval();
    torch::NoGradGuard no_grad;
    torch::Tensor fp32 = net->forward(x, {}), bf16;
    {
      models::Bf16AutocastScope autocast(true);
      bf16 = net->forward(x, {});
    }
    const double rel = ((bf16 - fp32).norm() / fp32.norm()).item<double>();
    EXPECT_GT(rel, 1e-5) << encoder;
    EXPECT_LT(rel, 5e-2) << encoder;
    // Point prompts under autocast: encoded in fp32, decoded in bf16, float32 out.
    {
      models::Bf16AutocastScope autocast(true);
      auto out = net->predict(x.slice(0, 0, 1), {{1, {{20.0, 30.0}}}});
      EXPECT_EQ(out.masks.scalar_type(), torch::kFloat32) << encoder;
      EXPECT_EQ(out.iou.scalar_type(), torch::kFloat32) << encoder;
    }
  }
}
