#include "runner/job_runner.h"

#include <utility>

namespace consumer {

using ::descarteslabs::workflows::CreateJobRequest;
using ::descarteslabs::workflows::GetJobRequest;
using ::descarteslabs::workflows::Job;

JobRunner::JobRunner(std::shared_ptr<workflows::Client> client)
    : JobRunner(std::move(client), Options()) {}

JobRunner::JobRunner(std::shared_ptr<workflows::Client> client, Options options)
    : client_(std::move(client)), options_(options) {}

absl::StatusOr<Job> JobRunner::Run(const std::string& serialized_graft) {
  CreateJobRequest request;
  request.set_serialized_graft(serialized_graft);
  request.set_channel("v0-19");
  workflows::CallResult<Job> created =
      client_->CreateJob(request, {.num_retries = options_.submit_retries});
  if (!created.ok()) return created.status();

  absl::StatusOr<Job::State> done =
      client_->WaitForJob(created->id(), options_.timeout);
  if (!done.ok()) return done.status();

  GetJobRequest get;
  get.set_id(created->id());
  return absl::StatusOr<Job>(client_->GetJob(get));
}

}  // namespace consumer
