"""Run a command; print its wall and CPU time (s), peak RSS (KiB) and exit status as JSON.

Run it as ``python -S benchmarks/child_usage.py CMD ARG…``. It stands between a benchmark
and the process measured because, on Linux, a child's ``ru_maxrss`` is at least the RSS of
the process it was spawned from (the old memory's high-water mark survives ``exec``): a
benchmark that has loaded TensorFlow would report its own size. This launcher is a few MB,
less than any process it measures, so the figure it reads is the child's alone. The child's
stdout is discarded; its stderr passes through.
"""

import json
import os
import sys
import time


def main() -> int:
    argv = sys.argv[1:]
    quiet = [(os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0)]
    t0 = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=quiet)
    _, status, usage = os.wait4(pid, 0)
    seconds = time.perf_counter() - t0
    print(json.dumps({"seconds": seconds, "cpu_seconds": usage.ru_utime + usage.ru_stime,
                      "maxrss_kb": usage.ru_maxrss,
                      "status": os.waitstatus_to_exitcode(status)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
