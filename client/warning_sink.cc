#include "client/warning_sink.h"

#include <cstdio>
#include <memory>
#include <string>
#include <utility>

#include "absl/base/const_init.h"
#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace workflows {
namespace {

absl::Mutex sink_mu(absl::kConstInit);
// nullptr = the stderr default. Held by shared_ptr so that EmitWarning can
// call the sink outside the lock while another thread replaces it.
std::shared_ptr<const WarningSink>* current_sink ABSL_GUARDED_BY(sink_mu) =
    nullptr;

}  // namespace

void WriteWarningToStderr(absl::string_view warning) {
  const std::string line = absl::StrCat(warning, "\n");
  std::fwrite(line.data(), 1, line.size(), stderr);
}

WarningSink SetWarningSink(WarningSink sink) {
  std::shared_ptr<const WarningSink> next;
  if (sink) next = std::make_shared<const WarningSink>(std::move(sink));
  std::shared_ptr<const WarningSink> previous;
  {
    absl::MutexLock lock(&sink_mu);
    if (current_sink == nullptr) {
      current_sink = new std::shared_ptr<const WarningSink>();
    }
    previous = std::exchange(*current_sink, std::move(next));
  }
  if (previous == nullptr) return WriteWarningToStderr;
  return *previous;
}

void EmitWarning(absl::string_view warning) {
  std::shared_ptr<const WarningSink> sink;
  {
    absl::MutexLock lock(&sink_mu);
    if (current_sink != nullptr) sink = *current_sink;
  }
  if (sink == nullptr) {
    WriteWarningToStderr(warning);
  } else {
    (*sink)(warning);
  }
}

}  // namespace workflows
