"""The Bulk planner (``scim_server.core.bulk``): in which order a BulkRequest's operations run.

Operations run after the POSTs they refer to (in ``path`` or anywhere in ``data``), otherwise
in request order; a reference cycle fails exactly its own operations with 409; a reference to
a POST that failed fails with 409. All of it is decided before any resource is written, so it
is tested here on ``parse_request``, ``plan`` and, for the outcomes that never reach storage,
``execute`` with a storage layer that must not be called.
"""

from __future__ import annotations

import asyncio
from collections import deque
from itertools import pairwise
from typing import Any, NoReturn, cast

from hypothesis import given, settings
from hypothesis import strategies as st

from scim_server.core.bulk import BulkRequest, Step, execute, parse_request, plan
from scim_server.core.provisioning import Provisioning
from scim_server.core.scope import Scope
from scim_server.storage.events import Client

SCOPE = Scope("acme", "https://scim.example/scim/v2/acme", Client("scim"))
CHAIN = 10_000


class _NoStorage:
    """Stands where ``Provisioning`` goes: these outcomes must be decided without storage."""

    def __getattr__(self, name: str) -> NoReturn:
        raise AssertionError(f"the bulk run reached storage ({name})")


def post_group(bulk_id: str, *refers_to: str, path: str = "/Groups") -> dict[str, Any]:
    """A POST of a group whose members are the resources other POSTs create."""
    members = [{"value": f"bulkId:{ref}"} for ref in refers_to]
    return {
        "method": "POST",
        "path": path,
        "bulkId": bulk_id,
        "data": {"displayName": bulk_id, "members": members},
    }


def patch_user(bulk_id: str) -> dict[str, Any]:
    """A PATCH of the user a POST of the request creates, referred to in ``path``."""
    return {"method": "PATCH", "path": f"/Users/bulkId:{bulk_id}", "data": {"Operations": []}}


def post_user(bulk_id: str) -> dict[str, Any]:
    return {"method": "POST", "path": "/Users", "bulkId": bulk_id, "data": {"userName": bulk_id}}


def request(*operations: dict[str, Any]) -> BulkRequest:
    return parse_request({"Operations": list(operations)}, max_operations=len(operations))


def order(steps: list[Step]) -> list[int]:
    return [index for step in steps for index in step.indexes]


def cycles(steps: list[Step]) -> list[tuple[int, ...]]:
    return [step.indexes for step in steps if step.cycle]


def run(bulk: BulkRequest) -> list[dict[str, Any]]:
    """The BulkResponse's operations, for a request that must never reach storage."""
    response = asyncio.run(execute(cast(Provisioning, _NoStorage()), SCOPE, bulk))
    return cast(list[dict[str, Any]], response["Operations"])


# --- order ---------------------------------------------------------------------------------


def test_without_references_the_request_order_is_kept() -> None:
    steps = plan(request(post_user("a"), post_user("b"), post_user("c")).operations)
    assert order(steps) == [0, 1, 2]
    assert cycles(steps) == []


def test_a_forward_reference_runs_after_the_post_it_names() -> None:
    bulk = request(post_group("admins", "alice"), post_user("bob"), post_user("alice"))
    assert order(plan(bulk.operations)) == [1, 2, 0]


def test_a_reference_in_the_path_orders_like_one_in_the_data() -> None:
    bulk = request(patch_user("alice"), post_user("bob"), post_user("alice"))
    assert order(plan(bulk.operations)) == [1, 2, 0]


def test_a_backward_reference_keeps_the_request_order() -> None:
    bulk = request(post_user("alice"), post_group("admins", "alice"), patch_user("alice"))
    assert order(plan(bulk.operations)) == [0, 1, 2]


def test_an_operation_waits_for_every_post_it_names_and_no_longer() -> None:
    bulk = request(
        post_group("all", "carol", "alice"),
        post_user("bob"),
        post_user("carol"),
        post_user("dave"),
        post_user("alice"),
    )
    assert order(plan(bulk.operations)) == [1, 2, 3, 4, 0]


def test_a_reference_to_no_post_of_the_request_does_not_move_the_operation() -> None:
    bulk = request(patch_user("nobody"), post_user("alice"))
    assert order(plan(bulk.operations)) == [0, 1]


def test_a_reference_chain_of_ten_thousand_runs_back_to_front() -> None:
    """Operation i refers to operation i + 1: the stack must not bound the chain's length."""
    bulk = request(
        *(post_group(f"g{i}", f"g{i + 1}") for i in range(CHAIN - 1)), post_user(f"g{CHAIN - 1}")
    )
    steps = plan(bulk.operations)
    assert order(steps) == list(reversed(range(CHAIN)))
    assert cycles(steps) == []


def test_a_reference_nested_ten_thousand_levels_deep_in_data_is_found() -> None:
    data: Any = "bulkId:alice"
    for _ in range(CHAIN):
        data = {"nested": [data]}
    bulk = request({"method": "PATCH", "path": "/Users/x", "data": data}, post_user("alice"))
    assert bulk.operations[0].references == ("alice",)
    assert order(plan(bulk.operations)) == [1, 0]


# --- cycles --------------------------------------------------------------------------------


def test_a_cycle_fails_exactly_its_operations_and_the_rest_keeps_its_order() -> None:
    bulk = request(
        post_user("alice"),
        post_group("a", "b"),
        post_user("bob"),
        post_group("b", "a"),
        post_group("c", "alice"),
    )
    steps = plan(bulk.operations)
    assert cycles(steps) == [(1, 3)]
    assert order(steps) == [0, 1, 3, 2, 4]


def test_an_operation_referring_to_its_own_post_is_a_cycle() -> None:
    steps = plan(request(post_user("alice"), post_group("self", "self")).operations)
    assert cycles(steps) == [(1,)]


def test_what_depends_on_a_cycle_is_not_part_of_it() -> None:
    bulk = request(post_group("a", "b"), post_group("b", "a"), patch_user("a"))
    steps = plan(bulk.operations)
    assert cycles(steps) == [(0, 1)]
    assert order(steps) == [0, 1, 2]


def test_a_cycle_answers_409_naming_the_cycle_and_what_refers_to_it_409_too() -> None:
    results = run(request(post_group("a", "b"), post_group("b", "a"), patch_user("a")))
    assert [r["status"] for r in results] == ["409", "409", "409"]
    assert results[0]["response"]["detail"] == "circular bulkId reference: a -> b -> a"
    assert results[1]["response"]["detail"] == "circular bulkId reference: b -> a -> b"
    assert "'a' was not created" in results[2]["response"]["detail"]


def test_a_cycle_of_ten_thousand_is_one_failing_step() -> None:
    bulk = request(*(post_group(f"g{i}", f"g{(i + 1) % CHAIN}") for i in range(CHAIN)))
    assert plan(bulk.operations) == [Step(tuple(range(CHAIN)), cycle=True)]


# --- references to a failed POST -----------------------------------------------------------


def test_a_reference_to_a_post_that_failed_answers_409_with_that_failure() -> None:
    results = run(
        request(
            patch_user("alice"),
            post_group("admins", "alice"),
            post_group("alice", path="/Nowhere"),
        )
    )
    assert [r["status"] for r in results] == ["409", "409", "400"]
    for result in results[:2]:
        assert result["response"]["detail"] == (
            "bulkId 'alice' was not created: its operation failed with status 400"
        )


def test_a_failure_at_the_end_of_a_reference_chain_fails_the_whole_chain() -> None:
    length = 1_000
    bulk = request(
        *(post_group(f"g{i}", f"g{i + 1}") for i in range(length - 1)),
        post_group(f"g{length - 1}", path="/Nowhere"),
    )
    assert [r["status"] for r in run(bulk)] == ["409"] * (length - 1) + ["400"]


def test_fail_on_errors_stops_the_run_and_lists_what_ran() -> None:
    bulk = parse_request(
        {
            "failOnErrors": 2,
            "Operations": [post_group("a", "b"), post_group("b", "a"), patch_user("y")],
        },
        max_operations=3,
    )
    assert [r.get("bulkId") for r in run(bulk)] == ["a", "b"]


# --- properties ----------------------------------------------------------------------------


@st.composite
def reference_graphs(draw: st.DrawFn) -> list[list[int]]:
    """For each POST of a request, the POSTs its data refers to (cycles included)."""
    size = draw(st.integers(min_value=1, max_value=25))
    targets = st.lists(st.integers(min_value=0, max_value=size - 1), max_size=4)
    return draw(st.lists(targets, min_size=size, max_size=size))


def reaches(graph: list[list[int]], start: int, goal: int) -> bool:
    """Whether following references from ``start`` leads to ``goal`` (one step at least)."""
    seen: set[int] = set()
    queue = deque(graph[start])
    while queue:
        node = queue.popleft()
        if node == goal:
            return True
        if node not in seen:
            seen.add(node)
            queue.extend(graph[node])
    return False


def graph_request(graph: list[list[int]]) -> BulkRequest:
    return request(*(post_group(f"n{i}", *(f"n{t}" for t in refs)) for i, refs in enumerate(graph)))


@settings(max_examples=100, deadline=None)
@given(reference_graphs())
def test_the_plan_runs_every_operation_once_after_what_it_refers_to_else_in_request_order(
    graph: list[list[int]],
) -> None:
    steps = plan(graph_request(graph).operations)
    position = {index: place for place, index in enumerate(order(steps))}
    assert sorted(position) == list(range(len(graph)))
    in_cycle = {index for index in position if reaches(graph, index, index)}
    for step in steps:
        assert set(step.indexes) <= in_cycle if step.cycle else not in_cycle & set(step.indexes)
        for index in step.indexes:
            if step.cycle:
                # One step is one cycle: each of its operations refers round to every other.
                assert all(reaches(graph, index, other) for other in step.indexes)
            else:
                assert all(position[target] < position[index] for target in graph[index])
    # Only a reference moves an operation: one that refers to nothing runs before every
    # later operation of the request that is not caught in a cycle.
    for free in (index for index, refs in enumerate(graph) if not refs):
        for later in range(free + 1, len(graph)):
            if later not in in_cycle:
                assert position[free] < position[later]


def test_each_error_of_a_long_cycle_names_it_in_a_few_bulk_ids() -> None:
    """Naming the whole cycle in each of its operations' errors is quadratic in its length."""
    length = 1_000  # maxOperations by default
    bulk = request(*(post_group(f"g{i}", f"g{(i + 1) % length}") for i in range(length)))
    details = [result["response"]["detail"] for result in run(bulk)]
    assert len(details) == length
    assert max(len(detail) for detail in details) < 250
    assert details[500].startswith("circular bulkId reference: g500 -> g501 -> g502 -> ")
    assert details[500].endswith(" -> g498 -> g499 -> g500")


@settings(max_examples=100, deadline=None)
@given(reference_graphs())
def test_a_cycle_error_follows_references_from_its_operation_round_back_to_it(
    graph: list[list[int]],
) -> None:
    in_cycle = {index for index in range(len(graph)) if reaches(graph, index, index)}
    # The operations outside a cycle fail on their path, so that nothing reaches storage.
    bulk = request(
        *(
            post_group(f"n{i}", *(f"n{t}" for t in refs), path="/Groups" if i in in_cycle else "/")
            for i, refs in enumerate(graph)
        )
    )
    for index, result in enumerate(run(bulk)):
        if index not in in_cycle:
            continue
        prefix = "circular bulkId reference: "
        assert result["status"] == "409" and result["response"]["detail"].startswith(prefix)
        chain = result["response"]["detail"].removeprefix(prefix).split(" -> ")
        assert chain[0] == chain[-1] == f"n{index}"
        for here, there in pairwise(chain):
            if "…" not in (here, there):
                assert int(there[1:]) in graph[int(here[1:])]
