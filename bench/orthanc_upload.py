"""Upload DICOM files to Orthanc's REST API (``POST /instances``) with N concurrent uploads.

    python -m bench.orthanc_upload URL LIST [--concurrency 2]

LIST holds one file path per line. Each worker thread keeps one HTTP/1.1 connection open
(keep-alive) and posts whole files; any answer other than 200 stops the run with an error.
The baseline of the `center import` measurement (bench/importer.py).
"""

from __future__ import annotations

import argparse
import http.client
import queue
import threading
import urllib.parse
from pathlib import Path


def _worker(url: str, todo: queue.Queue[Path | None], errors: list[str]) -> None:
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=120)
    try:
        while (path := todo.get()) is not None:
            conn.request("POST", "/instances", body=path.read_bytes())
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                errors.append(f"{path.name}: HTTP {response.status}")
                return
    finally:
        conn.close()


def upload(url: str, files: list[Path], concurrency: int) -> None:
    todo: queue.Queue[Path | None] = queue.Queue()
    for path in files:
        todo.put(path)
    for _ in range(concurrency):
        todo.put(None)
    errors: list[str] = []
    threads = [
        threading.Thread(target=_worker, args=(url, todo, errors)) for _ in range(concurrency)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise SystemExit("upload failed: " + "; ".join(errors[:5]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("list", type=Path)
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args(argv)
    files = [Path(line) for line in args.list.read_text().splitlines() if line]
    upload(args.url, files, args.concurrency)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
