// Shared helpers for Spoor's tests: status assertions, fixture paths and
// temporary folders. Photo sources and disguises come from
// bench/corpus/disguises.h (shared with the benchmark's generator) and are
// re-exported here.
#ifndef SPOOR_TESTS_TEST_UTIL_H_
#define SPOOR_TESTS_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "corpus/disguises.h"
#include "spoor/reference_index.h"

#define ASSERT_OK(expr)                                     \
  do {                                                      \
    const auto& spoor_s_ = (expr);                          \
    ASSERT_TRUE(::spoor::testing::StatusOf(spoor_s_).ok())  \
        << ::spoor::testing::StatusOf(spoor_s_).ToString(); \
  } while (0)
#define EXPECT_OK(expr)                              \
  EXPECT_TRUE(::spoor::testing::StatusOf(expr).ok()) \
      << ::spoor::testing::StatusOf(expr).ToString()

namespace spoor::testing {

inline absl::Status StatusOf(const absl::Status& s) { return s; }
template <typename T>
absl::Status StatusOf(const absl::StatusOr<T>& s) {
  return s.status();
}

// Folder of the repository's small fixture files (tests/data).
std::string FixturePath(const std::string& name);
// The repository's reference_images/ folder.
std::string ReferenceImagesPath();

// A fresh, empty temporary folder, removed at destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string Join(const std::string& name) const {
    return (std::filesystem::path(path_) / name).string();
  }

 private:
  std::string path_;
};

std::vector<std::uint8_t> ReadFile(const std::string& path);

// A tmpfs of `megabytes` mounted at `dir` (created) for full-disk tests,
// unmounted at destruction. mounted() is false where mounting is not allowed
// (not root): the test then skips.
class SmallTmpfs {
 public:
  SmallTmpfs(const std::string& dir, int megabytes);
  ~SmallTmpfs();
  SmallTmpfs(const SmallTmpfs&) = delete;
  SmallTmpfs& operator=(const SmallTmpfs&) = delete;
  bool mounted() const { return mounted_; }

 private:
  std::string dir_;
  bool mounted_ = false;
};

// Creates an index at `dir` holding every photo of
// reference_images/references (sources are file names; labels from
// `labels_for(file name)`, empty by default) with `options`, saved. Fails the
// test on error.
std::unique_ptr<ReferenceIndex> IndexBundledReferences(
    const std::string& dir,
    const std::function<Labels(const std::string&)>& labels_for = nullptr,
    const IndexOptions& options = {});

using namespace ::spoor::corpus;  // LoadBgr, Composite, Crop, ...

}  // namespace spoor::testing

#endif  // SPOOR_TESTS_TEST_UTIL_H_
