"""A small process that starts the measured commands, so their peak RSS is their own.

Linux gives a new program the resident-set high-water mark of the process that forked it
(``exec`` folds the old address space's peak into ``ru_maxrss``): a command forked from the
benchmark driver, which has pydicom, SQLite caches and a catalog in memory, would report at
least the driver's size. This spawner is started once with ``python -I -S`` (no site packages,
a few MB) and forks every command instead.

Protocol: one JSON request per line on stdin ``{"argv", "env", "cwd", "stderr"}``; it answers
``{"pid"}`` once the child runs, then ``{"seconds", "status", "maxrss_kib"}`` once it ended.
Only the standard library, on purpose: this file must stay importable without site packages.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path


def serve() -> None:
    for line in sys.stdin:
        request = json.loads(line)
        with Path(request["stderr"]).open("wb") as errors:
            start = time.perf_counter()
            proc = subprocess.Popen(
                request["argv"],
                env=request["env"],
                cwd=request["cwd"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=errors,
            )
            print(json.dumps({"pid": proc.pid}), flush=True)
            _, status, usage = os.wait4(proc.pid, 0)
            seconds = time.perf_counter() - start
        answer = {
            "seconds": seconds,
            "status": os.waitstatus_to_exitcode(status),
            "maxrss_kib": usage.ru_maxrss,
        }
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    serve()
