// LAST_VIEW in the data directory; see last_view.h.
#include "last_view.h"

#include <cstdio>
#include <fstream>
#include <string>

namespace shoal::node {
namespace {
constexpr const char* FILE_NAME = "LAST_VIEW";
}

uint32_t readLastViewMembers(const std::string& dataDir) {
  std::ifstream in(dataDir + "/" + FILE_NAME);
  std::string key;
  uint32_t members = 0;
  if (!(in >> key >> members) || key != "members") return 0;
  return members;
}

bool writeLastViewMembers(const std::string& dataDir, uint32_t members) {
  std::string path = dataDir + "/" + FILE_NAME;
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << "members " << members << "\n";
    if (!out.flush()) return false;
  }
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

}  // namespace shoal::node
