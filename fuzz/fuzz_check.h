#ifndef WORKFLOWS_FUZZ_FUZZ_CHECK_H_
#define WORKFLOWS_FUZZ_FUZZ_CHECK_H_

// FUZZ_CHECK(condition, message...) aborts with the message when an
// invariant of the code under fuzzing does not hold, so libFuzzer (or the
// regression test) reports the input as a crash. Plain assert() would vanish
// under NDEBUG (-c opt).
//
//   FUZZ_CHECK(reparsed.ok(), "printed scenario does not parse: ",
//              reparsed.status().ToString());

#include <cstdlib>
#include <iostream>

#include "absl/strings/str_cat.h"

#define FUZZ_CHECK(condition, ...)                         \
  do {                                                     \
    if (!(condition)) {                                    \
      std::cerr << __FILE__ << ":" << __LINE__             \
                << ": invariant failed: " #condition ": "  \
                << absl::StrCat(__VA_ARGS__) << std::endl; \
      std::abort();                                        \
    }                                                      \
  } while (false)

#endif  // WORKFLOWS_FUZZ_FUZZ_CHECK_H_
