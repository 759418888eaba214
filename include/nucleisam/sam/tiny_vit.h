// MobileSAM's image encoder: TinyViT-5M followed by SAM's neck (B,3,H,W) -> (B,256,H/16,W/16).
// Submodules carry the official state-dict names (after the "image_encoder." prefix), so
// MobileSAM's mobile_sam.pt loads onto this module tree with no renaming. Runs in eval mode
// (BatchNorm uses its running statistics) from construction on.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace nucleisam::sam {

struct TinyViTConfig {
  std::vector<int64_t> embed_dims;    // channels per stage
  std::vector<int64_t> depths;        // blocks per stage (stage 0 = MBConv, the rest = attention)
  std::vector<int64_t> num_heads;     // per stage (stage 0 unused)
  std::vector<int64_t> window_sizes;  // per stage (stage 0 unused)
  double mlp_ratio = 4.0;
  double mbconv_expand_ratio = 4.0;
  int64_t local_conv_size = 3;
  int64_t img_size = 1024;     // nominal input side; forward accepts other sizes too
  int64_t out_chans = 256;     // neck output channels (SAM's prompt/decoder width)
  int64_t num_classes = 1000;  // width of the unused classification head kept for strict loading

  // The configuration of MobileSAM's build_sam_vit_t.
  static TinyViTConfig mobile_sam();
};

// Convolution without bias followed by BatchNorm2d ("c", "bn" in the state dict).
struct Conv2dBNImpl : torch::nn::Module {
  Conv2dBNImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride = 1, int64_t pad = 0,
               int64_t groups = 1);
  // Training mode: conv then BatchNorm. Eval mode: one conv with the BatchNorm folded in.
  torch::Tensor forward(const torch::Tensor& x);

  int64_t stride, padding, groups;
  torch::nn::Conv2d c{nullptr};
  torch::nn::BatchNorm2d bn{nullptr};
};
TORCH_MODULE(Conv2dBN);

// Windowed multi-head self-attention with a learned bias per (|dy|, |dx|) offset inside a
// window. Input (B*windows, window_size^2, dim) raw tokens; the layer norm is applied inside.
struct TinyViTAttentionImpl : torch::nn::Module {
  TinyViTAttentionImpl(int64_t dim, int64_t num_heads, int64_t window_size);
  torch::Tensor forward(const torch::Tensor& x);

  // (heads, N, N) bias added to the attention logits, gathered from attention_biases.
  torch::Tensor bias_matrix();

  int64_t num_heads;
  int64_t head_dim;
  int64_t window_size;
  torch::Tensor attention_biases;  // (heads, number of distinct offsets), a parameter
  torch::nn::LayerNorm norm{nullptr};
  torch::nn::Linear qkv{nullptr};
  torch::nn::Linear proj{nullptr};

 private:
  // (N, N) indices into attention_biases' second axis. Not registered: it is derived from the
  // window size and absent from the official checkpoints. Moved lazily to the parameters' device.
  torch::Tensor bias_indices_;
};
TORCH_MODULE(TinyViTAttention);

// Index of each (query, key) pair of positions in a window_size x window_size window (row-major),
// the offset (|dr|, |dc|) numbered in order of first appearance over all pairs. (N, N) int64.
torch::Tensor attention_bias_indices(int64_t window_size);
// Number of distinct offsets, i.e. the width of attention_biases (window_size^2 for square windows).
int64_t attention_bias_count(int64_t window_size);

// Splits (B, H, W, C) into (B*nH*nW, ws*ws, C) windows after zero-padding H and W on the
// bottom/right up to multiples of ws; window_merge undoes it and crops back to (B, H, W, C).
torch::Tensor window_partition(const torch::Tensor& x, int64_t window_size);
torch::Tensor window_merge(const torch::Tensor& windows, int64_t window_size, int64_t batch, int64_t height,
                           int64_t width);

struct TinyViTMlpImpl : torch::nn::Module {
  TinyViTMlpImpl(int64_t dim, int64_t hidden);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::LayerNorm norm{nullptr};
  torch::nn::Linear fc1{nullptr};
  torch::nn::Linear fc2{nullptr};
};
TORCH_MODULE(TinyViTMlp);

// x + WindowAttention(x) -> depthwise local conv (no residual) -> x + Mlp(x). Tokens (B, H*W, C).
struct TinyViTBlockImpl : torch::nn::Module {
  TinyViTBlockImpl(int64_t dim, int64_t num_heads, int64_t window_size, double mlp_ratio,
                   int64_t local_conv_size);
  torch::Tensor forward(const torch::Tensor& tokens, int64_t height, int64_t width);

  int64_t window_size;
  TinyViTAttention attn{nullptr};
  TinyViTMlp mlp{nullptr};
  Conv2dBN local_conv{nullptr};
};
TORCH_MODULE(TinyViTBlock);

// Inverted residual: GELU(x + conv3(GELU(dw conv2(GELU(conv1 x))))). NCHW in and out.
struct MBConvImpl : torch::nn::Module {
  MBConvImpl(int64_t dim, double expand_ratio);
  torch::Tensor forward(const torch::Tensor& x);

  Conv2dBN conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
};
TORCH_MODULE(MBConv);

// 1x1 -> GELU -> depthwise 3x3 (stride 2, or 1 when MobileSAM keeps the resolution) -> GELU -> 1x1.
struct PatchMergingImpl : torch::nn::Module {
  PatchMergingImpl(int64_t dim, int64_t out_dim, int64_t stride);
  torch::Tensor forward(const torch::Tensor& x);

  Conv2dBN conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
};
TORCH_MODULE(PatchMerging);

// One stage: "blocks" (MBConv for stage 0, TinyViTBlock otherwise) then an optional
// "downsample". NCHW in and out.
struct TinyViTStageImpl : torch::nn::Module {
  TinyViTStageImpl(const TinyViTConfig& config, size_t stage);
  torch::Tensor forward(const torch::Tensor& x);

  std::vector<MBConv> conv_blocks;
  std::vector<TinyViTBlock> attention_blocks;
  PatchMerging downsample{nullptr};
};
TORCH_MODULE(TinyViTStage);

struct TinyViTImpl : torch::nn::Module {
  explicit TinyViTImpl(const TinyViTConfig& config = TinyViTConfig::mobile_sam());
  // (B,3,H,W) normalised image -> (B,out_chans,ceil(H/16),ceil(W/16)) (64x64 for 1024x1024).
  torch::Tensor forward(torch::Tensor x);
  // forward's two stages, so a module can be inserted at the encoder's low-level point (category
  // SAM's domain alignment): forward(x) is run_layers(embed_patches(x)), bit for bit.
  //   embed_patches: (B,3,H,W) -> (B,embed_dims[0],ceil(H/4),ceil(W/4)) (the convolutional stem)
  //   run_layers:    the stem's output -> every stage, then the neck -> (B,out_chans,h,w)
  torch::Tensor embed_patches(const torch::Tensor& x);
  torch::Tensor run_layers(torch::Tensor x);

  TinyViTConfig config;
  torch::nn::Sequential patch_embed_seq{nullptr};  // registered as patch_embed.seq
  std::vector<TinyViTStage> layers;                // registered as layers.0..3
  torch::nn::LayerNorm norm_head{nullptr};         // unused by forward, kept for strict loading
  torch::nn::Linear head{nullptr};                 // unused by forward, kept for strict loading
  torch::nn::Sequential neck{nullptr};
};
TORCH_MODULE(TinyViT);

}  // namespace nucleisam::sam
