// Data directory validation and marker files. Every refusal leaves the directory untouched.
#include "data_dir.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

namespace shoal::persistence {

namespace fs = std::filesystem;

namespace {

StoreError ioError(int err, const std::string& what) {
  auto code = err == ENOSPC || err == EDQUOT ? StoreErrorCode::NO_SPACE : StoreErrorCode::IO_ERROR;
  return {code, what + ": " + std::strerror(err)};
}

StoreResult<void> fsyncPath(const fs::path& path, int flags) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return ioError(errno, "open " + path.string());
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return ioError(err, "fsync " + path.string());
  return {};
}

StoreResult<void> writeMarker(const fs::path& dir, const DataDirMarker& marker) {
  fs::path tmp = dir / (std::string(MARKER_FILE) + ".tmp");
  std::string text = formatMarker(marker);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ioError(errno, "create " + tmp.string());
  ssize_t written = ::write(fd, text.data(), text.size());
  int err = errno;
  if (written == static_cast<ssize_t>(text.size()) && ::fsync(fd) != 0) {
    err = errno;
    written = -1;
  }
  ::close(fd);
  if (written != static_cast<ssize_t>(text.size())) {
    ::unlink(tmp.c_str());  // ours: created just now
    return ioError(written < 0 ? err : ENOSPC, "write " + tmp.string());
  }
  if (::rename(tmp.c_str(), (dir / MARKER_FILE).c_str()) != 0) {
    return ioError(errno, "rename " + tmp.string());
  }
  return fsyncPath(dir, O_RDONLY | O_DIRECTORY);
}

StoreError incompatible(const std::string& path, const std::string& why) {
  return {StoreErrorCode::INCOMPATIBLE,
          "refusing data directory " + path + ": " + why +
              ". Nothing was changed; point the store at its own directory or an empty one"};
}

// Entries of `dir` other than a leftover temporary marker (from a crash during initialisation).
std::vector<std::string> foreignEntries(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) {
    std::string name = entry.path().filename().string();
    if (name != std::string(MARKER_FILE) + ".tmp") names.push_back(name);
  }
  return names;
}

}  // namespace

std::string formatMarker(const DataDirMarker& marker) {
  std::ostringstream out;
  out << "# Shoal member data directory. Do not edit. To reset this member's data, delete the\n"
      << "# whole directory while the member is stopped.\n"
      << "format-version=" << marker.formatVersion << "\n"
      << "cluster-name=" << marker.clusterName << "\n"
      << "partition-count=" << marker.partitionCount << "\n"
      << "created-time-ms=" << marker.createdTimeMs << "\n";
  if (marker.memberId != 0) out << "member-id=" << std::hex << marker.memberId << std::dec << "\n";
  return out.str();
}

StoreResult<DataDirMarker> parseMarker(const std::string& text, const std::string& path) {
  std::map<std::string, std::string> fields;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    auto eq = line.find('=');
    if (eq == std::string::npos) {
      return StoreError{StoreErrorCode::CORRUPTION, "marker " + path + ": malformed line '" + line + "'"};
    }
    fields[line.substr(0, eq)] = line.substr(eq + 1);
  }
  DataDirMarker marker;
  try {
    marker.formatVersion = static_cast<uint32_t>(std::stoul(fields.at("format-version")));
    marker.clusterName = fields.at("cluster-name");
    marker.partitionCount = static_cast<uint32_t>(std::stoul(fields.at("partition-count")));
    marker.createdTimeMs = std::stoll(fields.at("created-time-ms"));
    if (auto id = fields.find("member-id"); id != fields.end()) {
      marker.memberId = std::stoull(id->second, nullptr, 16);
      if (marker.memberId == 0) throw std::invalid_argument("member-id 0");
    }
  } catch (const std::exception&) {
    return StoreError{StoreErrorCode::CORRUPTION,
                      "marker " + path +
                          " lacks a field or has a malformed one; restore it or delete "
                          "the whole directory (losing its data)"};
  }
  return marker;
}

namespace {
uint64_t newMemberId() {
  std::random_device device;
  uint64_t id = 0;
  while (id == 0) id = (uint64_t(device()) << 32) | device();
  return id;
}

StoreResult<PreparedDataDir> prepareUnchecked(const RocksDbStoreOptions& options, int64_t nowMs) {
  const fs::path dir(options.path);
  std::error_code ec;
  auto status = fs::status(dir, ec);
  if (!fs::exists(status)) {
    if (!options.createIfMissing) {
      return StoreError{StoreErrorCode::INVALID_ARGUMENT,
                        "data directory " + options.path + " does not exist and createIfMissing is false"};
    }
    if (!fs::create_directories(dir, ec) && ec) return ioError(ec.value(), "create " + options.path);
  } else if (!fs::is_directory(status)) {
    return incompatible(options.path, "it is not a directory");
  }

  const fs::path markerPath = dir / MARKER_FILE;
  if (!fs::exists(markerPath)) {
    std::vector<std::string> found = foreignEntries(dir);
    if (!found.empty()) {
      return incompatible(options.path, "it holds " + std::to_string(found.size()) + " entries (e.g. '" +
                                            found.front() + "') but no " + MARKER_FILE + " marker");
    }
    if (!options.createIfMissing) {
      return StoreError{StoreErrorCode::INVALID_ARGUMENT,
                        "data directory " + options.path + " is empty and createIfMissing is false"};
    }
    DataDirMarker marker{DATA_DIR_FORMAT_VERSION, options.clusterName, options.partitionCount, nowMs,
                         newMemberId()};
    auto written = writeMarker(dir, marker);
    if (!written) return written.error();
    return PreparedDataDir{std::move(marker), true};
  }

  std::ifstream in(markerPath);
  std::stringstream text;
  text << in.rdbuf();
  if (!in) return ioError(errno, "read " + markerPath.string());
  auto marker = parseMarker(text.str(), markerPath.string());
  if (!marker) return marker.error();
  if (marker->formatVersion != DATA_DIR_FORMAT_VERSION) {
    return incompatible(options.path, "its format version is " + std::to_string(marker->formatVersion) +
                                          ", this build reads " + std::to_string(DATA_DIR_FORMAT_VERSION));
  }
  if (marker->clusterName != options.clusterName) {
    return incompatible(options.path, "it belongs to cluster '" + marker->clusterName + "', not '" +
                                          options.clusterName + "'");
  }
  if (marker->partitionCount != options.partitionCount) {
    return incompatible(options.path, "it was written with " + std::to_string(marker->partitionCount) +
                                          " partitions, the cluster has " +
                                          std::to_string(options.partitionCount));
  }
  if (!fs::exists(dir / DB_SUBDIR / "CURRENT")) {
    return StoreError{StoreErrorCode::CORRUPTION,
                      "data directory " + options.path + " has a marker but no database in " +
                          (dir / DB_SUBDIR).string() +
                          " (lost, or the first start was interrupted); delete the directory to "
                          "start this member empty"};
  }
  return PreparedDataDir{std::move(*marker), false};
}
}  // namespace

StoreResult<PreparedDataDir> prepareDataDir(const RocksDbStoreOptions& options, int64_t nowMs) {
  try {
    return prepareUnchecked(options, nowMs);
  } catch (const fs::filesystem_error& e) {  // e.g. a directory we may not read
    return ioError(e.code().value(), std::string("inspect data directory: ") + e.what());
  }
}

}  // namespace shoal::persistence
