#include "util/atomic_file.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <stdexcept>

#include "absl/strings/str_cat.h"
#include "util/hex.h"

namespace spoor {

absl::Status WriteFileAtomically(const std::string& path,
                                 const std::function<void(std::FILE*)>& write) {
  std::string tmp = path + ".tmp";
  std::FILE* file = std::fopen(tmp.c_str(), "wb");
  if (file == nullptr) {
    return absl::InternalError(
        absl::StrCat(tmp, ": cannot create: ", std::strerror(errno)));
  }
  try {
    write(file);
  } catch (const std::exception& e) {
    std::fclose(file);
    std::remove(tmp.c_str());
    return absl::InternalError(
        absl::StrCat(path, ": write failed: ", e.what()));
  }
  bool ok = std::fflush(file) == 0 && ::fsync(fileno(file)) == 0;
  ok = (std::fclose(file) == 0) && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::string reason = std::strerror(errno);
    std::remove(tmp.c_str());
    return absl::InternalError(absl::StrCat(path, ": write failed: ", reason));
  }
  // Make the rename itself durable.
  std::string dir = std::filesystem::path(path).parent_path().string();
  int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
  return absl::OkStatus();
}

absl::Status WriteBytesAtomically(const std::string& path,
                                  const std::vector<std::uint8_t>& bytes) {
  return WriteFileAtomically(path, [&](std::FILE* f) {
    if (std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size())
      throw std::runtime_error(std::strerror(errno));
  });
}

absl::StatusOr<std::string> Sha256HexOfFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::NotFoundError(
        absl::StrCat(path, ": cannot open: ", std::strerror(errno)));
  }
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(),
                                                              EVP_MD_CTX_free);
  EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
  std::vector<unsigned char> block(1 << 20);
  for (;;) {
    ssize_t n = ::read(fd, block.data(), block.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int error = errno;
      ::close(fd);
      return absl::DataLossError(
          absl::StrCat(path, ": cannot read: ", std::strerror(error)));
    }
    if (n == 0) break;
    EVP_DigestUpdate(ctx.get(), block.data(), static_cast<std::size_t>(n));
  }
  ::close(fd);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_DigestFinal_ex(ctx.get(), digest, &length);
  return HexEncode(digest, length);
}

}  // namespace spoor
