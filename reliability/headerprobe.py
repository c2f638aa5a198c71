"""Read each file's header as the courier does, one by one, saying when each starts and ends.

Usage (a child process): ``python -m reliability.headerprobe FILE...``. For each file it prints
``start N`` then ``ok N``, ``skip N <reason>`` or ``crash N <exception type>``. The harness reads
these lines with a timeout per file (its watchdog): a file that starts and never ends hangs the
reader. Nothing else is printed (no value of the file: they may be patient data).
"""

from __future__ import annotations

import sys
from pathlib import Path

from common.dicomhdr import HeaderError, read_header_values


def main(paths: list[str]) -> None:
    for number, name in enumerate(paths):
        print(f"start {number}", flush=True)
        try:
            read_header_values(Path(name), ())
        except HeaderError as exc:
            print(f"skip {number} {exc.reason}", flush=True)
        except Exception as exc:  # noqa: BLE001 - the finding is that it escaped
            print(f"crash {number} {type(exc).__name__}", flush=True)
        else:
            print(f"ok {number}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
