// The bad-input matrix: hostile and odd files, built in memory from libvips
// and a few fixtures, each with what Spoor must answer. Shared by the
// decoder's test, the service's and the indexer's, so all three paths are
// held to the same answers.
#ifndef SPOOR_TESTS_BAD_INPUTS_H_
#define SPOOR_TESTS_BAD_INPUTS_H_

#include <cstdint>
#include <string>
#include <vector>
#include <vips/vips8>

#include "absl/status/status.h"

namespace spoor::testing {

struct BadInput {
  std::string name;  ///< test label, also the file name for the indexer
  std::vector<std::uint8_t> bytes;
  // kOk: decodes (the pixels are usable; the oddity is harmless). Otherwise
  // the code DecodeImage must return, with `reason` in the message.
  absl::StatusCode code = absl::StatusCode::kOk;
  std::string reason;
};

std::vector<BadInput> BadInputs();

// Saves `image` with libvips' saver for `suffix` (".gif", ".png[palette]"):
// the tests need encoders cv::imencode lacks (EXIF orientation, CMYK, GIF).
std::vector<std::uint8_t> VipsSave(const vips::VImage& image,
                                   const std::string& suffix);

}  // namespace spoor::testing

#endif  // SPOOR_TESTS_BAD_INPUTS_H_
