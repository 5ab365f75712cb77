// The Cap'n Proto face of a member: wire::Member::Server. Translates calls into MapService
// operations on the shard thread. One instance serves every connection of a shard.
#pragma once

#include <cstdint>
#include <string>

#include "map_service.h"
#include "shoal/proto/shoal.capnp.h"
#include "write_behind_driver.h"

namespace shoal::node {

struct MemberIdentity {
  std::string name;
  std::string address;
  int64_t startedAtMs;
};

class MemberService final : public wire::Member::Server {
 public:
  // `writeBehind` is null when the member has no data-dir (no map can be write-behind).
  MemberService(MapService& maps, const MemberIdentity& identity, const Clock& clock,
                WriteBehindDriver* writeBehind)
      : maps_(maps), identity_(identity), clock_(clock), writeBehind_(writeBehind) {}

  kj::Promise<void> execute(ExecuteContext context) override;
  kj::Promise<void> scan(ScanContext context) override;
  kj::Promise<void> addListener(AddListenerContext context) override;
  kj::Promise<void> ping(PingContext context) override;
  kj::Promise<void> listMaps(ListMapsContext context) override;
  kj::Promise<void> cluster(ClusterContext context) override;
  // Write-behind administration (member_write_behind.cpp).
  kj::Promise<void> flushWriteBehind(FlushWriteBehindContext context) override;
  kj::Promise<void> listDeadLetters(ListDeadLettersContext context) override;
  kj::Promise<void> replayDeadLetters(ReplayDeadLettersContext context) override;

 private:
  void fillMember(wire::MemberInfo::Builder out);
  // Applies ops[first..] of a batch in order, pausing for read-through loads; then commits.
  kj::Promise<void> applyFrom(ExecuteContext context, uint32_t first);

  MapService& maps_;
  const MemberIdentity& identity_;
  const Clock& clock_;
  WriteBehindDriver* writeBehind_;
};

}  // namespace shoal::node
