"""The shared poller: one status call for many jobs, bound to the event loop that waits."""

from __future__ import annotations

import asyncio
import gc

from covalent_core.sdk import shared_poller


class Resource:
    """A scheduler as a poller sees it: jobs end when told to; every question is recorded."""

    def __init__(self) -> None:
        self.finished: set[str] = set()
        self.asked: list[list[str]] = []

    async def ended(self, ids: list[str]) -> dict[str, str]:
        self.asked.append(sorted(ids))
        return {job: "done" for job in ids if job in self.finished}


def test_a_poller_serves_each_new_event_loop_even_when_an_old_one_was_abandoned() -> None:
    resource = Resource()

    async def abandon(job: str) -> None:
        # A waiter still waiting when its loop ends (asyncio.run cancels it); its job ends later.
        asyncio.get_running_loop().create_task(
            shared_poller("cluster", resource.ended, 0.01).wait(job)
        )
        await asyncio.sleep(0.05)

    async def wait_for(job: str) -> str:
        return await asyncio.wait_for(
            shared_poller("cluster", resource.ended, 0.01).wait(job), timeout=10
        )

    for round_ in range(10):  # a new loop often has a dead loop's id
        asyncio.run(abandon(f"old-{round_}"))
        gc.collect()
        resource.finished.update({f"old-{round_}", f"job-{round_}"})
        assert asyncio.run(wait_for(f"job-{round_}")) == "done"


async def polls(resource: Resource, count: int) -> None:
    """Return once the poller has asked ``count`` more times (however slow the machine)."""
    target = len(resource.asked) + count

    async def asked() -> None:
        while len(resource.asked) < target:
            await asyncio.sleep(0.005)

    await asyncio.wait_for(asked(), 30)


def test_a_job_nobody_waits_on_any_more_is_no_longer_asked_about() -> None:
    resource = Resource()

    async def scenario() -> None:
        poller = shared_poller("queue", resource.ended, 0.01)
        forgotten = asyncio.create_task(poller.wait("forgotten"))
        kept = asyncio.create_task(poller.wait("kept"))
        await polls(resource, 1)
        forgotten.cancel()
        await asyncio.gather(forgotten, return_exceptions=True)
        resource.asked.clear()
        await polls(resource, 2)
        assert all(ids == ["kept"] for ids in resource.asked)
        resource.finished.add("kept")
        assert await asyncio.wait_for(kept, timeout=30) == "done"

    asyncio.run(scenario())


def test_two_waiters_on_one_job_both_get_its_end() -> None:
    resource = Resource()

    async def scenario() -> None:
        poller = shared_poller("shared", resource.ended, 0.01)
        first = asyncio.create_task(poller.wait("j"))
        second = asyncio.create_task(poller.wait("j"))
        await polls(resource, 1)
        first.cancel()
        await asyncio.gather(first, return_exceptions=True)
        resource.finished.add("j")
        assert await asyncio.wait_for(second, timeout=30) == "done"

    asyncio.run(scenario())
