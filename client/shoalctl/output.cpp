// shoalctl's output: UTF-8 checking, base64, JSON documents and aligned tables; see output.h.
#include "output.h"

#include <algorithm>
#include <cstdint>

namespace shoal::ctl {

bool isValidUtf8(std::string_view bytes) {
  size_t i = 0;
  while (i < bytes.size()) {
    auto b = static_cast<uint8_t>(bytes[i]);
    size_t extra;
    uint32_t cp;
    if (b < 0x80) {
      ++i;
      continue;
    } else if ((b & 0xE0) == 0xC0) {
      extra = 1, cp = b & 0x1F;
    } else if ((b & 0xF0) == 0xE0) {
      extra = 2, cp = b & 0x0F;
    } else if ((b & 0xF8) == 0xF0) {
      extra = 3, cp = b & 0x07;
    } else {
      return false;
    }
    if (i + extra >= bytes.size()) return false;  // truncated sequence
    for (size_t k = 1; k <= extra; ++k) {
      auto c = static_cast<uint8_t>(bytes[i + k]);
      if ((c & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (c & 0x3F);
    }
    // Overlong forms, UTF-16 surrogates and code points past U+10FFFF are not valid UTF-8.
    static constexpr uint32_t MIN_FOR_LENGTH[] = {0, 0x80, 0x800, 0x10000};
    if (cp < MIN_FOR_LENGTH[extra] || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return false;
    i += extra + 1;
  }
  return true;
}

std::string base64Encode(std::string_view bytes) {
  static constexpr char ALPHABET[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    uint32_t n =
        uint32_t(uint8_t(bytes[i])) << 16 | uint32_t(uint8_t(bytes[i + 1])) << 8 | uint8_t(bytes[i + 2]);
    out += ALPHABET[n >> 18 & 63];
    out += ALPHABET[n >> 12 & 63];
    out += ALPHABET[n >> 6 & 63];
    out += ALPHABET[n & 63];
  }
  if (size_t rest = bytes.size() - i; rest > 0) {
    uint32_t n = uint32_t(uint8_t(bytes[i])) << 16 | (rest == 2 ? uint32_t(uint8_t(bytes[i + 1])) << 8 : 0);
    out += ALPHABET[n >> 18 & 63];
    out += ALPHABET[n >> 12 & 63];
    out += rest == 2 ? ALPHABET[n >> 6 & 63] : '=';
    out += '=';
  }
  return out;
}

nlohmann::json textJson(std::string_view bytes) {
  if (isValidUtf8(bytes)) return std::string(bytes);
  return nlohmann::json{{"base64", base64Encode(bytes)}};
}

void Output::document(const nlohmann::json& doc) {
  // Flushed per document: `watch --json | jq` must see each event as it happens.
  // Server-side strings are expected to be UTF-8; `replace` keeps a stray byte from aborting.
  out_ << doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << std::endl;
}

void Output::line(std::string_view text) {
  out_.write(text.data(), static_cast<std::streamsize>(text.size()));
  out_ << std::endl;
}

void Output::note(std::string_view text) {
  if (json_) return;
  err_ << "shoalctl: " << text << std::endl;
}

void Output::errLine(std::string_view text) {
  err_.write(text.data(), static_cast<std::streamsize>(text.size()));
  err_ << std::endl;
}

void Output::table(const std::vector<std::string>& header,
                   const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths(header.size());
  for (size_t c = 0; c < header.size(); ++c) {
    widths[c] = header[c].size();
    for (auto& row : rows) widths[c] = std::max(widths[c], row[c].size());
  }
  auto print = [&](const std::vector<std::string>& cells) {
    std::string text;
    for (size_t c = 0; c < cells.size(); ++c) {
      text += cells[c];
      if (c + 1 < cells.size()) text += std::string(widths[c] - cells[c].size() + 2, ' ');
    }
    line(text);
  };
  print(header);
  for (auto& row : rows) print(row);
}

}  // namespace shoal::ctl
