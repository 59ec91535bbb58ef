#ifndef WORKFLOWS_CLIENT_CALL_RESULT_H_
#define WORKFLOWS_CLIENT_CALL_RESULT_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace workflows {

// The outcome of a unary Workflows call: the response or an error status,
// plus the `x-wf-warnings` the server sent (from every attempt, in order).
// Converts implicitly to absl::StatusOr<T>.
//
//   CallResult<Job> job = client.GetJob(request);
//   for (const std::string& warning : job.warnings()) ...
//   if (!job.ok()) return job.status();
//   std::cout << job->id();
template <typename T>
class CallResult {
 public:
  // `status` must not be OK.
  CallResult(absl::Status status, std::vector<std::string> warnings = {})
      : result_(std::move(status)), warnings_(std::move(warnings)) {}
  CallResult(T value, std::vector<std::string> warnings = {})
      : result_(std::move(value)), warnings_(std::move(warnings)) {}

  bool ok() const { return result_.ok(); }
  absl::Status status() const { return result_.status(); }
  const std::vector<std::string>& warnings() const { return warnings_; }

  // Only valid when ok().
  const T& value() const& { return *result_; }
  T& value() & { return *result_; }
  T&& value() && { return *std::move(result_); }
  const T& operator*() const& { return *result_; }
  T& operator*() & { return *result_; }
  const T* operator->() const { return &*result_; }
  T* operator->() { return &*result_; }

  operator absl::StatusOr<T>() const& { return result_; }
  operator absl::StatusOr<T>() && { return std::move(result_); }

 private:
  absl::StatusOr<T> result_;
  std::vector<std::string> warnings_;
};

}  // namespace workflows

#endif  // WORKFLOWS_CLIENT_CALL_RESULT_H_
