// `nucleisam sam`: prompt SAM with points, a box and/or a previous low-res mask and write the
// masks (PNG, 0/255), their low-res logits (.npy, reusable as --mask-input) and a scores JSON
// that echoes the prompts. The image embedding comes from --image or from `sam-embed` output.
#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/command.h"
#include "nucleisam/atomic_file.h"
#include "nucleisam/cpu_features.h"
#include "nucleisam/errors.h"
#include "nucleisam/image_io.h"
#include "nucleisam/log.h"
#include "nucleisam/npy.h"
#include "nucleisam/sam/embedding_cache.h"
#include "nucleisam/sam/predictor.h"

namespace nucleisam::cli {
namespace {

std::vector<double> parse_numbers(const std::string& text, const std::string& option) {
  std::vector<double> v;
  std::stringstream s(text);
  std::string item;
  while (std::getline(s, item, ',')) {
    size_t used = 0;
    double d = 0;
    try {
      d = std::stod(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != item.size() || !std::isfinite(d))
      throw UsageError(option + " '" + text + "': '" + item + "' is not a number");
    v.push_back(d);
  }
  if (!text.empty() && text.back() == ',') throw UsageError(option + " '" + text + "': trailing comma");
  return v;
}

sam::SamPoint parse_point(const std::string& text) {
  auto v = parse_numbers(text, "--point");
  if (v.size() != 2 && v.size() != 3) throw UsageError("--point '" + text + "': expected x,y or x,y,label");
  sam::SamPoint p{v[0], v[1], 1};
  if (v.size() == 3) {
    if (v[2] != 0 && v[2] != 1)
      throw UsageError("--point '" + text + "': label must be 1 (foreground) or 0 (background)");
    p.label = static_cast<int>(v[2]);
  }
  return p;
}


torch::Tensor read_tensor(const std::string& path) {
  NpyArray a = read_npy(path);
  if (a.kind != 'f' && a.kind != 'i' && a.kind != 'u')
    throw IoError(path + ": expected a numeric array, found " + a.dtype());
  auto v = a.to_vector<float>();
  return torch::from_blob(v.data(), a.shape, torch::kFloat).clone();
}

struct SamOptions {
  std::string checkpoint, image, embedding, mask_input, out;
  std::vector<std::string> points;
  std::string box;
  bool multimask = false;
  int input_size = 0;  // 0: 1024, or the embedding's
  std::string precision = "fp32";
};

CommandRegistration reg("sam", "Segment with SAM from point / box / mask prompts", [](CLI::App& app) {
  auto o = std::make_shared<SamOptions>();
  app.add_option("--checkpoint", o->checkpoint,
                 "SAM checkpoint (.pth or .safetensors; ViT-B/L/H or MobileSAM)")
      ->required();
  app.add_option("--image", o->image, "RGB image (needed unless --embedding is given)");
  app.add_option("--embedding", o->embedding,
                 "Image embedding written by `nucleisam sam-embed` (E.npy + E.json)");
  app.add_option("--point", o->points, "Point prompt x,y[,label] in image pixels; label 1 fg (default), 0 bg")
      ->take_all()
      ->allow_extra_args(false);
  app.add_option("--box", o->box, "Box prompt x0,y0,x1,y1 in image pixels");
  app.add_option("--mask-input", o->mask_input,
                 "Low-res mask logits (.npy, 256x256 at input 1024) from a previous run");
  app.add_flag("--multimask", o->multimask, "Return 3 candidate masks instead of 1");
  app.add_option("--input-size", o->input_size, "Encoder input side, a multiple of 16 (default 1024)");
  app.add_option("--precision", o->precision,
                 "Image encoder arithmetic: fp32 (default; the official code's), bf16, or auto (bf16 on a "
                 "GPU or where it is faster on this CPU: AMX, or AMD's AVX-512-BF16)");
  app.add_option("--out", o->out, "Output folder")->required();
  return [o]() {
    const std::string precision = resolve_precision(o->precision, global_options().device != "cpu");
    // Usage checks first: nothing is loaded for a malformed command line.
    std::vector<sam::SamPoint> points;
    for (const auto& p : o->points) points.push_back(parse_point(p));
    std::optional<std::array<double, 4>> box;
    if (!o->box.empty()) {
      auto v = parse_numbers(o->box, "--box");
      if (v.size() != 4) throw UsageError("--box '" + o->box + "': expected x0,y0,x1,y1");
      if (v[2] < v[0] || v[3] < v[1]) throw UsageError("--box '" + o->box + "': x1 < x0 or y1 < y0");
      box = std::array<double, 4>{v[0], v[1], v[2], v[3]};
    }
    if (points.empty() && !box && o->mask_input.empty())
      throw UsageError("give at least one prompt: --point, --box or --mask-input");
    if (o->image.empty() == o->embedding.empty())
      throw UsageError("give exactly one of --image and --embedding");
    if (o->input_size != 0 && (o->input_size < 16 || o->input_size % 16 != 0))
      throw UsageError("--input-size must be a positive multiple of 16, got " +
                       std::to_string(o->input_size));

    int height = 0, width = 0, input_size = o->input_size ? o->input_size : 1024;
    Image image;
    sam::EmbeddingInfo side;
    if (!o->embedding.empty()) {
      side = sam::read_embedding_info(o->embedding);
      height = side.original_height;
      width = side.original_width;
      if (o->input_size != 0 && o->input_size != side.input_size)
        throw UsageError("--input-size " + std::to_string(o->input_size) + " differs from the embedding's " +
                         std::to_string(side.input_size) + " (" + sam::embedding_sidecar_path(o->embedding) + ")");
      input_size = side.input_size;
    } else {
      image = io::read_image(o->image);
      height = image.height;
      width = image.width;
    }
    const std::string source = o->image.empty() ? o->embedding : o->image;
    for (const auto& p : points)
      if (p.x < 0 || p.y < 0 || p.x >= width || p.y >= height) {
        std::ostringstream s;
        s << source << ": point (" << p.x << ", " << p.y << ") lies outside the " << width << "x" << height
          << " image";
        throw DataError(s.str());
      }
    if (box && ((*box)[0] < 0 || (*box)[1] < 0 || (*box)[2] > width || (*box)[3] > height)) {
      std::ostringstream s;
      s << source << ": box " << o->box << " lies outside the " << width << "x" << height << " image";
      throw DataError(s.str());
    }
    torch::Tensor mask_input;
    if (!o->mask_input.empty()) {
      mask_input = read_tensor(o->mask_input);
      const int64_t m = 4 * (input_size / 16);
      if (mask_input.numel() != m * m)
        throw DataError(o->mask_input + ": mask input must be " + std::to_string(m) + "x" +
                        std::to_string(m) + " low-res logits for input size " + std::to_string(input_size));
      mask_input = mask_input.reshape({1, 1, m, m});
    }

    auto model = sam::load_sam(o->checkpoint);
    model->to(torch::Device(global_options().device));
    sam::SamPredictor predictor(model, input_size, precision);
    if (!o->embedding.empty()) {
      const std::string& type = side.model_type;
      if (type != model->model_type())
        throw DataError(o->embedding + ": embedding was made by a " + type + " model, the checkpoint is " +
                        model->model_type());
      predictor.set_embedding(sam::read_embedding(o->embedding), height, width);
    } else {
      log::info("encoding ", o->image, " (", width, "x", height, ") with ", model->model_type(), " at input ",
                input_size, ", ", precision);
      predictor.set_image(image);
    }

    sam::SamPrompt prompt;
    prompt.points = points;
    prompt.box = box;
    prompt.mask_input = mask_input;
    prompt.multimask = o->multimask;
    auto result = predictor.predict(prompt);

    nlohmann::json j;
    j["model_type"] = model->model_type();
    j["checkpoint"] = o->checkpoint;
    j["source"] = source;
    j["width"] = width;
    j["height"] = height;
    j["input_size"] = input_size;
    j["precision"] = o->embedding.empty() ? precision : side.precision;
    nlohmann::json jp = nlohmann::json::array();
    for (const auto& p : points) jp.push_back({{"x", p.x}, {"y", p.y}, {"label", p.label}});
    j["prompts"] = {
        {"points", jp},
        {"box", box ? nlohmann::json(*box) : nlohmann::json(nullptr)},
        {"mask_input", o->mask_input.empty() ? nlohmann::json(nullptr) : nlohmann::json(o->mask_input)},
        {"multimask", o->multimask}};
    auto masks = result.masks.to(torch::kUInt8).contiguous();
    auto logits = result.low_res_logits.contiguous();
    const int64_t count = masks.size(1);
    ensure_parent_dir(o->out + "/scores.json");
    j["masks"] = nlohmann::json::array();
    for (int64_t i = 0; i < count; ++i) {
      Image m(height, width, 1);
      const uint8_t* src = masks[0][i].contiguous().data_ptr<uint8_t>();
      for (size_t k = 0; k < m.data.size(); ++k) m.data[k] = src[k] ? 255 : 0;
      const std::string png = "mask_" + std::to_string(i) + ".png";
      const std::string npy = "mask_" + std::to_string(i) + "_logits.npy";
      io::write_image(o->out + "/" + png, m);
      auto l = logits[0][i].unsqueeze(0).contiguous();
      write_npy<float>(o->out + "/" + npy, l.data_ptr<float>(), {1, l.size(1), l.size(2)});
      int64_t area = 0;
      for (auto v : m.data) area += v != 0;
      j["masks"].push_back(
          {{"file", png}, {"logits", npy}, {"iou", result.iou[0][i].item<double>()}, {"area", area}});
    }
    write_file_atomic(o->out + "/scores.json", j.dump(2) + "\n");
    log::info("wrote ", count, " mask(s) and scores.json to ", o->out);
    return 0;
  };
});

}  // namespace
}  // namespace nucleisam::cli
