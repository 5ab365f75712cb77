// RESP2 request parsing and reply writing; see resp_protocol.h.
#include "resp_protocol.h"

#include <charconv>
#include <cstring>

namespace shoal::node::resp {
namespace {

// Reads "<integer>\r\n" starting at `pos`; returns false if the line is not complete yet.
// `*ok` is false when the line is complete but not a valid integer.
bool readIntLine(std::string_view buf, size_t pos, int64_t* value, size_t* next, bool* ok) {
  auto end = buf.find("\r\n", pos);
  if (end == std::string_view::npos) return false;
  auto [ptr, ec] = std::from_chars(buf.data() + pos, buf.data() + end, *value);
  *ok = ec == std::errc() && ptr == buf.data() + end;
  *next = end + 2;
  return true;
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

RequestParser::Status RequestParser::fail(std::string message) {
  error_ = std::move(message);
  return Status::PROTOCOL_ERROR;
}

RequestParser::Status RequestParser::next(std::string_view buffer, std::vector<std::string_view>* args,
                                          size_t* consumed) {
  args->clear();
  if (buffer.empty()) return Status::NEED_MORE;
  if (buffer[0] == '*') return parseMultibulk(buffer, args, consumed);
  return parseInline(buffer, args, consumed);
}

RequestParser::Status RequestParser::parseMultibulk(std::string_view buf, std::vector<std::string_view>* args,
                                                    size_t* consumed) {
  int64_t count = 0;
  size_t pos = 0;
  bool ok = false;
  if (!readIntLine(buf, 1, &count, &pos, &ok)) {
    if (buf.size() > limits_.maxInlineBytes) return fail("Protocol error: too big mbulk count string");
    return Status::NEED_MORE;
  }
  if (!ok || count > int64_t(limits_.maxArgs)) return fail("Protocol error: invalid multibulk length");
  if (count <= 0) {  // "*0" and "*-1" are empty commands: skipped, as Redis does
    *consumed = pos;
    return Status::COMMAND;
  }
  args->reserve(count);
  for (int64_t i = 0; i < count; ++i) {
    if (pos >= buf.size()) return Status::NEED_MORE;
    if (buf[pos] != '$') {
      return fail(std::string("Protocol error: expected '$', got '") + buf[pos] + "'");
    }
    int64_t len = 0;
    size_t dataStart = 0;
    if (!readIntLine(buf, pos + 1, &len, &dataStart, &ok)) {
      if (buf.size() - pos > 32) return fail("Protocol error: too big bulk count string");
      return Status::NEED_MORE;
    }
    if (!ok || len < 0 || uint64_t(len) > limits_.maxBulkBytes)
      return fail("Protocol error: invalid bulk length");
    if (buf.size() < dataStart + len + 2) return Status::NEED_MORE;
    if (buf[dataStart + len] != '\r' || buf[dataStart + len + 1] != '\n') {
      return fail("Protocol error: bulk string not terminated by CRLF");
    }
    args->push_back(buf.substr(dataStart, len));
    pos = dataStart + len + 2;
  }
  *consumed = pos;
  return Status::COMMAND;
}

RequestParser::Status RequestParser::parseInline(std::string_view buf, std::vector<std::string_view>* args,
                                                 size_t* consumed) {
  auto end = buf.find('\n');
  if (end == std::string_view::npos) {
    if (buf.size() > limits_.maxInlineBytes) return fail("Protocol error: too big inline request");
    return Status::NEED_MORE;
  }
  auto line = buf.substr(0, end);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  inlineArgs_.clear();
  if (!splitInlineArgs(line, &inlineArgs_)) return fail("Protocol error: unbalanced quotes in request");
  for (auto& a : inlineArgs_) args->push_back(a);
  *consumed = end + 1;
  return Status::COMMAND;
}

bool splitInlineArgs(std::string_view line, std::vector<std::string>* out) {
  size_t i = 0;
  while (true) {
    while (i < line.size() && isspace(static_cast<unsigned char>(line[i]))) ++i;
    if (i >= line.size()) return true;
    std::string current;
    bool inDouble = false, inSingle = false, done = false;
    while (!done) {
      if (inDouble) {
        if (i >= line.size()) return false;
        if (line[i] == '\\' && i + 3 < line.size() && line[i + 1] == 'x' && hexValue(line[i + 2]) >= 0 &&
            hexValue(line[i + 3]) >= 0) {
          current.push_back(char(hexValue(line[i + 2]) * 16 + hexValue(line[i + 3])));
          i += 3;
        } else if (line[i] == '\\' && i + 1 < line.size()) {
          char c = line[++i];
          current.push_back(c == 'n'   ? '\n'
                            : c == 'r' ? '\r'
                            : c == 't' ? '\t'
                            : c == 'b' ? '\b'
                            : c == 'a' ? '\a'
                                       : c);
        } else if (line[i] == '"') {
          if (i + 1 < line.size() && !isspace(static_cast<unsigned char>(line[i + 1]))) return false;
          done = true;
        } else {
          current.push_back(line[i]);
        }
      } else if (inSingle) {
        if (i >= line.size()) return false;
        if (line[i] == '\\' && i + 1 < line.size() && line[i + 1] == '\'') {
          current.push_back('\'');
          ++i;
        } else if (line[i] == '\'') {
          if (i + 1 < line.size() && !isspace(static_cast<unsigned char>(line[i + 1]))) return false;
          done = true;
        } else {
          current.push_back(line[i]);
        }
      } else {
        if (i >= line.size() || isspace(static_cast<unsigned char>(line[i]))) {
          done = true;
        } else if (line[i] == '"') {
          inDouble = true;
        } else if (line[i] == '\'') {
          inSingle = true;
        } else {
          current.push_back(line[i]);
        }
      }
      if (i < line.size()) ++i;
    }
    out->push_back(std::move(current));
  }
}

void ReplyWriter::simple(std::string_view s) {
  out_->push_back('+');
  out_->append(s);
  out_->append("\r\n");
}

void ReplyWriter::error(std::string_view s) {
  out_->push_back('-');
  out_->append(s);
  out_->append("\r\n");
}

void ReplyWriter::integer(int64_t n) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, n);
  out_->push_back(':');
  out_->append(buf, end);
  out_->append("\r\n");
}

void ReplyWriter::bulk(std::string_view s) {
  header('$', s.size());
  out_->append(s);
  out_->append("\r\n");
}

void ReplyWriter::null() {
  out_->append(resp3_ ? "_\r\n" : "$-1\r\n");
}

void ReplyWriter::nullArray() {
  out_->append(resp3_ ? "_\r\n" : "*-1\r\n");
}

void ReplyWriter::header(char type, size_t n) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, n);
  out_->push_back(type);
  out_->append(buf, end);
  out_->append("\r\n");
}

void ReplyWriter::arrayHeader(size_t n) {
  header('*', n);
}

void ReplyWriter::mapHeader(size_t pairs) {
  resp3_ ? header('%', pairs) : header('*', 2 * pairs);
}

void ReplyWriter::pushHeader(size_t n) {
  header(resp3_ ? '>' : '*', n);
}

void ReplyWriter::verbatim(std::string_view text) {
  if (!resp3_) return bulk(text);
  header('=', text.size() + 4);
  out_->append("txt:");
  out_->append(text);
  out_->append("\r\n");
}

}  // namespace shoal::node::resp
