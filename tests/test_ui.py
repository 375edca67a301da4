"""The web UI in a real headless Chromium (Debian's, driven by Playwright), served by
``covalent-core ui`` itself: the dispatches page, a running dispatch's graph, a running
node's live output, a cancel from the graph that kills the task's process, and the guards
(token, CSRF, escaping). Screenshots go to ``benchmarks/results/ui/``."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from helpers import wait_until

import covalent_core as ct
from covalent_core.sdk import ProcessHandle

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "ui"
# As root Chromium needs --no-sandbox; the rest keeps it off the (closed) network.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip

pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM), reason="Chromium is not installed (scripts/setup.sh does)"
)


@ct.electron
def chatty(n: int) -> int:
    import time

    for i in range(n):
        print(f"line {i}", flush=True)
        time.sleep(0.1)
    return n


@ct.electron
def plus_one(x: int) -> int:
    return x + 1


@ct.lattice
def talk_then_add(n: int) -> int:
    return plus_one(chatty(n))


@pytest.fixture(scope="module")
def ui() -> Iterator[str]:
    """``covalent-core ui --port 0`` on the session's store; its URL (with the token)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "covalent_core", "ui", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(r"http://127\.0\.0\.1:\d+/\?token=\S+", line)
    assert match, f"no URL in {line!r}; stderr: {proc.stderr.read() if proc.poll() else ''}"
    yield match.group(0)
    proc.terminate()
    proc.wait(30)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser, ui: str) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1400, "height": 800})
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    opened.goto(ui)  # the token becomes a cookie
    yield opened
    context.close()
    assert not errors, errors


def base(url: str) -> str:
    return url.split("/?", 1)[0]


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def test_a_running_task_is_watched_and_cancelled_from_its_graph(page, ui: str) -> None:
    dispatch_id = ct.dispatch(talk_then_add)(6000)
    try:
        page.wait_for_selector(f"tr[data-dispatch-id='{dispatch_id}']")
        row = page.locator(f"tr[data-dispatch-id='{dispatch_id}']")
        assert dispatch_id in row.inner_text(), "the full id is shown"
        shot(page, "dispatches")
        row.locator("a").click()
        page.wait_for_function("() => typeof state !== 'undefined' && state.cy !== null")
        labels = page.evaluate("() => state.cy.nodes().map((n) => n.data('label'))")
        assert "0: chatty" in labels and "2: plus_one" in labels, labels
        page.evaluate("() => { window.__sameDocument = true; }")
        # Click the running node on the canvas, where it is drawn.
        box = page.locator("#graph").bounding_box()
        where = page.evaluate("() => state.cy.getElementById('n0').renderedPosition()")
        page.mouse.click(box["x"] + where["x"], box["y"] + where["y"])
        page.wait_for_function(
            "() => (document.getElementById('stdout') || {}).textContent?.includes('line 3')"
        )
        assert ct.get_result(dispatch_id).get_node(0).status is ct.Status.RUNNING, "not live"
        shot(page, "running-node")
        handle = ct.get_result(dispatch_id).get_node(0).job_handle
        page.click("#cancel-node")
        listed = page.locator("#confirm-list").inner_text()
        assert "0: chatty" in listed and "2: plus_one" in listed, listed  # it and downstream
        page.click("#confirm-yes")
        page.wait_for_function(
            "() => document.querySelector('#panel .badge')?.textContent === 'CANCELLED'",
            timeout=60_000,
        )
        reason = page.locator("#cancel-reason").inner_text()
        assert reason, "the reason is shown"
        assert page.evaluate("() => window.__sameDocument") is True, "the page was reloaded"
        process = ProcessHandle.from_json(json.dumps(handle))
        wait_until(lambda: not process.alive(), 30, "the task's process to be dead")
        node = ct.get_result(dispatch_id).get_node(0)
        assert node.status is ct.Status.CANCELLED and node.cancel_summary == reason
        assert "line 3" in (node.stdout or ""), "what it printed is kept"
        page.wait_for_function("() => state.cy.getElementById('n2').data('status') === 'CANCELLED'")
        shot(page, "cancelled-node")
    finally:
        ct.cancel(dispatch_id)


def test_names_are_shown_as_text_never_run_as_markup(page, ui: str) -> None:
    def task() -> int:
        return 1

    task.__name__ = "<img src=x onerror=window.__pwned=1><script>window.__pwned=1</script>"
    hostile = ct.electron(task)

    def flow() -> int:
        return hostile()

    flow.__name__ = "<b>flow</b>"
    dispatch_id = ct.dispatch(ct.lattice(flow))()
    ct.get_result(dispatch_id, wait=True, timeout=60)
    page.goto(f"{base(ui)}/dispatches/{dispatch_id}")
    page.wait_for_function("() => typeof state !== 'undefined' && state.cy !== null")
    page.fill("#search", "0")
    page.press("#search", "Enter")
    page.wait_for_selector("#node-name")
    assert page.locator("#node-name").inner_text() == task.__name__
    assert page.locator("#title").inner_text() == "<b>flow</b>"
    page.goto(base(ui) + "/")
    page.wait_for_selector(f"tr[data-dispatch-id='{dispatch_id}']")
    assert page.evaluate("() => window.__pwned") is None


def test_redispatch_from_the_page_reuses_what_completed(page, ui: str) -> None:
    first = ct.dispatch(talk_then_add)(2)
    ct.get_result(first, wait=True, timeout=60)
    page.goto(f"{base(ui)}/dispatches/{first}")
    page.wait_for_function("() => typeof state !== 'undefined' && state.cy !== null")
    page.click("#redispatch")
    page.wait_for_url(re.compile(r".*/dispatches/(?!" + first + ").+"))
    second = page.url.rsplit("/", 1)[1]
    result = ct.get_result(second, wait=True, timeout=60)
    assert result.status == ct.status.COMPLETED and result.result == 3
    assert result.get_node(0).reused_from == first
    page.wait_for_function(
        "() => document.querySelector('#status .badge')?.textContent === 'COMPLETED'"
    )


def test_requests_need_the_token_and_changes_need_csrf_from_this_origin(ui: str) -> None:
    root, token = base(ui), ui.split("token=", 1)[1]
    dispatch_id = ct.dispatch(talk_then_add)(1)
    ct.get_result(dispatch_id, wait=True, timeout=60)
    with httpx.Client(base_url=root) as client:
        refused = client.get("/api/dispatches")
        assert refused.status_code == 401 and "token" in refused.json()["error"]
        assert client.get("/", params={"token": "wrong"}).status_code == 401
        # The token's first use sets the cookie (and leaves the address).
        first = client.get("/", params={"token": token})
        assert first.status_code == 303 and "token" not in first.headers["location"]
        cookie = first.cookies.get("covalent_core_ui")
        assert cookie == token and "httponly" in first.headers["set-cookie"].lower()
        client.cookies.set("covalent_core_ui", token)
        listed = client.get("/api/dispatches")
        assert listed.status_code == 200
        assert dispatch_id in {d["dispatch_id"] for d in listed.json()}
        path = f"/api/dispatches/{dispatch_id}/cancel"
        assert client.post(path, json={}).status_code == 403  # no CSRF header
        csrf = client.get("/api/session").json()["csrf"]
        cross = client.post(
            path, json={}, headers={"X-CSRF-Token": csrf, "Origin": "http://evil.example"}
        )
        assert cross.status_code == 403 and "cross-site" in cross.json()["error"]
        ours = client.post(path, json={}, headers={"X-CSRF-Token": csrf, "Origin": root})
        assert ours.status_code == 200 and ours.json()["dispatch_status"] == "COMPLETED"
        unknown = client.get("/api/dispatches/no-such-dispatch")
        assert unknown.status_code == 404 and "no-such-dispatch" in unknown.json()["error"]


def test_secrets_in_executor_options_never_reach_the_browser() -> None:
    from covalent_core.ui.data import MASK, mask

    options = {"hostname": "h", "password": "hunter2", "nested": {"api_key": "k", "port": 22}}
    assert mask(options) == {
        "hostname": "h", "password": MASK, "nested": {"api_key": MASK, "port": 22}
    }  # fmt: skip


def test_the_ui_binds_to_loopback_and_warns_beyond_it() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "covalent_core", "ui", "--host", "0.0.0.0", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        warning = proc.stdout.readline()
        assert warning.startswith("warning: serving on 0.0.0.0"), warning
        assert "token=" in proc.stdout.readline()
    finally:
        proc.terminate()
        proc.wait(30)
    assert shutil.which("chromium") or os.path.exists(CHROMIUM)


def test_a_port_in_use_is_said_plainly() -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "covalent_core", "ui", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1
    assert f"cannot serve on 127.0.0.1:{port}: Address already in use" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_dispatch_list_filters_by_status_name_and_id_prefix(ui: str) -> None:
    root, token = base(ui), ui.split("token=", 1)[1]
    done = ct.dispatch(talk_then_add)(1)
    ct.get_result(done, wait=True, timeout=60)
    running = ct.dispatch(talk_then_add)(6000)
    try:
        wait_until(lambda: ct.get_result(running).get_node(0).status is ct.Status.RUNNING, 60)
        with httpx.Client(base_url=root, headers={"Authorization": f"Bearer {token}"}) as client:

            def ids(**params: str) -> set[str]:
                reply = client.get("/api/dispatches", params=params)
                assert reply.status_code == 200, reply.text
                return {d["dispatch_id"] for d in reply.json()}

            assert running in ids(status="RUNNING") and done not in ids(status="RUNNING")
            assert done in ids(status="COMPLETED") and running not in ids(status="COMPLETED")
            assert {done, running} <= ids(name="talk_then")
            assert not ids(name="no-such-name")
            assert ids(q=done[:8]) == {done}
            listed = {d["dispatch_id"]: d for d in client.get("/api/dispatches").json()}
            assert (listed[done]["done"], listed[done]["total"]) == (3, 3)
            bad = client.get("/api/dispatches", params={"status": "SOON"})
            assert bad.status_code == 400 and "SOON" in bad.json()["error"]
            # Cancelling the running task would also cancel its dependent, not itself only.
            preview = client.get(f"/api/dispatches/{running}/nodes/0/cancel-preview").json()
            assert [n["id"] for n in preview["cancel"]][:2] == [0, 2] and preview["keep"] == []
    finally:
        ct.cancel(running)


def test_a_dispatchs_page_shows_its_deadline_ticking(page, ui: str) -> None:
    dispatch_id = ct.dispatch(talk_then_add, deadline="1h")(6000)
    try:
        page.goto(f"{base(ui)}/dispatches/{dispatch_id}")
        page.wait_for_function(
            "() => /deadline in (59m|1h 00m)/.test(document.getElementById('deadline').textContent)"
        )
    finally:
        ct.cancel(dispatch_id, wait=True, timeout=60)
    page.wait_for_function(
        "() => /^deadline \\d/.test(document.getElementById('deadline').textContent)"
    )  # ended: the deadline's time, no longer a countdown
