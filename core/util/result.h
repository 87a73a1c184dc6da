// Errors are values (DESIGN rule 7): every loader and engine call returns a
// Result<T>, either a value or an Error with a message a person can act on.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace attn {

struct Error {
  std::string message;
};

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Error e) : v_(std::move(e)) {}      // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }
  T& operator*() & { return std::get<0>(v_); }
  const T& operator*() const& { return std::get<0>(v_); }

  const Error& error() const& { return std::get<1>(v_); }
  const std::string& message() const { return std::get<1>(v_).message; }

 private:
  std::variant<T, Error> v_;
};

// For calls that produce nothing but may fail.
struct Ok {};
using Status = Result<Ok>;

inline Error makeError(std::string msg) { return Error{std::move(msg)}; }

}  // namespace attn
