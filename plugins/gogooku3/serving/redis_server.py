"""A local ``redis-server`` (the Debian package) for the embedded default and the tests.

The embedded default runs Redis as Feast's online store on one machine: tests start a
private server on a free loopback port and stop it when the session ends; ``make demo``
starts one on 127.0.0.1:6379 with ``gogooku3 serve redis start`` and stops it with
``gogooku3 serve redis stop``. Only a server this module started is ever stopped: the
pid file it writes is the proof. Persistence is off (the online store is rebuilt by
materialization from the lake, never the other way round).
"""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

REDIS_BINARY = "redis-server"
START_TIMEOUT_S = 10.0


class RedisServerError(RuntimeError):
    """redis-server is missing, did not come up, or the port is taken."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now (bound with port 0, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _client(port: int, timeout: float):
    """A client that fails at once instead of retrying (redis-py retries with back-off)."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return redis.Redis(host="127.0.0.1", port=port, socket_timeout=timeout,
                       retry=Retry(NoBackoff(), 0))


def _ping(port: int) -> bool:
    import redis

    try:
        return bool(_client(port, 0.5).ping())
    except redis.exceptions.RedisError:
        return False


@dataclass
class RedisServer:
    """One redis-server on 127.0.0.1:``port`` whose pid file lives in ``workdir``."""

    port: int
    workdir: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pidfile(self) -> Path:
        return self.workdir / f"redis-{self.port}.pid"

    def answers(self) -> bool:
        """Whether some Redis server (started here or not) answers PING on the port."""
        return _ping(self.port)

    def start(self) -> RedisServer:
        """Start the server daemonized and wait until it answers PING.

        Raises ``RedisServerError`` if the binary is missing, something already
        listens on the port, or the server does not answer within 10 s.
        """
        binary = shutil.which(REDIS_BINARY)
        if binary is None:
            raise RedisServerError(
                f"{REDIS_BINARY} not found on PATH: install the Debian package redis-server "
                "(make sysdeps)"
            )
        if _ping(self.port):
            raise RedisServerError(f"127.0.0.1:{self.port}: a Redis server already listens there")
        self.workdir.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                binary, "--port", str(self.port), "--bind", "127.0.0.1",
                "--daemonize", "yes", "--pidfile", str(self.pidfile),
                "--dir", str(self.workdir), "--save", "", "--appendonly", "no",
                "--logfile", str(self.workdir / f"redis-{self.port}.log"),
            ],
            check=True,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _ping(self.port):
            if time.monotonic() > deadline:
                raise RedisServerError(
                    f"redis-server on 127.0.0.1:{self.port} did not answer within "
                    f"{START_TIMEOUT_S:.0f} s; see {self.workdir}/redis-{self.port}.log"
                )
            time.sleep(0.05)
        log.info("redis-server started on %s (pid file %s)", self.url, self.pidfile)
        return self

    def stop(self) -> bool:
        """Shut the server down if this module started it (its pid file exists); True if so."""
        import redis

        if not self.pidfile.exists():
            return False
        try:
            _client(self.port, 2.0).shutdown(nosave=True)
        except redis.exceptions.ConnectionError:
            pass  # SHUTDOWN closes the connection before it replies
        deadline = time.monotonic() + START_TIMEOUT_S
        while _ping(self.port) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.pidfile.unlink(missing_ok=True)
        log.info("redis-server on 127.0.0.1:%d stopped", self.port)
        return True
