// shoalctl's topic commands: publish, topics, subscribe. subscribe works like watch: signals are
// blocked in every thread and taken with sigwait() in the main thread; the client's event thread
// prints and, after --count messages or a cut-off, wakes the main thread with SIGUSR1.
#include "topic_commands.h"

#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <mutex>

#include "duration.h"

namespace shoal::ctl {
namespace {

using nlohmann::json;

json headersJson(const Headers& headers) {
  json list = json::array();
  for (auto& [name, value] : headers) list.push_back({{"name", textJson(name)}, {"value", textJson(value)}});
  return list;
}

int publish(const CommandLine& line, Client& client, Output& out) {
  auto seq = client.topic(line.topic).publish(OutgoingMessage{line.value, line.key, line.headers});
  if (out.json()) {
    out.document({{"topic", textJson(line.topic)}, {"seq", seq}});
  } else {
    out.line(std::to_string(seq));
  }
  return EXIT_OK;
}

std::string orDash(uint64_t n) {
  return n == 0 ? "-" : std::to_string(n);
}

int topics(Client& client, Output& out) {
  auto all = client.topics();
  std::sort(all.begin(), all.end(), [](const TopicInfo& a, const TopicInfo& b) { return a.name < b.name; });
  if (out.json()) {
    json list = json::array();
    for (auto& t : all) {
      list.push_back({{"name", textJson(t.name)},
                      {"firstSeq", t.firstSeq},
                      {"lastSeq", t.lastSeq},
                      {"retained", t.retained},
                      {"bytes", t.bytes},
                      {"subscribers", t.subscribers},
                      {"capacity", t.capacity},
                      {"retentionMs", t.retentionMs},
                      {"durable", t.durable}});
    }
    out.document({{"topics", list}});
  } else if (all.empty()) {
    out.line("(no topics)");
  } else {
    std::vector<std::vector<std::string>> rows;
    for (auto& t : all) {
      rows.push_back({t.name, orDash(t.firstSeq), orDash(t.lastSeq), std::to_string(t.retained),
                      std::to_string(t.subscribers), std::to_string(t.capacity),
                      t.retentionMs == 0 ? "-" : formatDuration(std::chrono::milliseconds(t.retentionMs)),
                      t.durable ? "yes" : "no"});
    }
    out.table({"NAME", "FIRST", "LAST", "RETAINED", "SUBSCRIBERS", "CAPACITY", "RETENTION", "DURABLE"}, rows);
  }
  return EXIT_OK;
}

SubscribeFrom fromOf(const std::string& text) {
  if (text == "earliest") return SubscribeFrom::earliest();
  if (text == "latest") return SubscribeFrom::latest();
  return SubscribeFrom::at(std::stoull(text));  // checked when parsed
}

int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Shared between the client's event thread (which prints) and the main thread (which stops).
struct SubscribeState {
  std::mutex mutex;
  uint64_t seen = 0;
  bool stopped = false;  // no more printing once set
  int exitCode = EXIT_OK;
};

void printMessage(const TopicMessage& m, Output& out) {
  if (!out.json()) {
    out.line(m.value);
    return;
  }
  out.document({{"topic", textJson(m.topic)},
                {"seq", m.seq},
                {"key", textJson(m.key)},
                {"value", textJson(m.value)},
                {"headers", headersJson(m.headers)},
                {"publishTimeMs", m.publishTimeMs},
                {"receivedTimeMs", nowMs()}});
}

}  // namespace

std::optional<int> runTopicCommand(const CommandLine& line, Client& client, Output& out) {
  if (line.command == "publish") return publish(line, client, out);
  if (line.command == "topics") return topics(client, out);
  return std::nullopt;
}

int runSubscribe(const CommandLine& line, Client& client, Output& out, const sigset_t& stopSignals) {
  // Shared with the callbacks: they may still run until main closes the client.
  auto state = std::make_shared<SubscribeState>();
  pthread_t mainThread = pthread_self();
  auto wake = [mainThread] { pthread_kill(mainThread, SIGUSR1); };  // ends sigwait() below
  TopicHandler handler;
  handler.onMessage = [state, &out, count = line.count, wake](const TopicMessage& m) {
    std::lock_guard<std::mutex> lock(state->mutex);
    if (state->stopped) return;
    printMessage(m, out);  // `out` belongs to main and outlives the client
    if (count != 0 && ++state->seen == count) {
      state->stopped = true;
      wake();
    }
  };
  handler.onGap = [state, &out](const std::string&, uint64_t from, uint64_t to) {
    std::lock_guard<std::mutex> lock(state->mutex);
    if (state->stopped) return;
    if (out.json()) {
      out.document({{"gap", {{"from", from}, {"to", to}}}});
    } else {
      out.errLine("gap: messages " + std::to_string(from) + ".." + std::to_string(to) + " were dropped");
    }
  };
  handler.onClosed = [state, &out, wake](const std::string& topic, const Error& reason, uint64_t next) {
    std::lock_guard<std::mutex> lock(state->mutex);
    if (state->stopped) return;
    state->stopped = true;
    state->exitCode = EXIT_CUT_OFF;
    out.errLine("shoalctl: the subscription to topic '" + topic +
                "' was ended by the member: " + reason.what());
    out.errLine("shoalctl: nothing was lost up to here; resume with: shoalctl subscribe " + topic +
                " --from " + std::to_string(next));
    wake();
  };
  auto topic = client.topic(line.topic);
  auto id = topic.subscribe(std::move(handler), fromOf(line.from));
  if (!out.json() && isatty(STDERR_FILENO))
    out.note("subscribed to topic '" + line.topic + "'; Ctrl-C to stop");

  int signal = 0;
  sigwait(&stopSignals, &signal);
  int exitCode;
  {
    std::lock_guard<std::mutex> lock(state->mutex);
    state->stopped = true;
    exitCode = state->exitCode;
  }
  topic.unsubscribe(id);
  client.close();  // joins the event thread: nothing is printed after this returns
  return exitCode;
}

}  // namespace shoal::ctl
