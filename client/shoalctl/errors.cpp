// Exit codes and advice for failed shoalctl commands; see errors.h.
#include "errors.h"

#include <string>

#include "duration.h"

namespace shoal::ctl {
namespace {

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (auto& s : items) out += (out.empty() ? "" : ",") + s;
  return out;
}

std::string adviceFor(ErrorCode code, const CommandLine& line) {
  switch (code) {
    case ErrorCode::UNAVAILABLE:
      return "check that a Shoal member is running at " + joined(line.servers) +
             ", or point --servers (or SHOAL_SERVERS) at one";
    case ErrorCode::TIMEOUT:
      return "no answer within --timeout " + formatDuration(line.timeout) +
             "; the member may be overloaded or stopped: retry, or raise --timeout";
    case ErrorCode::OVERLOADED:
      return "the member is shedding load: retry in a moment";
    case ErrorCode::WRONG_OWNER:
      return "partitions moved during the call: retry";
    case ErrorCode::STORE_FAILED:
      return "the member's backing store refused the write (disk full or I/O error): free space or fix the "
             "store, then retry";
    case ErrorCode::TOO_LARGE:
      return "make the key or value smaller than the limit named above";
    case ErrorCode::INVALID_ARGUMENT:
      return "the request was rejected as sent: check the map name, key and value";
    case ErrorCode::CONFLICT:
      return "the entry changed concurrently: read it again and retry";
    case ErrorCode::UNAUTHORIZED:
      return "the cluster refused access: check your credentials";
    case ErrorCode::INTERNAL:
      return "this is a bug in Shoal: report it with the member's log";
  }
  return "retry, and report it if it persists";
}

}  // namespace

int exitCodeFor(ErrorCode code) {
  switch (code) {
    case ErrorCode::UNAVAILABLE:
    case ErrorCode::TIMEOUT:
    case ErrorCode::OVERLOADED:
    case ErrorCode::WRONG_OWNER:
      return EXIT_UNAVAILABLE;
    default:
      return EXIT_SERVER_ERROR;
  }
}

int reportError(const Error& error, const CommandLine& line, std::ostream& err) {
  err << "shoalctl: " << line.command << " failed: " << error.what() << "\n"
      << "shoalctl: " << adviceFor(error.code(), line) << std::endl;
  return exitCodeFor(error.code());
}

}  // namespace shoal::ctl
