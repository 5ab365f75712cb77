// RESP2 on the wire: an incremental request parser (multibulk and inline commands, with Redis's
// limits and error texts) and a reply writer that appends to one output buffer per read.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace shoal::node::resp {

struct ParserLimits {
  uint64_t maxBulkBytes = 512ull * 1024 * 1024;  // largest argument
  uint32_t maxArgs = 1024 * 1024;                // arguments in one command
  uint32_t maxInlineBytes = 64 * 1024;           // longest inline command line
  uint64_t maxQueryBytes = 1ull << 30;           // unparsed bytes buffered per connection
};

// Parses commands out of a byte buffer. Call `next` repeatedly; NEED_MORE means the buffer ends
// mid-command (read more and call again with the same unconsumed bytes).
class RequestParser {
 public:
  enum class Status { COMMAND, NEED_MORE, PROTOCOL_ERROR };
  explicit RequestParser(ParserLimits limits) : limits_(limits) {}

  // On COMMAND, `args` holds the arguments (views into `buffer`) and `*consumed` the bytes used.
  // On PROTOCOL_ERROR, error() is Redis's text ("Protocol error: ...").
  Status next(std::string_view buffer, std::vector<std::string_view>* args, size_t* consumed);
  const std::string& error() const { return error_; }

 private:
  Status parseMultibulk(std::string_view buffer, std::vector<std::string_view>* args, size_t* consumed);
  Status parseInline(std::string_view buffer, std::vector<std::string_view>* args, size_t* consumed);
  Status fail(std::string message);

  ParserLimits limits_;
  std::string error_;
  std::vector<std::string> inlineArgs_;  // unescaped inline arguments (views point here)
};

// Splits an inline command line like Redis's sdssplitargs (quotes and escapes); false when the
// quotes are unbalanced.
bool splitInlineArgs(std::string_view line, std::vector<std::string>* out);

// Appends replies in RESP2 or, after HELLO 3, RESP3 (its null, map, verbatim and push types).
class ReplyWriter {
 public:
  explicit ReplyWriter(std::string* out, int protocol = 2) : out_(out), resp3_(protocol == 3) {}
  void simple(std::string_view s);       // +OK
  void error(std::string_view s);        // -ERR ... (s includes the prefix word)
  void integer(int64_t n);               // :42
  void bulk(std::string_view s);         // $3\r\nfoo
  void null();                           // $-1 (RESP3: _)
  void nullArray();                      // *-1 (RESP3: _)
  void arrayHeader(size_t n);            // *n, then n replies
  void mapHeader(size_t pairs);          // %pairs (RESP2: *2·pairs), then key, value, key, value...
  void pushHeader(size_t n);             // >n (RESP2: *n): pub/sub messages and confirmations
  void verbatim(std::string_view text);  // =len\r\ntxt:text (RESP2: a bulk string)
  void ok() { simple("OK"); }
  void setProtocol(int protocol) { resp3_ = protocol == 3; }     // HELLO answers in the new one
  void raw(std::string_view encoded) { out_->append(encoded); }  // replies already in RESP

 private:
  void header(char type, size_t n);
  std::string* out_;
  bool resp3_;
};

}  // namespace shoal::node::resp
