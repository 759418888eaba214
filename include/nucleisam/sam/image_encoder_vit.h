// SAM's ViT image encoder (ImageEncoderViT): patch embedding, absolute position embedding, blocks
// of windowed or global attention with decomposed relative positions, and the 256-channel neck.
// Submodule names equal the official state-dict keys after "image_encoder.".
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "nucleisam/sam/layer_norm_2d.h"

namespace nucleisam::weights {
struct StateDict;
}  // namespace nucleisam::weights

namespace nucleisam::sam {

struct ImageEncoderViTConfig {
  int img_size = 1024;  // size the checkpoint was trained at (pos_embed grid = img_size / patch)
  int patch_size = 16;
  int in_chans = 3;
  int embed_dim = 768;
  int depth = 12;
  int num_heads = 12;
  double mlp_ratio = 4.0;
  int out_chans = 256;
  int window_size = 14;  // window of the non-global blocks
  std::vector<int> global_attn_indexes{2, 5, 8, 11};

  static ImageEncoderViTConfig vit_b();
  static ImageEncoderViTConfig vit_l();
  static ImageEncoderViTConfig vit_h();
  // Reads the architecture from tensor shapes: embed_dim from patch_embed.proj.weight, depth from
  // the block count, head_dim from rel_pos_h's width, global blocks from rel_pos_h's length
  // (2 * grid - 1 rows). Throws CheckpointError naming `source_name` when keys are missing or
  // inconsistent.
  static ImageEncoderViTConfig from_state_dict(const weights::StateDict& state, const std::string& source_name,
                                               const std::string& prefix = "image_encoder.");
  // "vit_b", "vit_l", "vit_h" when the config equals a preset, else "vit(E=..,depth=..,heads=..)".
  std::string name() const;
  bool operator==(const ImageEncoderViTConfig& o) const;
};

struct PatchEmbedImpl : torch::nn::Module {
  PatchEmbedImpl(int in_chans, int embed_dim, int patch_size);
  torch::Tensor forward(const torch::Tensor& x);  // B,C,H,W -> B,H/p,W/p,E
  torch::nn::Conv2d proj{nullptr};
};
TORCH_MODULE(PatchEmbed);

struct ViTAttentionImpl : torch::nn::Module {
  // input_size: the token grid the rel-pos tables are made for (window size, or the full grid).
  ViTAttentionImpl(int dim, int num_heads, int input_size);
  torch::Tensor forward(const torch::Tensor& x);  // B,H,W,C
  torch::nn::Linear qkv{nullptr}, proj{nullptr};
  torch::Tensor rel_pos_h, rel_pos_w;
  int num_heads;
  int head_dim;
};
TORCH_MODULE(ViTAttention);

struct ViTMLPImpl : torch::nn::Module {
  ViTMLPImpl(int dim, int hidden);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Linear lin1{nullptr}, lin2{nullptr};
};
TORCH_MODULE(ViTMLP);

struct ViTBlockImpl : torch::nn::Module {
  ViTBlockImpl(int dim, int num_heads, double mlp_ratio, int window_size, int grid_size);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  ViTAttention attn{nullptr};
  ViTMLP mlp{nullptr};
  int window_size;  // 0: global attention
};
TORCH_MODULE(ViTBlock);

struct ImageEncoderViTImpl : torch::nn::Module {
  explicit ImageEncoderViTImpl(const ImageEncoderViTConfig& config);
  // x: B,3,S,S normalised and padded, S a multiple of the patch size. S = config.img_size is the
  // official path; any other S interpolates pos_embed (bicubic) and the global rel-pos tables
  // (linear, as get_rel_pos does). Returns B,out_chans,S/16,S/16.
  torch::Tensor forward(const torch::Tensor& x);
  // forward's three stages, so a module can be inserted between the patch embedding and the
  // blocks (a SAM-guided model adapts the tokens there): forward(x) is
  // apply_neck(run_blocks(embed_patches(x))), bit for bit.
  //   embed_patches: B,3,S,S -> B,S/p,S/p,E tokens, position embedding added (checks x as forward)
  //   run_blocks:    B,g,g,E -> B,g,g,E through every transformer block
  //   apply_neck:    B,g,g,E -> B,out_chans,g,g
  torch::Tensor embed_patches(const torch::Tensor& x);
  torch::Tensor run_blocks(const torch::Tensor& tokens);
  torch::Tensor apply_neck(const torch::Tensor& tokens);
  // pos_embed resampled to a grid x grid token grid (1,grid,grid,E); returns pos_embed unchanged
  // when grid is the trained grid.
  torch::Tensor pos_embed_for_grid(int grid) const;

  ImageEncoderViTConfig config;
  PatchEmbed patch_embed{nullptr};
  torch::Tensor pos_embed;
  torch::nn::ModuleList blocks{nullptr};
  torch::nn::Sequential neck{nullptr};
};
TORCH_MODULE(ImageEncoderViT);

// The official get_rel_pos: relative-position embeddings for every (query, key) pair, resampling
// the table linearly (align_corners=False) when its length is not 2 * max(q, k) - 1.
// Returns q_size x k_size x C.
torch::Tensor relative_position_table(int q_size, int k_size, const torch::Tensor& rel_pos);

}  // namespace nucleisam::sam
