"""A stalled service writes every thread's stack to its output: what it waited on is seen."""

from __future__ import annotations

import asyncio
import time

import pytest

from covalent_core.service import stalls


def test_a_blocked_event_loop_writes_the_stacks(monkeypatch, capfd) -> None:
    monkeypatch.setattr(stalls, "LOOP_STALL", 0.3)
    monkeypatch.setattr(stalls, "REARM_EVERY", 0.05)

    def blocking_call_on_the_loop() -> None:
        time.sleep(1.0)

    async def main() -> None:
        watch = asyncio.create_task(stalls.watch_loop())
        await asyncio.sleep(0.2)
        blocking_call_on_the_loop()
        watch.cancel()

    asyncio.run(main())
    assert "blocking_call_on_the_loop" in capfd.readouterr().err


def test_a_quick_loop_writes_nothing(monkeypatch, capfd) -> None:
    monkeypatch.setattr(stalls, "LOOP_STALL", 0.5)
    monkeypatch.setattr(stalls, "REARM_EVERY", 0.05)

    async def main() -> None:
        watch = asyncio.create_task(stalls.watch_loop())
        await asyncio.sleep(1.0)
        watch.cancel()

    asyncio.run(main())
    time.sleep(0.7)  # past the last watchdog's time: cancelled, it wrote nothing
    assert capfd.readouterr().err == ""


def test_a_slow_request_writes_the_stacks_and_still_gets_its_answer(monkeypatch, capfd) -> None:
    monkeypatch.setattr(stalls, "SLOW_REQUEST", 0.2)

    def waiting_in_a_thread() -> int:
        time.sleep(0.6)
        return 7

    async def main() -> int:
        return await stalls.timed("wake", asyncio.to_thread(waiting_in_a_thread))

    assert asyncio.run(main()) == 7
    err = capfd.readouterr().err
    assert "request 'wake' unanswered" in err and "waiting_in_a_thread" in err


def test_a_quick_request_is_answered_silently(capfd) -> None:
    async def main() -> int:
        return await stalls.timed("ping", asyncio.sleep(0, 3))

    assert asyncio.run(main()) == 3
    assert capfd.readouterr().err == ""


def test_a_cancelled_request_cancels_its_work() -> None:
    async def main() -> bool:
        work = asyncio.ensure_future(asyncio.sleep(30))
        request = asyncio.create_task(stalls.timed("wake", work))
        await asyncio.sleep(0.05)
        request.cancel()
        with pytest.raises(asyncio.CancelledError):
            await request
        return work.cancelled()

    assert asyncio.run(main())
