// `shoalctl watch MAP`: prints entry events as they arrive until SIGINT / SIGTERM or --count
// events. Signals are blocked in every thread and taken with sigwait() in the main thread, which
// then removes the listener and closes the client — no work in a signal handler.
#include <pthread.h>
#include <unistd.h>

#include <memory>
#include <mutex>

#include "commands.h"

namespace shoal::ctl {
namespace {

using nlohmann::json;

// Shared between the client's event thread (which prints) and the main thread (which stops).
struct WatchState {
  std::mutex mutex;
  uint64_t seen = 0;
  bool stopped = false;  // no more printing once set
};

bool carriesValue(EntryEventType t) {
  return t == EntryEventType::ADDED || t == EntryEventType::UPDATED;
}
bool carriesOldValue(EntryEventType t) {
  return t != EntryEventType::ADDED;
}

void printEvent(const EntryEvent& e, Output& out) {
  std::string type(entryEventTypeName(e.type));
  if (out.json()) {
    json doc = {{"type", type}, {"map", textJson(e.map)}, {"key", textJson(e.key)}, {"version", e.version}};
    if (carriesValue(e.type)) doc["value"] = textJson(e.value);
    if (carriesOldValue(e.type)) doc["oldValue"] = textJson(e.oldValue);
    out.document(doc);
  } else if (e.type == EntryEventType::ADDED) {
    out.line(type + " " + e.key + ": " + e.value);
  } else if (e.type == EntryEventType::UPDATED) {
    out.line(type + " " + e.key + ": " + e.oldValue + " -> " + e.value);
  } else {
    out.line(type + " " + e.key + " (was " + e.oldValue + ")");
  }
}

}  // namespace

sigset_t blockStopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

int runWatch(const CommandLine& line, Client& client, Output& out, const sigset_t& stopSignals) {
  // Shared with the callback: if addListener throws (say, a timeout after the member registered
  // the listener), the client may still deliver events until main closes it.
  auto state = std::make_shared<WatchState>();
  pthread_t mainThread = pthread_self();
  auto map = client.rawMap(line.map);
  auto id = map.addListener([state, &out, count = line.count, mainThread](const EntryEvent& e) {
    std::lock_guard<std::mutex> lock(state->mutex);
    if (state->stopped) return;
    printEvent(e, out);  // `out` belongs to main and outlives the client
    if (count != 0 && ++state->seen == count) {
      state->stopped = true;
      pthread_kill(mainThread, SIGUSR1);  // wakes sigwait() below
    }
  });
  if (!out.json() && isatty(STDERR_FILENO)) out.note("watching map '" + line.map + "'; Ctrl-C to stop");

  int signal = 0;
  sigwait(&stopSignals, &signal);
  {
    std::lock_guard<std::mutex> lock(state->mutex);
    state->stopped = true;
  }
  map.removeListener(id);
  client.close();  // joins the event thread: nothing is printed after this returns
  return EXIT_OK;
}

}  // namespace shoal::ctl
