#include "test_util.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>

namespace spoor::testing {

namespace fs = std::filesystem;

std::string FixturePath(const std::string& name) {
  return (fs::path(SPOOR_SOURCE_DIR) / "tests" / "data" / name).string();
}

std::string ReferenceImagesPath() {
  return (fs::path(SPOOR_SOURCE_DIR) / "reference_images").string();
}

SmallTmpfs::SmallTmpfs(const std::string& dir, int megabytes) : dir_(dir) {
  fs::create_directories(dir);
  mounted_ =
      std::system(("mount -t tmpfs -o size=" + std::to_string(megabytes) +
                   "m tmpfs " + dir + " 2>/dev/null")
                      .c_str()) == 0;
}

SmallTmpfs::~SmallTmpfs() {
  if (mounted_) (void)std::system(("umount -l " + dir_).c_str());
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

std::unique_ptr<ReferenceIndex> IndexBundledReferences(
    const std::string& dir,
    const std::function<Labels(const std::string&)>& labels_for,
    const IndexOptions& options) {
  auto index = ReferenceIndex::Create(dir, options);
  if (!index.ok()) {
    ADD_FAILURE() << index.status();
    return nullptr;
  }
  std::vector<fs::path> files;
  for (const auto& e :
       fs::directory_iterator(ReferenceImagesPath() + "/references"))
    if (e.path().extension() != ".csv") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    std::string name = f.filename().string();
    auto added = (*index)->Add(ReadFile(f.string()), name,
                               labels_for ? labels_for(name) : Labels{});
    EXPECT_TRUE(added.ok()) << added.status();
  }
  EXPECT_TRUE((*index)->Save().ok());
  return std::move(*index);
}

}  // namespace spoor::testing
