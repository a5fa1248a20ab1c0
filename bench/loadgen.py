"""The load generator: one process, N concurrent workers, a bounded plan, one JSON result.

``python -m bench.loadgen PLAN OUT`` reads a plan written by the orchestrator and
writes what it measured. The same code drives every HTTP target (an aiohttp client
with ``concurrency`` connections) and the raw-PyMongo limit (one async client,
``concurrency`` tasks).

A plan is a list of *lanes*: each lane is a short sequence of requests one worker
runs in order (a member add and then its remove); lanes are independent of each
other. Workers take lanes until the plan is exhausted or the time budget has
passed; a lane in flight is finished, and anything still running at the hard
deadline (budget + grace) is cancelled and counted as such. Every request is
measured by its label, so one lane can hold two kinds of request. A request carries a
JSON ``body`` (SCIM) or a ``form`` (an HTML form post, as a browser sends SAML).
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson

Request = dict[str, Any]
Lane = list[Request]

MAX_ERROR_SAMPLES = 5
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@dataclass
class Recorder:
    """Latencies of the successful requests, by label, and the failures."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    samples: list[str] = field(default_factory=list)
    recording: bool = False
    last_done: float = 0.0
    timed_out: bool = False

    def ok(self, label: str, seconds: float) -> None:
        if self.recording:
            self.latencies.setdefault(label, []).append(seconds)
            self.last_done = time.perf_counter()

    def failed(self, label: str, detail: str) -> None:
        if self.recording:
            self.errors[label] = self.errors.get(label, 0) + 1
            self.last_done = time.perf_counter()
        if len(self.samples) < MAX_ERROR_SAMPLES:
            self.samples.append(f"{label}: {detail}"[:400])


def percentile(values: list[float], share: float) -> float | None:
    """Nearest-rank percentile of already sorted values."""
    if not values:
        return None
    rank = max(1, round(share * len(values) + 0.5))
    return values[min(rank, len(values)) - 1]


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


def summarize(recorder: Recorder, wall: float, cancelled: int) -> dict[str, Any]:
    labels: dict[str, Any] = {}
    for label in sorted(set(recorder.latencies) | set(recorder.errors)):
        values = sorted(recorder.latencies.get(label, []))
        labels[label] = {
            "ok": len(values),
            "errors": recorder.errors.get(label, 0),
            "throughput": len(values) / wall if wall > 0 else 0.0,
            "p50_ms": _ms(percentile(values, 0.50)),
            "p99_ms": _ms(percentile(values, 0.99)),
            "mean_ms": _ms(sum(values) / len(values) if values else None),
            "max_ms": _ms(values[-1] if values else None),
        }
    total_ok = sum(item["ok"] for item in labels.values())
    return {
        "wall_s": wall,
        "ok": total_ok,
        "errors": sum(recorder.errors.values()),
        "cancelled": cancelled,
        "throughput": total_ok / wall if wall > 0 else 0.0,
        "labels": labels,
        "error_samples": recorder.samples,
    }


def adapted(concurrency: int, per_request: float, budget: float) -> int:
    """Fewer connections when the pilot shows the server would queue past a quarter of the budget.

    A single-process server serves one request at a time, so ``concurrency``
    requests in flight each wait about ``concurrency`` service times.
    """
    if per_request <= 0:
        return concurrency
    return min(concurrency, max(1, int(budget / (4 * per_request))))


async def run_lanes(
    plan: dict[str, Any],
    lanes: list[Lane],
    warmup: list[Lane],
    send: Callable[[Request], Awaitable[None]],
    recorder: Recorder,
) -> dict[str, Any]:
    """Run ``warmup`` unrecorded, a pilot lane alone, then the rest within the time budget.

    The pilot is measured like any lane; when ``adaptive``, its duration decides
    how many workers run the rest (see :func:`adapted`).
    """
    concurrency, budget = plan["concurrency"], plan["time_budget"]
    grace = plan.get("grace", max(30.0, 2 * budget))

    stop_on_timeout = plan.get("stop_on_timeout", False)

    async def worker(source: Iterator[Lane], deadline: float) -> None:
        for lane in source:
            if time.perf_counter() >= deadline:
                return
            for request in lane:
                await send(request)
                if stop_on_timeout and recorder.timed_out:
                    # The server is still busy with what timed out: more would only queue.
                    return

    warm = iter(warmup)
    await asyncio.gather(*(worker(warm, float("inf")) for _ in range(concurrency)))

    recorder.recording = True
    start = time.perf_counter()
    source = iter(lanes)
    used = concurrency
    if plan.get("adaptive", True) and lanes:
        pilot = next(source)
        for request in pilot:
            await send(request)
        used = adapted(concurrency, (time.perf_counter() - start) / len(pilot), budget)
    tasks = [asyncio.create_task(worker(source, start + budget)) for _ in range(used)]
    pending: set[asyncio.Task[None]] = set()
    if tasks:
        _done, pending = await asyncio.wait(
            tasks, timeout=max(0.0, start + budget + grace - time.perf_counter())
        )
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    end = recorder.last_done if recorder.last_done > start else time.perf_counter()
    recorder.recording = False
    summary = summarize(recorder, end - start, len(pending))
    summary["concurrency_used"] = used
    return summary


# -- HTTP ---------------------------------------------------------------------------


async def run_http(plan: dict[str, Any]) -> dict[str, Any]:
    import aiohttp

    recorder = Recorder()
    base = plan["base_url"].rstrip("/")
    headers = plan["headers"]
    # A browser-facing endpoint answers a redirect: its status is what is measured.
    follow = plan.get("follow_redirects", True)

    def encoded(request: Request) -> bytes | None:
        if request.get("form") is not None:
            return urlencode(request["form"]).encode()
        return orjson.dumps(request["body"]) if request.get("body") is not None else None

    def prepared(lanes: list[Lane]) -> list[Lane]:
        # Bodies are serialized before the clock starts.
        return [[{**r, "data": encoded(r)} for r in lane] for lane in lanes]

    lanes, warmup = prepared(plan["lanes"]), prepared(plan.get("warmup", []))
    timeout = aiohttp.ClientTimeout(total=plan.get("request_timeout", 120))
    connector = aiohttp.TCPConnector(limit=plan["concurrency"], force_close=False)
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, headers=headers
    ) as session:

        async def send(request: Request) -> None:
            label = request["label"]
            began = time.perf_counter()
            try:
                async with session.request(
                    request["method"],
                    base + request["path"],
                    data=request["data"],
                    headers=FORM if request.get("form") is not None else None,
                    allow_redirects=follow,
                ) as response:
                    body = await response.read()
                    status = response.status
            except TimeoutError:
                recorder.timed_out = True
                recorder.failed(label, f"no answer within {plan.get('request_timeout', 120)} s")
                return
            except aiohttp.ClientError as error:
                recorder.failed(label, f"{type(error).__name__}: {error}")
                return
            elapsed = time.perf_counter() - began
            if status in request["expect"]:
                recorder.ok(label, elapsed)
            else:
                recorder.failed(
                    label, f"{request['method']} {request['path'][:80]} -> {status} {body[:200]!r}"
                )

        return await run_lanes(plan, lanes, warmup, send, recorder)


# -- MongoDB (the limit) --------------------------------------------------------------


def user_document(tenant: str, raw: dict[str, Any], comparison: dict[str, Any]) -> dict[str, Any]:
    """A user in the server's stored layout (storage/documents.py)."""
    now = datetime.now(UTC)
    return {
        "_id": str(uuid.uuid4()),
        "tenant": tenant,
        "meta": {"created": now, "lastModified": now, "version": 1},
        "r": raw,
        "c": comparison,
    }


async def run_mongo(plan: dict[str, Any]) -> dict[str, Any]:
    from pymongo import AsyncMongoClient, WriteConcern

    recorder = Recorder()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        plan["uri"], tz_aware=True, maxPoolSize=max(100, plan["concurrency"])
    )
    # The same write concern as the server's (storage/database.py).
    database = client.get_database(plan["database"], write_concern=WriteConcern(w=1, j=True))
    users = database["users"]
    tenant = plan["tenant"]

    def prepared(lanes: list[Lane]) -> list[Lane]:
        # Documents are built before the clock starts: only the driver call is timed.
        return [
            [
                {**r, "doc": user_document(tenant, r["raw"], r["comparison"])}
                if r["op"] == "insert_one"
                else r
                for r in lane
            ]
            for lane in lanes
        ]

    async def send(request: Request) -> None:
        label, op = request["label"], request["op"]
        began = time.perf_counter()
        try:
            if op == "insert_one":
                await users.insert_one(request["doc"])
                found = True
            elif op == "find_one_id":
                found = await users.find_one({"_id": request["key"], "tenant": tenant}) is not None
            else:
                found = (
                    await users.find_one({"tenant": tenant, "c.userName": request["key"]})
                    is not None
                )
        except Exception as error:
            recorder.failed(label, f"{type(error).__name__}: {error}")
            return
        if found:
            recorder.ok(label, time.perf_counter() - began)
        else:
            recorder.failed(label, f"{op} {request.get('key')} found nothing")

    try:
        return await run_lanes(
            plan, prepared(plan["lanes"]), prepared(plan.get("warmup", [])), send, recorder
        )
    finally:
        await client.close()


def main(argv: list[str]) -> int:
    plan = orjson.loads(Path(argv[1]).read_bytes())
    runner = run_mongo if plan["kind"] == "mongo" else run_http
    result = asyncio.run(runner(plan))
    Path(argv[2]).write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
