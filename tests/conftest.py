"""Suite-wide setup: CPU JAX, float32, a deterministic hypothesis profile, and Redis."""

import os
import shutil
from collections.abc import Iterator

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")

import pytest
from hypothesis import settings

from scripts.topology import Redis, redis_answers

settings.register_profile("ci", deadline=None, derandomize=True, max_examples=25)
settings.load_profile("ci")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Redis]:
    """The shared Redis on 127.0.0.1:6379, else one of our own (one per run), else skip."""
    if redis_answers("127.0.0.1", 6379):
        yield Redis(6379)
        return
    if shutil.which("redis-server") is None:
        pytest.skip("no Redis: nothing answers on 127.0.0.1:6379 and redis-server is not on "
                    "PATH (apt-get install redis-server)")
    server = Redis.start(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()
