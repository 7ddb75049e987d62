"""The docker-compose topology on loopback: Redis, two ``s5rf serve`` replicas, nginx.

    python scripts/topology.py --checkpoints checkpoints     # up until Ctrl-C

nginx runs in the foreground from a temporary prefix, with the same http-level template the
compose file mounts (deploy/nginx/s5rf.conf.template) rendered for loopback ports. Redis is the
one at --redis if it answers, else a ``redis-server`` of our own on a free port. The pieces are
importable: tests/deploy builds the same topology on a tiny checkpoint.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import os
import shutil
import signal
import socket
import string
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "deploy" / "nginx" / "s5rf.conf.template"

# The http-level template goes inside this main configuration, as in the nginx image (whose
# nginx.conf includes conf.d/*.conf in its http block). $upstream_addr is logged so a test can
# tell which replica served a request.
MAIN_CONF = """\
worker_processes 1;
error_log {prefix}/error.log warn;
pid {prefix}/nginx.pid;
events {{ worker_connections 256; }}
http {{
    log_format upstream '$request_method $request_uri $status $upstream_addr';
    access_log {prefix}/access.log upstream;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    include s5rf.conf;
}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def redis_answers(host: str, port: int) -> bool:
    """True if a Redis server answers PING at host:port."""
    try:
        with socket.create_connection((host, port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None)


def wait_until(check: Callable[[], bool], what: str, timeout_s: float,
               proc: subprocess.Popen[bytes] | None = None) -> None:
    """Wait for ``check``; a ``proc`` that exits meanwhile fails it at once, not at the
    timeout."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with status {proc.returncode} before it was up")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not up after {timeout_s:.0f} s")
        time.sleep(0.1)


@dataclasses.dataclass
class Redis:
    """A Redis to use: the shared one (``proc`` None) or one this script started."""

    port: int
    proc: subprocess.Popen[bytes] | None = None
    dir: Path | None = None
    host: str = "127.0.0.1"

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    @classmethod
    def start(cls, workdir: Path, port: int | None = None) -> Redis:
        """A private redis-server (append-only file in ``workdir``, so a restart keeps data)."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError("redis-server is not on PATH (apt-get install redis-server)")
        workdir.mkdir(parents=True, exist_ok=True)
        port = port or free_port()
        proc = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir),
             "--save", "", "--appendonly", "yes", "--appendfsync", "always"],
            stdout=(workdir / "redis.log").open("ab"), stderr=subprocess.STDOUT)
        try:
            wait_until(lambda: redis_answers("127.0.0.1", port), "redis-server", 20, proc)
        except BaseException:
            proc.kill()
            proc.wait(10)
            raise
        return cls(port, proc, workdir)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)

    def restart(self) -> None:
        assert self.dir is not None, "only a redis-server of our own can be restarted"
        self.proc = Redis.start(self.dir, self.port).proc


@dataclasses.dataclass
class Replica:
    """One ``s5rf serve`` process."""

    port: int
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)


def start_replica(checkpoints: Path, store_url: str, key_prefix: str, log: Path,
                  extra_env: dict[str, str] | None = None) -> Replica:
    port = free_port()
    exe = Path(sys.executable).with_name("s5rf")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "cli.main"]
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "S5RF_SESSION_STORE": store_url,
           "S5RF_SESSION_STORE_PREFIX": key_prefix, **(extra_env or {})}
    proc = subprocess.Popen([*command, "serve", "--host", "127.0.0.1", "--port", str(port),
                             "--checkpoints", str(checkpoints.resolve())],  # run from ROOT
                            cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)
    return Replica(port, proc)


def ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def render_nginx(prefix: Path, listen_port: int, upstreams: list[str]) -> Path:
    """Write ``prefix``/nginx.conf (+ s5rf.conf from the template); returns the main file."""
    (prefix / "tmp").mkdir(parents=True, exist_ok=True)
    servers = " ".join(f"server {a} max_fails=1 fail_timeout=5s;" for a in upstreams)
    site = string.Template(TEMPLATE.read_text()).safe_substitute(
        S5RF_LISTEN=f"127.0.0.1:{listen_port}", S5RF_UPSTREAMS=servers)
    (prefix / "s5rf.conf").write_text(site)
    main = prefix / "nginx.conf"
    main.write_text(MAIN_CONF.format(prefix=prefix))
    return main


def nginx_check(binary: str, prefix: Path, conf: Path) -> subprocess.CompletedProcess[str]:
    """``nginx -t`` on a rendered configuration."""
    return subprocess.run([binary, "-t", "-p", str(prefix), "-c", str(conf)],
                          capture_output=True, text=True, check=False)


def start_nginx(binary: str, prefix: Path, conf: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([binary, "-p", str(prefix), "-c", str(conf), "-g", "daemon off;"],
                            stdout=(prefix / "stdout.log").open("ab"), stderr=subprocess.STDOUT)


@dataclasses.dataclass
class Topology:
    redis: Redis
    replicas: list[Replica]
    nginx_url: str | None
    nginx_prefix: Path | None
    key_prefix: str

    def log_mark(self) -> int:
        """How many requests nginx has logged so far (pass it to ``served_by``)."""
        return len(self._log_lines())

    def served_by(self, uri: str, since: int, timeout_s: float = 5) -> str:
        """The replica that answered the first request for ``uri`` (path and query, as sent)
        logged after ``since``.

        nginx logs a request once it is done, which may be just after the client has its
        answer (and a WebSocket only when it closes), so this waits for the line.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            for line in self._log_lines()[since:]:
                _, logged_uri, _, upstreams = line.split(" ", 3)
                if logged_uri == uri:
                    return upstreams.split(",")[-1].strip()
            if time.monotonic() > deadline:
                raise TimeoutError(f"nginx logged no request for {uri} after line {since}")
            time.sleep(0.05)

    def _log_lines(self) -> list[str]:
        assert self.nginx_prefix is not None
        return (self.nginx_prefix / "access.log").read_text().splitlines()


@contextlib.contextmanager
def topology(checkpoints: Path, workdir: Path, redis: Redis, n_replicas: int = 2,
             with_nginx: bool = True, replica_env: dict[str, str] | None = None,
             timeout_s: float = 180) -> Iterator[Topology]:
    """Replicas on ``redis`` (keys under a fresh prefix) and, if asked, nginx in front."""
    key_prefix = f"s5rf-topology-{uuid.uuid4().hex[:8]}:"
    workdir.mkdir(parents=True, exist_ok=True)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        replicas = []
        for i in range(n_replicas):  # each one stopped below even if a later one fails
            replicas.append(start_replica(checkpoints, redis.url, key_prefix,
                                          workdir / f"replica{i}.log", replica_env))
            procs.append(replicas[-1].proc)
        for r in replicas:
            wait_until(functools.partial(ready, r.url), f"replica on {r.url}", timeout_s,
                       r.proc)
        nginx_url = prefix = None
        binary = nginx_binary()
        if with_nginx and binary is not None:
            prefix, port = workdir / "nginx", free_port()
            conf = render_nginx(prefix, port, [r.address for r in replicas])
            checked = nginx_check(binary, prefix, conf)
            if checked.returncode != 0:
                raise RuntimeError(f"nginx -t failed: {checked.stderr}")
            procs.append(start_nginx(binary, prefix, conf))
            nginx_url = f"http://127.0.0.1:{port}"
            wait_until(functools.partial(ready, nginx_url), "nginx", 20, procs[-1])
        yield Topology(redis, replicas, nginx_url, prefix, key_prefix)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(15)
            if proc.poll() is None:
                proc.kill()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoints", type=Path, default=ROOT / "checkpoints")
    parser.add_argument("--redis", default="127.0.0.1:6379",
                        help="a Redis to share if it answers, else one is started")
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/s5rf-topology"))
    args = parser.parse_args()
    # `kill` stops it as Ctrl-C does: through the finally blocks that stop what it started
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    host, _, port = args.redis.partition(":")
    redis = (Redis(int(port), host=host) if redis_answers(host, int(port))
             else Redis.start(args.workdir / "redis"))
    try:
        with topology(args.checkpoints, args.workdir, redis, args.replicas) as top:
            print(f"redis    {redis.url} (keys {top.key_prefix}*)")
            for r in top.replicas:
                print(f"replica  {r.url}")
            print(f"nginx    {top.nginx_url or '(not installed)'}   logs in {args.workdir}")
            with contextlib.suppress(KeyboardInterrupt):
                while True:
                    time.sleep(3600)
    finally:
        redis.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
