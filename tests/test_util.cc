#include "test_util.h"

#include <fstream>

namespace spoor::testing {

namespace fs = std::filesystem;

std::string FixturePath(const std::string& name) {
  return (fs::path(SPOOR_SOURCE_DIR) / "tests" / "data" / name).string();
}

std::string ReferenceImagesPath() {
  return (fs::path(SPOOR_SOURCE_DIR) / "reference_images").string();
}

TempDir::TempDir() {
  std::string pattern =
      (fs::temp_directory_path() / "spoor-test-XXXXXX").string();
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr) std::abort();
  path_ = buf.data();
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::vector<std::uint8_t> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<std::uint8_t>(std::istreambuf_iterator<char>(in), {});
}

}  // namespace spoor::testing
