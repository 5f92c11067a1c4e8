"""The C compilers SchedCP looks for, in order: the helper's BPF compile and the workload
probe's build both pick from this one list."""

CLANG_CANDIDATES = ("clang-19", "clang-18", "clang-17", "clang-16", "clang")
