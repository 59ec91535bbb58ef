"""The symbols the TSan shims define in the executable, exported from it.

The one list: //tools/tsan:annotations puts each into its linkopts
(-Wl,--export-dynamic-symbol=<mangled>), so the dynamic linker sends every
module's calls there (Debian's libgpr/libgrpc/libgrpc++ included), and
//tools/tsan:exported_symbols_test checks that it matches the definitions in
absl_annotations.cc and grpc_annotations.cc, both ways.
"""

# absl::Mutex, CondVar, Notification, BlockingCounter, ReleasableMutexLock
# (absl_annotations.cc). The names spell Debian's inline namespace, debian3.
ABSL_SYMBOLS = [
    "_ZN4absl7debian312Notification6NotifyEv",
    "_ZN4absl7debian319ReleasableMutexLock7ReleaseEv",
    "_ZN4absl7debian315BlockingCounter14DecrementCountEv",
    "_ZN4absl7debian315BlockingCounter4WaitEv",
    "_ZN4absl7debian35Mutex10ReaderLockEv",
    "_ZN4absl7debian35Mutex12ReaderUnlockEv",
    "_ZN4absl7debian35Mutex13ReaderTryLockEv",
    "_ZN4absl7debian35Mutex14ReaderLockWhenERKNS0_9ConditionE",
    "_ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE",
    "_ZN4absl7debian35Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE",
    "_ZN4absl7debian35Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE",
    "_ZN4absl7debian35Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE",
    "_ZN4absl7debian35Mutex25ReaderLockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE",
    "_ZN4absl7debian35Mutex26ReaderLockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE",
    "_ZN4absl7debian35Mutex4LockEv",
    "_ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE",
    "_ZN4absl7debian35Mutex6UnlockEv",
    "_ZN4absl7debian35Mutex7TryLockEv",
    "_ZN4absl7debian35Mutex8LockWhenERKNS0_9ConditionE",
    "_ZN4absl7debian35MutexD1Ev",
    "_ZN4absl7debian35MutexD2Ev",
    "_ZN4absl7debian37CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE",
    "_ZN4absl7debian37CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE",
    "_ZN4absl7debian37CondVar4WaitEPNS0_5MutexE",
    "_ZNK4absl7debian312Notification19WaitForNotificationEv",
    "_ZNK4absl7debian312Notification30WaitForNotificationWithTimeoutENS0_8DurationE",
    "_ZNK4absl7debian312Notification31WaitForNotificationWithDeadlineENS0_4TimeE",
]

# gRPC's completion queues and call combiners (grpc_annotations.cc).
GRPC_SYMBOLS = [
    "_Z14grpc_cq_end_opP21grpc_completion_queuePvN4absl7debian36StatusEPFvS1_P18grpc_cq_completionES1_S6_b",
    "grpc_completion_queue_next",
    "grpc_completion_queue_pluck",
    "_ZN9grpc_core12CallCombiner5StartEP12grpc_closureN4absl7debian36StatusEPKciS7_",
    "_ZN9grpc_core12CallCombiner4StopEPKciS2_",
]

EXPORTED_SYMBOLS = ABSL_SYMBOLS + GRPC_SYMBOLS
