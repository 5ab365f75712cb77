// How shoalctl writes results: raw text for people, JSON for scripts. Keys and values are bytes;
// in JSON a byte string that is valid UTF-8 is a JSON string, anything else is the object
// {"base64": "<standard base64>"} in its place, so no byte is lost or mangled.
#pragma once

#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace shoal::ctl {

bool isValidUtf8(std::string_view bytes);
std::string base64Encode(std::string_view bytes);

// A key or value for a JSON document: a string, or {"base64": ...} when not valid UTF-8.
nlohmann::json textJson(std::string_view bytes);

class Output {
 public:
  Output(bool json, std::ostream& out, std::ostream& err) : json_(json), out_(out), err_(err) {}

  bool json() const { return json_; }
  // One JSON document on one line (watch writes one per event).
  void document(const nlohmann::json& doc);
  // One line of human output, written as given (bytes included).
  void line(std::string_view text);
  // A remark for a person, on stderr and in human mode only (never part of the result).
  void note(std::string_view text);
  // A line on stderr in both modes, as given (a stream's side news, e.g. subscribe's gaps).
  void errLine(std::string_view text);
  // Rows under a header, columns padded to their widest cell.
  void table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows);

 private:
  bool json_;
  std::ostream& out_;
  std::ostream& err_;
};

}  // namespace shoal::ctl
