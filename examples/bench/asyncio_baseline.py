"""The hand-tuned asyncio script quench is compared with (issue 14, S).

It does what the S scenarios ask of quench, against the same mock platform
and with the same concurrency, and nothing more: list every grant in pages
of 1,000, then revoke each one with an Idempotency-Key, over HTTP/1.1
keep-alive connections, one per worker. It keeps no record of what it did,
so a crash loses everything: it is the floor of a script, not a tool.

Standard library only (asyncio streams; this machine has no aiohttp), so
the bench can run it wherever python3 is. The bench runs it as its child
with the same SPEC JSON it gives quench, and reads the same report line.

    python3 examples/bench/asyncio_baseline.py SPEC_JSON
"""

import asyncio
import json
import resource
import sys
import time
import urllib.parse


class Conn:
    """One keep-alive HTTP/1.1 connection to the platform."""

    def __init__(self, host, port):
        self.host, self.port = host, port
        self.reader = self.writer = None

    async def request(self, method, target, headers=""):
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(
            f"{method} {target} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Authorization: Bearer bench-secret-token\r\n{headers}\r\n".encode()
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.lower() == "content-length":
                length = int(value)
        body = await self.reader.readexactly(length) if length else b""
        return status, body


async def main(spec):
    url = urllib.parse.urlsplit(spec["platforms"][0][0])
    host, port = url.hostname, url.port
    concurrency = spec["concurrency"]

    # The listing: one page after another, as its cursor demands.
    lister = Conn(host, port)
    ids, cursor = [], None
    while True:
        target = "/grants?limit=1000" + (f"&cursor={cursor}" if cursor else "")
        status, body = await lister.request("GET", target)
        if status != 200:
            raise SystemExit(f"list answered {status}")
        page = json.loads(body)
        ids.extend(g["id"] for g in page["data"])
        cursor = page.get("next_cursor")
        if not cursor:
            break

    # The revocations: `concurrency` workers, each on its own connection,
    # retrying a 429 or 5xx after a short pause.
    queue = iter(enumerate(ids))
    failures = []

    async def worker():
        conn = Conn(host, port)
        for n, gid in queue:
            for attempt in range(8):
                status, _ = await conn.request(
                    "DELETE", f"/grants/{gid}", f"Idempotency-Key: bench-{n}\r\n"
                )
                if status == 204:
                    break
                if status != 429 and status < 500:
                    failures.append((gid, status))
                    break
                await asyncio.sleep(0.1 * 2**attempt)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    if failures:
        raise SystemExit(f"{len(failures)} revocations failed, first {failures[0]}")


if __name__ == "__main__":
    spec = json.loads(sys.argv[1])
    t = time.monotonic()
    asyncio.run(main(spec))
    seconds = time.monotonic() - t
    ru = resource.getrusage(resource.RUSAGE_SELF)
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu": ru.ru_utime + ru.ru_stime,
                "rss_mb": ru.ru_maxrss / 1024.0,
                "store_bytes": 0,
                "flushes": [0.0, 0.0],
                "declared_at": [],
                "completed_at": [],
            }
        )
    )
