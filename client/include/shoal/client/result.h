// Result<T>: a value or a shoal::Error, handed to asynchronous callbacks.
#pragma once

#include <utility>
#include <variant>

#include "shoal/error.h"

namespace shoal {

template <typename T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}
  Result(Error error) : v_(std::move(error)) {}

  bool ok() const { return v_.index() == 0; }
  // The value; throws the error when there is none.
  T& value() & {
    if (!ok()) throw std::get<1>(v_);
    return std::get<0>(v_);
  }
  T&& value() && {
    if (!ok()) throw std::get<1>(v_);
    return std::get<0>(std::move(v_));
  }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

}  // namespace shoal
