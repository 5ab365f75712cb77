// Runs blocking work on the member's blocking-work pool and resolves a promise on the calling KJ
// loop with its result: the one way a shard hands disk I/O off its loop thread.
#pragma once

#include <kj/async.h>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <exception>
#include <functional>
#include <memory>

namespace shoal::node {

// `work` runs on `pool`; its result (or the exception it threw, as a kj::Exception) comes back to
// the loop that called. T must be movable; `work` must not touch loop-owned state.
template <typename T>
kj::Promise<T> onPool(boost::asio::thread_pool& pool, std::function<T()> work) {
  auto paf = kj::newPromiseAndCrossThreadFulfiller<T>();
  auto fulfiller = std::make_shared<kj::Own<kj::CrossThreadPromiseFulfiller<T>>>(kj::mv(paf.fulfiller));
  boost::asio::post(pool, [work = std::move(work), fulfiller]() {
    try {
      (*fulfiller)->fulfill(work());
    } catch (const std::exception& e) {
      (*fulfiller)->reject(kj::Exception(kj::Exception::Type::FAILED, __FILE__, __LINE__, kj::str(e.what())));
    }
  });
  return kj::mv(paf.promise);
}

}  // namespace shoal::node
