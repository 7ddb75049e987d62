"""The dashboard end to end in headless Chromium: pick a sample (or upload a file), play it
over /v1/stream, and get the decision /v1/models/{name}/infer gives for the same file."""

from __future__ import annotations

import base64
import io
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.clients.proxy import Proxy
from tests.dashboard.conftest import COCHLEA, DVS, REPO, Target

ARTIFACTS = REPO / "artifacts"
# Pixels of each layer raster in the spike colour (red > 200: not text, not background).
PAINTED_PIXELS = """() => [...document.querySelectorAll('#layers canvas')].map((canvas) => {
  const {data} = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
  let n = 0;
  for (let i = 0; i < data.length; i += 4) if (data[i] > 200) n++;
  return n;
})"""


class Dashboard:
    """The page at ``url`` in a tab of ``width`` × ``height`` (a laptop's by default),
    recording console errors."""

    def __init__(self, browser: Any, url: str, width: int = 1366, height: int = 768):
        self.page = browser.new_page(viewport={"width": width, "height": height})
        self.errors: list[str] = []
        self.warnings: list[str] = []
        self.page.on("console", lambda msg: {"error": self.errors, "warning": self.warnings}
                     .get(msg.type, []).append(msg.text))
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.goto(url)

    def choose(self, model: str, sample: str | None = None) -> None:
        """Pick the model (the page loads the first one by itself) and maybe a sample."""
        page = self.page
        page.wait_for_selector("#sample option", state="attached")  # the first model loaded
        if page.input_value("#model") != model:
            page.select_option("#model", model)
        if sample is not None:
            page.wait_for_selector(f"#sample option[value='{sample}']", state="attached")
            page.select_option("#sample", sample)
            page.wait_for_selector("#play:enabled")

    def play_to_end(self, speed: str = "Infinity") -> None:
        self.page.select_option("#speed", speed)
        self.page.keyboard.press("Space")  # focus is on the speed select: Space still plays
        self.page.wait_for_selector("#decision[data-state='final']", timeout=30_000)

    def decision(self) -> tuple[int, list[float]]:
        """The top class index and the probability bars (percent)."""
        top = int(self.page.get_attribute("#decision", "data-index") or -1)
        bars = self.page.locator("#bars .value").all_inner_texts()
        return top, [float(v.rstrip("%")) for v in bars]

    def screenshot(self, name: str) -> Path:
        self.page.wait_for_timeout(100)  # one more paint of the canvases
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path))
        print(f"dashboard screenshot: {path}")
        return path


@pytest.fixture
def dashboard(browser: Any, make_live: Callable[..., str]) -> Iterator[Dashboard]:
    board = Dashboard(browser, make_live())
    yield board
    board.page.close()
    assert not board.errors + board.warnings, (board.errors, board.warnings)


def first_sample(url: str, model: str) -> tuple[dict[str, Any], bytes]:
    sample = httpx.get(f"{url}/v1/samples").json()[0]["samples"][0]
    return sample, httpx.get(f"{url}/v1/samples/{model}/{sample['file']}").content


def infer(url: str, model: str, npy: bytes) -> dict[str, Any]:
    response = httpx.post(f"{url}/v1/models/{model}/infer", content=npy,
                          headers={"content-type": "application/x-npy"}, timeout=60)
    response.raise_for_status()
    return response.json()


def assert_same_decision(board: Dashboard, expected: dict[str, Any]) -> None:
    top, bars = board.decision()
    assert top == expected["top_k"][0]["index"]
    assert bars == pytest.approx([100 * p for p in expected["probabilities"]], abs=0.06)


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


def test_shipped_samples_get_the_class_recorded_when_they_were_exported(
        target: Target, make_live: Callable[..., str]) -> None:
    """A regression check of the checkpoint and the server on its samples, right or wrong (the
    spoken-digits network gets some of its samples wrong, and index.json says which)."""
    if not target.shipped:
        pytest.skip("random-init checkpoints have no meaningful labels")
    url = make_live()
    wrong = []
    for sample in httpx.get(f"{url}/v1/samples").json()[0]["samples"]:
        npy = httpx.get(f"{url}/v1/samples/{target.model}/{sample['file']}").content
        got = infer(url, target.model, npy)["top_k"][0]
        if got["index"] != sample["predicted"]:  # the checkpoint's class at export time
            wrong.append(f"{sample['file']}: {got['label']}, recorded {sample['predicted']}")
    assert not wrong, wrong


def test_static_files_stay_inside_the_static_folder(make_live: Callable[..., str]) -> None:
    url = make_live()
    assert "javascript" in httpx.get(f"{url}/static/app.js").headers["content-type"]
    for name in ("%2e%2e", "%2e", "..%2fapp.py", "nope.js"):  # httpx resolves a bare ".."
        assert httpx.get(f"{url}/static/{name}").status_code == 404, name


def test_a_sample_played_at_max_speed_gets_the_servers_decision(
        target: Target, dashboard: Dashboard) -> None:
    url = dashboard.page.url.rstrip("/")
    sample, npy = first_sample(url, target.model)
    dashboard.choose(target.model, sample["file"])
    dashboard.play_to_end()
    dashboard.screenshot(f"dashboard-{target.model}")
    assert dashboard.page.inner_text("#status").startswith("Finished")
    assert_same_decision(dashboard, infer(url, target.model, npy))
    gauge = f's5rf_active_sessions{{model="{target.model}"}} 0.0'  # ended with the stream
    deadline = time.monotonic() + 10
    while gauge not in httpx.get(f"{url}/metrics").text:
        assert time.monotonic() < deadline, "the played session was not deleted"
        time.sleep(0.05)
    if target.shipped:  # a trained network: its layers spike and it knows the samples
        rates = dashboard.page.locator("#activity tbody td:nth-child(3)").all_inner_texts()
        assert all(float(r.replace(",", "")) > 0 for r in rates), rates
        assert all(painted > 100 for painted in dashboard.page.evaluate(PAINTED_PIXELS))
        assert dashboard.decision()[0] == sample["predicted"], sample


LAYOUT = """() => ({
  scroll: [document.documentElement.scrollWidth, document.documentElement.scrollHeight],
  canvases: [...document.querySelectorAll('canvas')].map((c) => c.clientHeight),
  panels: Object.fromEntries([...document.querySelectorAll('main .panel')].map(
    (panel) => [panel.id || panel.querySelector('h2').textContent,
                panel.getBoundingClientRect().toJSON()])),
})"""


@pytest.mark.parametrize(("width", "height"), [(1366, 768), (1366, 657), (420, 860)],
                         ids=["laptop", "laptop-browser", "phone"])
def test_a_laptop_sees_every_panel_at_once_and_a_phone_one_scrolling_column(
        target: Target, browser: Any, make_live: Callable[..., str], width: int,
        height: int) -> None:
    if target.shipped:
        pytest.skip("the layout is the page's, whatever the model: checked on the tiny ones")
    board = Dashboard(browser, make_live(), width, height)
    try:
        sample, _ = first_sample(board.page.url.rstrip("/"), target.model)
        board.choose(target.model, sample["file"])
        board.play_to_end()
        board.screenshot(f"dashboard-{target.model}-{width}px")
        layout = board.page.evaluate(LAYOUT)
    finally:
        board.page.close()
    assert not board.errors + board.warnings, (board.errors, board.warnings)
    assert layout["scroll"][0] <= width, layout  # never a sideways scroll
    assert min(layout["canvases"]) >= 60, layout  # no chart squeezed away
    panels = layout["panels"]
    decision, bars, sensor = (panels[p] for p in ("decision-panel", "bars-panel", "input-panel"))
    if width > 900:  # two columns, the whole page on the screen, every class's bar in view
        assert layout["scroll"][1] <= height and decision["left"] >= sensor["right"], layout
        assert bars["bottom"] <= height and panels["lines-panel"]["bottom"] <= height, layout
    else:  # one column of full-width panels, the decision and the bars above the input
        assert len({round(p["width"]) for p in panels.values()}) == 1, layout
        assert decision["bottom"] <= bars["top"] < bars["bottom"] <= sensor["top"], layout


CLOCK_READINGS = """() => {
  window.clockReadings = [];
  const clock = document.getElementById("clock");
  new MutationObserver(() => window.clockReadings.push(clock.textContent))
    .observe(clock, { childList: true, characterData: true, subtree: true });
}"""


def test_at_max_speed_the_clock_follows_the_answers(target: Target,
                                                    dashboard: Dashboard) -> None:
    url = dashboard.page.url.rstrip("/")
    sample, _ = first_sample(url, target.model)
    dashboard.choose(target.model, sample["file"])
    dashboard.page.evaluate(CLOCK_READINGS)
    dashboard.play_to_end()
    readings = dashboard.page.evaluate("window.clockReadings")
    played = [float(r.split(" s / ")[0]) for r in readings]
    end = float(readings[-1].split(" / ")[1].removesuffix(" s"))
    # The sensor clock is at the end at once; the display starts from what is answered (none
    # of it on the first animation frame) and steps with the replies instead. How many steps
    # it shows depends on how often the browser draws, so the test does not count them.
    assert played == sorted(played) and played[0] == 0 < played[-1] == end, readings


def test_pause_holds_the_sensor_clock_and_play_resumes(
        target: Target, dashboard: Dashboard) -> None:
    url = dashboard.page.url.rstrip("/")
    sample, npy = first_sample(url, target.model)
    dashboard.choose(target.model, sample["file"])
    page = dashboard.page
    page.select_option("#speed", "0.1")  # slow enough to pause before the end
    page.keyboard.press("Space")
    page.wait_for_selector("#decision[data-state='live']", timeout=10_000)
    page.keyboard.press("Space")
    paused = page.inner_text("#clock")
    # The footer's last reply: its round trip holds the server's time, and at 0.1× the sensor
    # clock ran past the frame's watermark by 0.1 × the round trip, give or take the clock's
    # steps at animation frames (50 ms here) and the display's rounding. The round trip is two
    # readings of performance.now(), which a page that is not cross-origin isolated gets to
    # 100 µs only: it may read up to 0.2 ms short, and each figure is rounded to 0.1 ms.
    reply, server, lag = map(float, re.fullmatch(
        r"\d+ events · \d+ bins · reply ([\d.]+) ms \(server ([\d.]+) ms\) · (\d+) ms behind "
        r"the sensor", page.inner_text("#counts")).groups())  # type: ignore[union-attr]
    assert server <= reply + 0.3 and lag <= 0.1 * (reply + 50) + 1
    page.wait_for_timeout(300)
    assert page.inner_text("#clock") == paused
    assert page.inner_text("#status") == "Paused."
    dashboard.play_to_end()
    assert_same_decision(dashboard, infer(url, target.model, npy))
    assert "behind the sensor" not in page.inner_text("#counts")  # at max the clock is ahead


def test_an_uploaded_csv_plays_like_the_npy(target: Target, dashboard: Dashboard) -> None:
    url = dashboard.page.url.rstrip("/")
    _, npy = first_sample(url, target.model)
    events = np.load(io.BytesIO(npy))
    names = events.dtype.names or ()
    table = np.stack([events[n].astype(np.int64) for n in names], axis=1)
    csv = io.StringIO()
    # as a spreadsheet saves it: byte-order mark, quoted upper-case names, a text column
    header = ",".join(f'"{n.upper()}"' for n in names) + ",note"
    np.savetxt(csv, table, fmt="%d", delimiter=",", header=header, comments="")
    text = "\ufeff" + csv.getvalue().replace("\n", ",seen\n").replace("note,seen", "note", 1)
    dashboard.choose(target.model)
    dashboard.page.set_input_files("#file", files=[
        {"name": "upload.csv", "mimeType": "text/csv", "buffer": text.encode()}])
    dashboard.page.wait_for_selector("#play:enabled")
    dashboard.play_to_end()
    assert_same_decision(dashboard, infer(url, target.model, npy))


@pytest.mark.parametrize(("body", "words"), [
    (b"t,foo\n0,1\n", "missing"),  # not the sensor's fields
    (b"t,x,y,p\n0,1,1,0\n2000,,1,1\n", 'CSV line 3: ""'),  # an empty field is no 0
    # packed, it would be cut
    (b"t,channel,x,y,p\n0,1,1,1,0\n2000,70000,70000,1,1\n",
     "value 70000 does not fit the wire format's uint16"),
    (b"t,channel,x,y,p\n0.5,1,1,1,0\n", "(t is in whole \u00b5s; these look like seconds)"),
], ids=["fields", "empty-field", "too-wide", "seconds"])
def test_a_file_the_page_cannot_play_is_refused_with_a_message(
        target: Target, dashboard: Dashboard, body: bytes, words: str) -> None:
    dashboard.choose(target.model)
    dashboard.page.set_input_files("#file", files=[
        {"name": "odd.csv", "mimeType": "text/csv", "buffer": body}])
    dashboard.page.wait_for_selector("#status.error")
    assert words in dashboard.page.inner_text("#status")
    assert dashboard.page.is_disabled("#play")


def test_a_cameras_file_is_refused_by_a_cochlea_model(target: Target,
                                                       dashboard: Dashboard) -> None:
    """Tonic's cochlea ``x`` is the channel only without a ``y``: a DVS file played as a
    cochlea recording of its x coordinates."""
    if "cochlea" not in target.model:
        pytest.skip("a cochlea model's refusal")
    dashboard.choose(target.model)
    dashboard.page.set_input_files("#file", files=[
        {"name": "dvs.csv", "mimeType": "text/csv", "buffer": b"t,x,y,p\n0,1,1,0\n"}])
    dashboard.page.wait_for_selector("#status.error")
    assert "this is a DVS recording (x, y, p); pick a DVS model" in dashboard.page.inner_text(
        "#status")


def test_stop_right_after_play_closes_quietly(target: Target, dashboard: Dashboard) -> None:
    url = dashboard.page.url.rstrip("/")
    sample, _ = first_sample(url, target.model)
    dashboard.choose(target.model, sample["file"])
    dashboard.page.evaluate(  # Stop while the socket is still connecting
        "() => ['play', 'stop'].forEach((id) => document.getElementById(id).click())")
    assert dashboard.page.inner_text("#status") == "Stopped."
    dashboard.page.wait_for_timeout(300)  # the socket opens, then closes without a warning


def test_stop_at_any_moment_of_the_open_leaves_no_session(target: Target,
                                                           dashboard: Dashboard) -> None:
    """Stop while the open message is on its way: the session it opens is deleted all the
    same once "opened" arrives (the answer to a closing socket would be lost)."""
    url = dashboard.page.url.rstrip("/")
    sample, _ = first_sample(url, target.model)
    dashboard.choose(target.model, sample["file"])
    page = dashboard.page
    for delay_ms in range(0, 40, 2):
        page.evaluate("(ms) => { document.getElementById('play').click(); "
                      "setTimeout(() => document.getElementById('stop').click(), ms); }",
                      delay_ms)
        page.wait_for_timeout(delay_ms + 20)
    deadline = time.monotonic() + 10
    while (live := active_sessions(url)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert live == 0


def active_sessions(url: str) -> float:
    metrics = httpx.get(f"{url}/metrics").text
    return sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
               if line.startswith("s5rf_active_sessions{"))


PARSE_NPY = """async ([b64, sensor]) => {
  const {makeRecording, parseNpy} = await import('/static/recording.js');
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const rec = makeRecording(parseNpy(bytes.buffer), sensor);
  return Object.fromEntries(Object.entries(rec.cols).map(([k, v]) => [k, Array.from(v)]));
}"""


@pytest.mark.parametrize("dtype", [
    np.dtype([("t", "<i8"), ("x", "<u2"), ("y", "<u2"), ("p", "u1")]),  # the wire dtype
    np.dtype([("t", ">i8"), ("x", ">i4"), ("y", ">i4"), ("p", "?")]),    # big-endian, bool
    np.dtype([("p", "i1"), ("t", "<f8"), ("x", "<u2"), ("y", "<u2")], align=True),  # padded
    np.dtype([("t", "<u4"), ("x", "<i2")]),                              # tonic's cochlea
], ids=["wire", "big-endian", "aligned", "tonic-cochlea"])
def test_npy_files_of_any_field_layout_are_read(target: Target, dtype: np.dtype,
                                                request: pytest.FixtureRequest) -> None:
    if target.model != DVS:
        pytest.skip("reading files does not depend on the model")
    dashboard: Dashboard = request.getfixturevalue("dashboard")
    sensor = "cochlea" if "y" not in (dtype.names or ()) else "dvs"
    events = np.zeros(5, dtype)
    events["t"] = [9, 3, 3, 7, 20]  # unsorted: the page sorts, stably
    events["x"] = [1, 2, 3, 4, 5]
    if sensor == "dvs":
        events["y"], events["p"] = [5, 4, 3, 2, 1], [1, 0, 1, 0, 1]
    buffer = io.BytesIO()
    np.save(buffer, events)
    got = dashboard.page.evaluate(PARSE_NPY, [base64.b64encode(buffer.getvalue()).decode(),
                                              sensor])
    order = np.argsort(events["t"], kind="stable")
    expected = {"t": events["t"][order].tolist(), "channel": events["x"][order].tolist()}
    if sensor == "dvs":
        expected = {name: events[name][order].astype(int).tolist()
                    for name in ("t", "x", "y", "p")}
    assert got == expected


def test_reloading_the_page_mid_play_ends_its_session(target: Target,
                                                      dashboard: Dashboard) -> None:
    if target.model != DVS:
        pytest.skip("leaving the page does not depend on the model")
    url = dashboard.page.url.rstrip("/")
    sample, _ = first_sample(url, target.model)
    dashboard.choose(target.model, sample["file"])
    page = dashboard.page
    page.select_option("#speed", "0.1")
    page.keyboard.press("Space")
    page.wait_for_selector("#decision[data-state='live']", timeout=10_000)
    assert active_sessions(url) == 1
    page.reload()
    deadline = time.monotonic() + 10
    while (live := active_sessions(url)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert live == 0  # not left for the idle timeout


LEAVE_MAX = """async () => {
  const {Player} = await import('/static/player.js');
  const {makeRecording} = await import('/static/recording.js');
  const model = await (await fetch('/v1/models')).json();
  const rec = makeRecording({t: [0, 50000, 100000], x: [0, 1, 2], y: [0, 1, 2], p: [0, 1, 0]},
                            'dvs');
  const player = new Player(rec, model[0], {result() {}, tick() {}, end() {}, error() {}});
  player.speed = Infinity;
  player.clock = rec.tEnd;  // where "max" holds it
  player.sentUntil = 20000;
  player.speed = 0.1;
  const clock = player.clock;
  player.stop();
  return clock;
}"""


def test_leaving_max_speed_plays_on_from_what_was_sent(target: Target,
                                                       dashboard: Dashboard) -> None:
    if target.model != DVS:
        pytest.skip("the player's clock does not depend on the model")
    dashboard.choose(target.model)
    assert dashboard.page.evaluate(LEAVE_MAX) == 20000  # not the end, where "max" held it


# Every text the status line shows, in order.
WATCH_STATUS = """() => {
  for (const [id, log] of [['status', 'statusLog'], ['decision-state', 'decisionLog']]) {
    window[log] = [];
    const el = document.getElementById(id);
    new MutationObserver(() => window[log].push(el.textContent))
      .observe(el, {childList: true, characterData: true, subtree: true});
  }
}"""


def play_through_a_break(board: Dashboard, model: str, url: str, kind: str,
                         break_it: Callable[[], None]) -> list[str]:
    """Play the first sample at sensor speed, ``break_it`` once some bins are answered, and
    check the play ends with /infer's decision on one resumed session; returns the status
    line's texts."""
    sample, npy = first_sample(url, model)
    board.choose(model, sample["file"])
    page = board.page
    page.evaluate(WATCH_STATUS)
    page.select_option("#speed", "1")
    page.keyboard.press("Space")
    page.wait_for_function("() => parseInt(document.getElementById('counts').textContent"
                           ".split(' · ')[1]) >= 100", timeout=20_000)  # 100 bins closed
    break_it()
    page.wait_for_selector("#decision[data-state='final']", timeout=30_000)
    assert page.inner_text("#status").startswith("Finished"), kind
    assert "resumed after 1 lost connection" in page.inner_text("#counts"), kind
    assert_same_decision(board, infer(url, model, npy))
    assert not board.errors + board.warnings, (board.errors, board.warnings)
    return page.evaluate("() => window.statusLog")


def test_a_connection_cut_mid_play_is_resumed_with_the_servers_decision(
        target: Target, browser: Any, make_live: Callable[..., str]) -> None:
    """The network drops the stream (no close frame): the page reconnects, resumes the
    session, resends what was not applied, and ends as an unbroken play does."""
    if target.model != COCHLEA:
        pytest.skip("resumption does not depend on the model")
    url = make_live()
    proxy = Proxy(int(url.rsplit(":", 1)[1]))
    board = Dashboard(browser, proxy.url)
    try:
        texts = play_through_a_break(board, target.model, url, "cut", proxy.cut)
        states = board.page.evaluate("() => window.decisionLog")
    finally:
        board.page.close()
        proxy.close()
    assert any("connection lost (1006): resuming the session in" in t for t in texts), texts
    assert texts[-1].startswith("Finished")
    assert active_sessions(url) == 0  # the one session, deleted at the end
    cut = states.index("reconnecting")  # not "live" while cut off
    assert "live" in states[cut:] and states[-1] == "final", states


def test_a_4503_mid_play_waits_as_asked_and_resumes(
        target: Target, browser: Any, make_live: Callable[..., str], slow_redis: Proxy,
        prefix: str) -> None:
    """The shared session store answers a save too late: the server closes with 4503 and
    ``retry after 1 s``; the page waits that long, resumes from the stored position (the
    frame may have landed) and ends with the server's decision."""
    if target.model != COCHLEA:
        pytest.skip("resumption does not depend on the model")
    url = make_live(session_store=f"redis://127.0.0.1:{slow_redis.port}",
                    session_store_prefix=prefix, session_store_timeout_s=0.3, retry_after_s=1)
    board = Dashboard(browser, url)
    try:
        texts = play_through_a_break(board, target.model, url, "4503", lambda: slow_redis.hold(
            2, seconds=1.0, marker=b"EVALSHA"))
    finally:
        board.page.close()
    waits = [t for t in texts if "resuming the session in" in t]  # counted down
    assert waits and all(t.startswith("retry after 1 s: ") for t in waits), texts
    left = [float(t.rsplit(" in ", 1)[1].removesuffix(" s…")) for t in waits]
    assert left[0] == 1.0 and left == sorted(left, reverse=True), waits


def test_what_plays_is_what_was_picked_last_and_a_new_model_starts_clear(
        target: Target, dashboard: Dashboard) -> None:
    """A slow sample picked before another must not arrive in its place; a held Space is one
    press; a model picked leaves no panel of the last play."""
    if target.model != DVS:
        pytest.skip("loading does not depend on the model")
    page, url = dashboard.page, dashboard.page.url.rstrip("/")
    slow, fast = [s["file"] for s in httpx.get(f"{url}/v1/samples").json()[0]["samples"][:2]]
    page.route(f"**/v1/samples/{target.model}/{slow}",
               lambda route: (time.sleep(1.0), route.continue_()))
    dashboard.choose(target.model)
    page.select_option("#sample", slow)  # its answer comes after fast's
    page.select_option("#sample", fast)
    page.wait_for_selector("#play:enabled")
    page.wait_for_timeout(1500)  # slow's answer has come, and was dropped
    page.select_option("#speed", "Infinity")
    page.focus("#speed")
    for _ in range(4):  # key down, then three auto-repeats
        page.keyboard.down("Space")
    page.keyboard.up("Space")
    page.wait_for_selector("#decision[data-state='final']", timeout=30_000)
    assert page.inner_text("#status").startswith(f"Finished {fast}")
    npy = httpx.get(f"{url}/v1/samples/{target.model}/{fast}").content
    assert_same_decision(dashboard, infer(url, target.model, npy))
    page.dispatch_event("#model", "change")  # a model picked (these servers serve one)
    page.wait_for_function("document.getElementById('decision').textContent === '–'")
    assert page.locator("#bars li").count() == 0 and page.inner_text("#counts") == ""
