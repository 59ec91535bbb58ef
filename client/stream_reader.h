#ifndef WORKFLOWS_CLIENT_STREAM_READER_H_
#define WORKFLOWS_CLIENT_STREAM_READER_H_

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/sync_stream.h>

#include <chrono>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "client/clock.h"
#include "client/errors.h"
#include "client/retry.h"
#include "client/warning_sink.h"

namespace workflows {

// Reads a server stream of the Workflows API (e.g. WatchJob). Opening the
// stream is retried under the call's RetryPolicy: a stream that fails before
// its first message is opened again. Once a message has arrived, errors end
// the stream (as in the Python client). Cancel() may be called from any
// thread; everything else belongs to one thread.
//
//   std::unique_ptr<StreamReader<Job::State>> states = client.WatchJob(req);
//   Job::State state;
//   while (states->Next(&state)) { ... }
//   absl::Status status = states->Finish();
// Whether the server's metadata may be read from `context`. gRPC aborts the
// process (GPR_CODEGEN_ASSERT) when GetServerInitialMetadata() is called on
// a context no call received it on: a missing stub or a gMock stub never
// starts one. A started call has a c_call(), and gRPC's sync unary calls and
// readers receive the initial metadata before they return a status.
// `injected` is for stubs that fill the metadata without a call (see
// Client::Stubs::injected_server_metadata).
inline bool ServerMetadataReadable(grpc::ClientContext* context,
                                   bool injected) {
  return injected || context->c_call() != nullptr;
}

// An overall deadline, on the reader's Clock, for opening a stream and for
// its life once open (CallOptions::budget); `total` is the duration it
// stands for, named when it runs out.
struct StreamBudget {
  absl::Time deadline;
  absl::Duration total;
};

template <typename T>
class StreamReader {
 public:
  // Fills a fresh context for one attempt (deadline, metadata, credentials).
  using Prepare = std::function<absl::Status(grpc::ClientContext*)>;
  // Starts the call on a prepared context.
  using Start = std::function<std::unique_ptr<grpc::ClientReaderInterface<T>>(
      grpc::ClientContext*)>;

  // `injected_server_metadata`: read the server's metadata even from
  // contexts no call was started on (see ServerMetadataReadable). `budget`:
  // each opening's deadline is clipped to what is left of it, and running
  // out of it ends the stream with Retrier::OutOfTime().
  StreamReader(std::string method, Prepare prepare, Start start,
               RetryPolicy policy, std::shared_ptr<Clock> clock,
               bool injected_server_metadata = false,
               std::optional<StreamBudget> budget = std::nullopt)
      : injected_server_metadata_(injected_server_metadata),
        method_(std::move(method)),
        prepare_(std::move(prepare)),
        start_(std::move(start)),
        policy_(std::move(policy)),
        retrier_(policy_, std::move(clock), method_) {
    if (budget.has_value())
      retrier_.set_deadline(budget->deadline, budget->total);
  }

  // A stream that failed before it could start (e.g. bad options).
  explicit StreamReader(absl::Status error)
      : policy_(RetryPolicy::None()),
        retrier_(policy_, nullptr, ""),
        done_(true),
        final_(std::move(error)) {}

  StreamReader(const StreamReader&) = delete;
  StreamReader& operator=(const StreamReader&) = delete;

  ~StreamReader() {
    if (!done_ && reader_ != nullptr) {
      Cancel();
      T ignored;
      while (reader_->Read(&ignored)) {
      }
      reader_->Finish();
    }
  }

  // Reads the next message into `*message`. False at the end of the stream
  // or on error; then Finish() tells which.
  bool Next(T* message) {
    while (!done_) {
      if (reader_ == nullptr) {
        absl::Status opened = Open();
        if (!opened.ok()) return Done(std::move(opened));
      }
      if (reader_->Read(message)) {
        if (!received_) {
          received_ = true;
          CollectWarnings();
        }
        return true;
      }
      grpc::Status finished = reader_->Finish();
      if (!received_) CollectWarnings();
      absl::Status status = FromGrpcStatus(
          finished,
          ServerMetadataReadable(context_.get(), injected_server_metadata_)
              ? ToMetadata(context_->GetServerTrailingMetadata())
              : Metadata());
      if (status.ok() || received_ || cancelled()) return Done(status);
      absl::Status retry = retrier_.OnFailure(status);
      if (!retry.ok()) return Done(std::move(retry));
      reader_.reset();
    }
    return false;
  }

  // The final status of the stream. If messages remain unread, the stream
  // is cancelled first (the status is then CANCELLED).
  absl::Status Finish() {
    if (!done_) {
      if (reader_ != nullptr) Cancel();
      T ignored;
      while (Next(&ignored)) {
      }
    }
    return final_;
  }

  // Cancels the stream; Next() then returns false. Thread-safe.
  void Cancel() {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
    if (context_ != nullptr) context_->TryCancel();
  }

  // `x-wf-warnings` received so far (each attempt's initial metadata).
  const std::vector<std::string>& warnings() const { return warnings_; }

  // Attempts that failed and were retried or ended the stream.
  const std::vector<absl::Status>& failed_attempts() const {
    return retrier_.attempts();
  }

 private:
  bool cancelled() {
    absl::MutexLock lock(&mu_);
    return cancelled_;
  }

  absl::Status Open() {
    const absl::Duration left = retrier_.TimeLeft();
    if (left <= absl::ZeroDuration()) return retrier_.OutOfTime();
    auto context = std::make_unique<grpc::ClientContext>();
    absl::Status prepared = prepare_(context.get());
    if (!prepared.ok()) return prepared;
    // Past ~100 years a deadline is none (as in Client::PrepareContext).
    if (left < absl::Hours(24 * 365 * 100)) {
      const auto budget_end =
          std::chrono::system_clock::now() + absl::ToChronoNanoseconds(left);
      if (budget_end < context->deadline()) context->set_deadline(budget_end);
    }
    {
      absl::MutexLock lock(&mu_);
      if (cancelled_) {
        return absl::CancelledError(
            absl::StrCat(method_, " was cancelled before it started"));
      }
      context_ = std::move(context);
    }
    reader_ = start_(context_.get());
    if (reader_ == nullptr) {
      return absl::InternalError(absl::StrCat(method_, " did not start"));
    }
    return absl::OkStatus();
  }

  void CollectWarnings() {
    if (!ServerMetadataReadable(context_.get(), injected_server_metadata_)) {
      return;
    }
    for (std::string& warning :
         ParseWarnings(ToMetadata(context_->GetServerInitialMetadata()))) {
      EmitWarning(absl::StrCat("Workflows warning (", method_, "): ", warning));
      warnings_.push_back(std::move(warning));
    }
  }

  bool Done(absl::Status status) {
    done_ = true;
    final_ = std::move(status);
    return false;
  }

  const bool injected_server_metadata_ = false;
  const std::string method_;
  const Prepare prepare_;
  const Start start_;
  const RetryPolicy policy_;
  Retrier retrier_;

  absl::Mutex mu_;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  // Written by the reading thread under mu_; TryCancel'ed by Cancel().
  std::unique_ptr<grpc::ClientContext> context_;
  std::unique_ptr<grpc::ClientReaderInterface<T>> reader_;
  bool received_ = false;
  bool done_ = false;
  absl::Status final_;
  std::vector<std::string> warnings_;
};

}  // namespace workflows

#endif  // WORKFLOWS_CLIENT_STREAM_READER_H_
