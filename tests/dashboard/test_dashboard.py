"""The dashboard end to end in headless Chromium: pick a sample, play it at max speed over
/v1/stream, and get the decision /v1/models/{name}/infer gives for the same file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.dashboard.conftest import REPO, Target

ARTIFACTS = REPO / "artifacts"


def infer(url: str, model: str, npy: bytes) -> dict[str, Any]:
    response = httpx.post(f"{url}/v1/models/{model}/infer", content=npy,
                          headers={"content-type": "application/x-npy"}, timeout=60)
    response.raise_for_status()
    return response.json()


def test_samples_are_listed_and_served(target: Target, make_live: Callable[..., str]) -> None:
    url = make_live()
    listing = httpx.get(f"{url}/v1/samples").json()
    assert [m["model"] for m in listing] == [target.model]
    sample = listing[0]["samples"][0]
    response = httpx.get(f"{url}/v1/samples/{target.model}/{sample['file']}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-npy"
    assert response.content.startswith(b"\x93NUMPY")
    assert httpx.get(f"{url}/v1/samples/{target.model}/nope.npy").status_code == 404
    assert httpx.get(f"{url}/v1/samples/missing/{sample['file']}").status_code == 404


def test_static_files_stay_inside_the_static_folder(make_live: Callable[..., str]) -> None:
    url = make_live()
    assert "javascript" in httpx.get(f"{url}/static/app.js").headers["content-type"]
    for name in ("%2e%2e", "%2e", "..%2fapp.py", "nope.js"):  # httpx resolves a bare ".."
        assert httpx.get(f"{url}/static/{name}").status_code == 404, name


def test_dashboard_plays_a_sample_to_the_servers_decision(
        target: Target, make_live: Callable[..., str], browser: Any) -> None:
    url = make_live()
    sample = httpx.get(f"{url}/v1/samples").json()[0]["samples"][0]
    npy = httpx.get(f"{url}/v1/samples/{target.model}/{sample['file']}").content
    expected = infer(url, target.model, npy)

    page = browser.new_page(viewport={"width": 1366, "height": 768})
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(url)
        page.wait_for_selector(f"#model option[value='{target.model}']", state="attached")
        page.select_option("#model", target.model)
        page.wait_for_selector(f"#sample option[value='{sample['file']}']", state="attached")
        page.select_option("#sample", sample["file"])
        page.wait_for_selector("#play:enabled")
        page.select_option("#speed", "Infinity")
        page.keyboard.press("Space")  # focus is on the speed select: Space still plays
        page.wait_for_selector("#decision[data-state='final']", timeout=30_000)
        page.wait_for_timeout(100)  # one more paint of the canvases for the screenshot
        shot = screenshot(page, target)
        top = int(page.get_attribute("#decision", "data-index") or -1)
        shown = [float(v.rstrip("%")) for v in page.locator("#bars .value").all_inner_texts()]
        status = page.inner_text("#status")
        rates = page.locator("#activity tbody td:nth-child(3)").all_inner_texts()
    finally:
        page.close()
    print(f"dashboard screenshot: {shot}")
    assert not errors, errors
    assert status.startswith("Finished"), status
    assert top == expected["top_k"][0]["index"]
    assert shown == pytest.approx([100 * p for p in expected["probabilities"]], abs=0.06)
    if target.shipped:  # a trained network: its layers spike and it knows the samples
        assert all(float(r.replace(",", "")) > 0 for r in rates), rates
        if sample.get("label") is not None:
            assert top == sample["label"], f"{sample['file']} is a {sample['label_name']}"


def screenshot(page: Any, target: Target) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"dashboard-{target.model}.png"
    page.screenshot(path=str(path))
    return path
