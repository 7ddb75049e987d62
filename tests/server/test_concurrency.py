"""50 sessions streaming at once over real uvicorn give each session's one-by-one result."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

import httpx
import numpy as np

from tests.server.conftest import COCHLEA, cochlea_recording

SESSIONS = 50


async def stream_one(client: httpx.AsyncClient, events: np.ndarray, pieces: int) -> list[float]:
    r = await client.post("/v1/sessions", json={"model": COCHLEA})
    assert r.status_code == 201, r.text
    sid, token = r.json()["id"], r.json()["token"]
    chunks = np.array_split(events, pieces)
    for i, chunk in enumerate(chunks):
        r = await client.post(
            f"/v1/sessions/{sid}/events", content=chunk.tobytes(),
            params={"flush": str(i == len(chunks) - 1).lower(), "seq": i},
            headers={"X-Session-Token": token, "content-type": "application/octet-stream"})
        assert r.status_code == 200, r.text
    await client.delete(f"/v1/sessions/{sid}", headers={"X-Session-Token": token})
    probabilities: list[float] = r.json()["probabilities"]
    return probabilities


def multi_session_calls(url: str) -> float:
    """Engine calls of the cochlea model so far that gathered more than two sessions."""
    text = httpx.get(f"{url}/metrics").text

    def sample(series: str) -> float:
        found = re.search(rf"^s5rf_batch_sessions_{re.escape(series)} (\S+)$", text, re.M)
        assert found, f"no s5rf_batch_sessions_{series} in /metrics"
        return float(found.group(1))

    model = f'model="{COCHLEA}"'
    return sample(f"count{{{model}}}") - sample(f'bucket{{le="2.0",{model}}}')


def test_concurrent_sessions_match_one_by_one(make_live: Callable[..., str]) -> None:
    live_url = make_live(batch_max_wait_ms=20.0)
    recordings = [cochlea_recording(seed=100 + i, n=200, duration_us=80_000)
                  for i in range(SESSIONS)]

    async def run() -> tuple[list[list[float]], list[list[float]]]:
        limits = httpx.Limits(max_connections=SESSIONS)
        async with httpx.AsyncClient(base_url=live_url, limits=limits, timeout=60) as client:
            before = multi_session_calls(live_url)
            together = await asyncio.gather(*(stream_one(client, rec, 4) for rec in recordings))
            # How many sessions a call gathers depends on the box's load; that it ever
            # gathers several does not.
            assert multi_session_calls(live_url) > before, \
                "the batcher never gathered several sessions into one engine call"
            alone = [await stream_one(client, rec, 1) for rec in recordings]
        return list(together), alone

    together, alone = asyncio.run(run())
    for i in range(SESSIONS):
        np.testing.assert_allclose(together[i], alone[i], atol=1e-5, err_msg=f"session {i}")
