// RESP request parsing (multibulk, inline, pipelining, limits), reply encoding and glob matching.
#include "resp/resp_protocol.h"

#include <catch2/catch.hpp>
#include <random>

#include "resp/resp_commands.h"

using namespace shoal::node::resp;

namespace {
std::vector<std::string> parseAll(std::string_view input, RequestParser& parser, size_t* rest = nullptr) {
  std::vector<std::string> out;
  std::vector<std::string_view> args;
  size_t offset = 0, consumed = 0;
  while (parser.next(input.substr(offset), &args, &consumed) == RequestParser::Status::COMMAND) {
    std::string joined;
    for (auto& a : args) joined += std::string(a) + "|";
    out.push_back(joined);
    offset += consumed;
  }
  if (rest) *rest = input.size() - offset;
  return out;
}
}  // namespace

TEST_CASE("resp: multibulk and inline commands parse, pipelined", "[resp][unit]") {
  RequestParser parser({});
  auto cmds =
      parseAll("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhe\r\nl\r\nPING\r\nset a \"b c\\x41\"\r\n", parser);
  REQUIRE(cmds.size() == 3);
  CHECK(cmds[0] == "SET|k|he\r\nl|");
  CHECK(cmds[1] == "PING|");
  CHECK(cmds[2] == "set|a|b cA|");
}

TEST_CASE("resp: partial input waits for more bytes at every split point", "[resp][unit]") {
  std::string full = "*2\r\n$3\r\nGET\r\n$10\r\n0123456789\r\n";
  for (size_t cut = 0; cut < full.size(); ++cut) {
    RequestParser parser({});
    std::vector<std::string_view> args;
    size_t consumed = 0;
    CHECK(parser.next(std::string_view(full).substr(0, cut), &args, &consumed) ==
          RequestParser::Status::NEED_MORE);
  }
  RequestParser parser({});
  CHECK(parseAll(full, parser).size() == 1);
}

TEST_CASE("resp: malformed requests get Redis's protocol errors", "[resp][unit]") {
  ParserLimits limits;
  limits.maxBulkBytes = 100;
  limits.maxArgs = 10;
  auto errorOf = [&](std::string_view input) {
    RequestParser parser(limits);
    std::vector<std::string_view> args;
    size_t consumed = 0;
    auto status = parser.next(input, &args, &consumed);
    return status == RequestParser::Status::PROTOCOL_ERROR ? parser.error() : std::string("none");
  };
  CHECK(errorOf("*x\r\n") == "Protocol error: invalid multibulk length");
  CHECK(errorOf("*11\r\n") == "Protocol error: invalid multibulk length");
  CHECK(errorOf("*1\r\n:3\r\n") == "Protocol error: expected '$', got ':'");
  CHECK(errorOf("*1\r\n$101\r\n") == "Protocol error: invalid bulk length");
  CHECK(errorOf("*1\r\n$-5\r\n") == "Protocol error: invalid bulk length");
  CHECK(errorOf("set a \"unbalanced\r\n") == "Protocol error: unbalanced quotes in request");
  CHECK(errorOf(std::string(70000, 'a')) == "Protocol error: too big inline request");
}

TEST_CASE("resp: random garbage never crashes the parser", "[resp][unit]") {
  auto seed = std::random_device{}();
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  for (int round = 0; round < 2000; ++round) {
    std::string junk(rng() % 64, '\0');
    const char alphabet[] = "*$\r\n0123456789-abc \"'\\x";
    for (auto& c : junk) c = alphabet[rng() % (sizeof alphabet - 1)];
    RequestParser parser({});
    size_t rest = 0;
    auto cmds = parseAll(junk, parser, &rest);
    CHECK(rest <= junk.size());
  }
}

TEST_CASE("resp: replies are encoded as RESP2", "[resp][unit]") {
  std::string out;
  ReplyWriter w(&out);
  w.ok();
  w.error("ERR nope");
  w.integer(-12);
  w.bulk("hi");
  w.null();
  w.arrayHeader(2);
  CHECK(out == "+OK\r\n-ERR nope\r\n:-12\r\n$2\r\nhi\r\n$-1\r\n*2\r\n");
}

TEST_CASE("resp: RESP3 types, and their RESP2 forms", "[resp][unit]") {
  std::string two, three;
  for (auto [out, protocol] : {std::pair{&two, 2}, std::pair{&three, 3}}) {
    ReplyWriter w(out, protocol);
    w.null();
    w.nullArray();
    w.mapHeader(2);
    w.pushHeader(3);
    w.verbatim("a\r\nb");
  }
  CHECK(two == "$-1\r\n*-1\r\n*4\r\n*3\r\n$4\r\na\r\nb\r\n");
  CHECK(three == "_\r\n_\r\n%2\r\n>3\r\n=8\r\ntxt:a\r\nb\r\n");
}

TEST_CASE("resp: glob patterns match like Redis", "[resp][unit]") {
  CHECK(globMatch("*", "anything"));
  CHECK(globMatch("user:*", "user:42"));
  CHECK_FALSE(globMatch("user:*", "cart:42"));
  CHECK(globMatch("h?llo", "hello"));
  CHECK(globMatch("h[ae]llo", "hallo"));
  CHECK_FALSE(globMatch("h[^e]llo", "hello"));
  CHECK(globMatch("h[a-c]llo", "hbllo"));
  CHECK(globMatch("a\\*b", "a*b"));
  CHECK_FALSE(globMatch("a\\*b", "axb"));
  CHECK(globMatch("SAVE", "save", true));
  CHECK(globMatch("a*b*c", "axxbyyc"));
  CHECK_FALSE(globMatch("a*b*c", "axxbyy"));
  CHECK(globMatch("*", ""));
  CHECK_FALSE(globMatch("?", ""));
  CHECK(globMatch("k[0-9]*", "k7abc"));
  // A hostile pattern: exponential for recursive matchers, immediate here.
  std::string text(200, 'a');
  CHECK_FALSE(globMatch("*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b", text));
}
