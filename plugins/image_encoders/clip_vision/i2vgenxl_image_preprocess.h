// What diffusers' I2VGenXLPipeline does to the image before its CLIP image encoder, from one model-space frame:
// the frame as the 8-bit RGB picture the pipeline is given (transparent pixels over `background`), then its
// _center_crop_wide to width x width (a Pillow BOX resize that makes the short side the width, a centred
// crop), its _resize_bilinear to size x size (Pillow BILINEAR), /255, and CLIPImageProcessor's normalisation
// with OpenAI CLIP's mean and std. Every resize is Pillow's, bit for bit (asg/media/pil_resize.h).
#pragma once

#include <torch/torch.h>

#include <array>

namespace asg::image_encoders {

// frame: model space [4, H, W] (premultiplied RGBA in [-1, 1]); background: RGB in [0, 1]. Returns float32
// [3, size, size] on the CPU.
torch::Tensor i2vgenxl_image_pixels(const torch::Tensor& frame, const std::array<double, 3>& background, int64_t size);

// The 8-bit RGB picture of a model-space frame [4, H, W]: uint8 [H, W, 3].
torch::Tensor frame_to_rgb8(const torch::Tensor& frame, const std::array<double, 3>& background);

}  // namespace asg::image_encoders
