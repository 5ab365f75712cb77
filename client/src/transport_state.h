// The transport's I/O-thread state, shared by its source files (transport.cpp: connections, routing,
// table, calls; transport_batches.cpp: batches, retries, completion). Private to the client.
#pragma once

#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>

#include <deque>
#include <map>
#include <random>

#include "circuit_breaker.h"
#include "entry_listeners.h"
#include "pattern_subscriptions.h"
#include "registration_host.h"
#include "routing_table.h"
#include "subscriptions.h"
#include "transport.h"

namespace shoal::client {

// A member that has not answered a call for this long may be stopped or dead: the client asks
// another member for the table (again every SLOW_CALL while it stays silent), and drops the
// connection if the table no longer has that member.
constexpr auto SLOW_CALL = std::chrono::milliseconds(250);

struct Transport::Link {
  Link(std::string a, const ClientOptions& o)
      : address(std::move(a)), breaker(o.breakerFailureThreshold, o.breakerOpenTime) {}
  std::string address;
  enum class State { IDLE, CONNECTING, READY } state = State::IDLE;
  kj::Own<kj::AsyncIoStream> stream;
  kj::Own<capnp::TwoPartyClient> rpc;
  kj::Maybe<wire::Member::Client> member;
  std::deque<std::unique_ptr<Operation>> queue;
  uint32_t inFlight = 0;
  CircuitBreaker breaker;
  uint32_t reconnectAttempt = 0;
  bool reconnectScheduled = false;
  uint64_t generation = 0;  // +1 on every connect and disconnect; stale completions compare it
  // Its last connection attempt failed or its connection dropped, and it has not been READY since:
  // keyed operations for it go through the home member (which forwards) until it is back.
  bool down = false;
  kj::Canceler calls;             // execute calls in flight; cancelled when the connection is dropped
  Clock::time_point busySince{};  // last progress while calls are in flight (send or reply)
  Clock::time_point nextSlowCheck{};
  bool slow(Clock::time_point now) const { return inFlight > 0 && now - busySince > SLOW_CALL; }
  std::vector<kj::Own<kj::PromiseFulfiller<RegistrationHost::Home>>> readyWaiters;
  uint64_t connectionId = 0;  // of the current connection, unique in the client (registrations)
  std::string lastError;
  uint32_t maxBatchOps = 1;  // learned from the member on connect, capped by the options
  uint64_t maxBatchBytes = 1024;
};

struct Transport::Io : public kj::TaskSet::ErrorHandler {
  explicit Io(kj::AsyncIoContext& c) : context(c), tasks(*this) {}
  void taskFailed(kj::Exception&& e) override {
    // Every task handles its own failures; reaching here is a bug worth seeing.
    fprintf(stderr, "shoal client: unexpected task failure: %s\n", e.getDescription().cStr());
  }
  kj::AsyncIoContext& context;
  kj::TaskSet tasks;
  std::vector<std::unique_ptr<Link>> links;  // the servers in order, then members found in tables
  std::map<std::string, Link*> byAddress;
  // The home member: keyless ops (size, clear), calls (scan, ping, cluster...), listeners, and
  // keyed ops whose owner is unknown or unreachable go there. Moves on when it cannot be reached.
  size_t home = 0;
  RoutingTable table;
  bool refreshing = false;    // a cluster() call is in flight
  bool refreshAgain = false;  // something asked for a refresh while one was in flight
  bool tableStale = false;    // a refresh is wanted but no member was reachable
  Clock::time_point nextRefresh{};
  uint64_t nextConnectionId = 1;
  // Push registrations, kept alive across reconnects and failovers by their own modules.
  std::unique_ptr<EntryListeners> listeners;
  std::unique_ptr<Subscriptions> subscriptions;
  std::unique_ptr<PatternSubscriptions> patterns;  // made of `subscriptions`: destroyed first
  std::mt19937_64 rng{std::random_device{}()};
  // Write request ids: windowBase is the lowest id not yet completed; writeDone[i] tells whether
  // id windowBase + i has completed. The member forgets dedupe results below windowBase.
  //
  // One window for the whole client, and every member is told the same windowBase. A per-member
  // lowest-pending (the lowest id among the writes sent to that member) would let a member prune
  // sooner, but it is unsafe: a write sent to A whose ack was lost is retried at B after a
  // failover (or re-routed through the home member), and B holds A's dedupe record for it (dedupe
  // records are replicated with the data). Had B been told "below id X nothing is pending" by
  // this client's traffic to B alone, it would have dropped that record and applied the write
  // twice. windowBase is safe for every member: every id below it has completed, so no retry of
  // it will ever be sent, to any member. The cost is that one slow write holds pruning back
  // everywhere — for at most its deadline (requestTimeout).
  uint64_t windowBase = 1;
  std::deque<bool> writeDone;
};

}  // namespace shoal::client
