// Maps RocksDB statuses to the codes a caller acts on; adds what to do for the operator cases.
#include "rocksdb_status.h"

#include <string>

namespace shoal::persistence {

namespace {
bool contains(const std::string& text, std::string_view needle) {
  return text.find(needle) != std::string::npos;
}
}  // namespace

bool isNoSpace(const rocksdb::Status& status) {
  return status.IsNoSpace() || contains(status.ToString(), "No space left on device");
}

StoreError toStoreError(const rocksdb::Status& status, std::string_view context) {
  std::string text = status.ToString();
  std::string message = std::string(context) + ": " + text;
  if (isNoSpace(status)) {
    return {StoreErrorCode::NO_SPACE,
            message +
                " (the disk is full: free space; reads keep working and writes resume once "
                "space is available)"};
  }
  if (status.IsCorruption()) return {StoreErrorCode::CORRUPTION, message};
  if (status.IsIOError() && (contains(text, "lock hold") || contains(text, "/LOCK"))) {
    return {StoreErrorCode::LOCKED,
            message + " (another process or store object has this data directory open)"};
  }
  if (status.IsInvalidArgument() || status.IsNotSupported()) {
    return {StoreErrorCode::INVALID_ARGUMENT, message};
  }
  if (status.IsBusy() || status.IsTimedOut() || status.IsTryAgain() || status.IsIncomplete() ||
      status.IsShutdownInProgress()) {
    return {StoreErrorCode::UNAVAILABLE, message};
  }
  return {StoreErrorCode::IO_ERROR, message};
}

}  // namespace shoal::persistence
