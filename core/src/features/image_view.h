// Zero-copy OpenCV views of spoor::Image, for code inside the core.
#ifndef SPOOR_FEATURES_IMAGE_VIEW_H_
#define SPOOR_FEATURES_IMAGE_VIEW_H_

#include <opencv2/core.hpp>

#include "spoor/image.h"

namespace spoor {

// A CV_8UC3 header over image.bgr; valid while `image` lives and is unchanged.
inline cv::Mat AsMat(const Image& image) {
  return cv::Mat(image.height, image.width, CV_8UC3,
                 const_cast<std::uint8_t*>(image.bgr.data()));
}

// Copies a CV_8UC3 matrix into a new Image of the same size.
inline Image FromMat(const cv::Mat& bgr, const Image& like) {
  Image out;
  out.width = bgr.cols;
  out.height = bgr.rows;
  out.original_width = like.original_width;
  out.original_height = like.original_height;
  out.format = like.format;
  cv::Mat packed = bgr.isContinuous() ? bgr : bgr.clone();
  out.bgr.assign(packed.data, packed.data + packed.total() * 3);
  return out;
}

}  // namespace spoor

#endif  // SPOOR_FEATURES_IMAGE_VIEW_H_
