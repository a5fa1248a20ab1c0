"""SCIM Bulk (RFC 7644 §3.7): read a BulkRequest, order its operations, run them.

Free of HTTP, like ``provisioning``: the handler passes the parsed body in and
sends back the BulkResponse this module builds. Three steps:

* **parse** (``parse_request``): the envelope is checked as a whole (a bad one
  fails the request), each operation on its own (a bad one fails alone, as
  RFC 7644 §3.7.3 asks). Every ``"bulkId:<id>"`` string an operation carries, in
  its ``path`` or anywhere in its ``data``, is a reference to the resource a POST
  of the same request creates.
* **plan** (``plan``): an operation runs after the POSTs it refers to, whatever
  their place in the request; otherwise request order is kept. The strongly
  connected components of the reference graph (Tarjan, iterative) are put in
  topological order by Kahn's algorithm with a min-heap on request position. A
  component of more than one operation, or one referring to itself, is a cycle:
  its operations fail with 409 and the rest of the request still runs.
* **run** (``execute``): each operation goes through ``Provisioning`` exactly as
  the single request it stands for, so it gets the same status and error. A
  reference to a POST that failed (or to no POST at all) fails with 409.

The response lists, in request order, the operations that ran; ``failOnErrors``
stops the run once that many have failed.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from scim2_models import BulkRequest as BulkRequestMessage
from scim2_models import (
    BulkResponse,
    ConflictException,
    InvalidPathException,
    InvalidSyntaxException,
    InvalidValueException,
    PayloadTooLargeException,
    SCIMException,
)

from scim_server.core.errors import error_document, error_status, scim_error
from scim_server.core.preconditions import Preconditions, etag
from scim_server.core.provisioning import Provisioning
from scim_server.core.scope import Scope
from scim_server.models import KINDS_BY_ENDPOINT, USERS, ResourceKind

Payload = dict[str, Any]

BULK_ID_PREFIX = "bulkId:"
METHODS = ("POST", "PUT", "PATCH", "DELETE")
STATUS = {"POST": 201, "PUT": 200, "PATCH": 200, "DELETE": 204}


@dataclass
class Operation:
    """One operation of the request, as far as it could be read."""

    index: int
    method: str | None = None
    """Upper-cased when it is one of ``METHODS``; otherwise whatever string was sent."""
    bulk_id: str | None = None
    version: str | None = None
    kind: ResourceKind | None = None
    target: str | None = None
    """The resource id in ``path`` (possibly ``bulkId:<id>``); None for a POST."""
    data: Any = None
    references: tuple[str, ...] = ()
    """The bulkIds the operation refers to, in ``path`` first, then in ``data``."""
    error: SCIMException | None = None
    """Why the operation cannot run at all, found while reading it."""

    @property
    def creates(self) -> str | None:
        """The bulkId this operation defines: a POST's."""
        return self.bulk_id if self.method == "POST" else None


@dataclass
class BulkRequest:
    operations: list[Operation]
    fail_on_errors: int | None = None


@dataclass(frozen=True)
class Step:
    """Operations run together in the plan: one, or the members of a reference cycle."""

    indexes: tuple[int, ...]
    cycle: bool = False


# -- parsing ---------------------------------------------------------------------


def parse_request(body: Mapping[str, Any], *, max_operations: int) -> BulkRequest:
    """Read a BulkRequest; envelope errors raise, operation errors stay with the operation.

    More than ``max_operations`` operations is 413 for the whole request, checked
    before any operation is looked at.
    """
    schemas = _field(body, "schemas")
    if schemas is not None and BulkRequestMessage.__schema__ not in (
        schemas if isinstance(schemas, list) else []
    ):
        raise InvalidValueException(detail=f"schemas must contain {BulkRequestMessage.__schema__}")
    raw_operations = _field(body, "Operations")
    if not isinstance(raw_operations, list):
        raise InvalidSyntaxException(detail="a BulkRequest with an Operations list is required")
    if len(raw_operations) > max_operations:
        raise PayloadTooLargeException(
            detail=f"the request holds {len(raw_operations)} operations; "
            f"the limit is {max_operations} (maxOperations)"
        )
    fail_on_errors = _field(body, "failOnErrors")
    if fail_on_errors is not None and (
        not isinstance(fail_on_errors, int)
        or isinstance(fail_on_errors, bool)
        or fail_on_errors < 1
    ):
        raise InvalidValueException(detail="failOnErrors is a positive integer")
    operations = [_parse_operation(index, raw) for index, raw in enumerate(raw_operations)]
    defined: set[str] = set()
    for operation in operations:
        if operation.creates is not None:
            if operation.creates in defined and operation.error is None:
                operation.error = InvalidValueException(
                    detail=f"bulkId {operation.creates!r} is already used by an earlier POST"
                )
            defined.add(operation.creates)
    return BulkRequest(operations, fail_on_errors)


def _parse_operation(index: int, raw: Any) -> Operation:
    operation = Operation(index)
    if not isinstance(raw, dict):
        operation.error = InvalidSyntaxException(detail="each operation is a JSON object")
        return operation
    method, bulk_id, version = _field(raw, "method"), _field(raw, "bulkId"), _field(raw, "version")
    if isinstance(method, str):
        operation.method = method.upper() if method.upper() in METHODS else method
    if isinstance(bulk_id, str) and bulk_id:
        operation.bulk_id = bulk_id
    try:
        if operation.method not in METHODS:
            raise InvalidValueException(detail=f"method is one of {', '.join(METHODS)}")
        if bulk_id is not None and operation.bulk_id is None:
            raise InvalidValueException(detail="bulkId is a non-empty string")
        if operation.method == "POST" and operation.bulk_id is None:
            raise InvalidValueException(detail="a POST operation requires a bulkId")
        if version is not None and not isinstance(version, str):
            raise InvalidValueException(detail="version is a string (an ETag)")
        operation.version = version
        operation.kind, operation.target = _parse_path(operation.method, _field(raw, "path"))
        operation.data = _parse_data(operation.method, raw)
    except SCIMException as error:
        operation.error = error
        return operation
    references = [] if operation.target is None else _reference(operation.target)
    references += [bulk_id for _, _, bulk_id in _reference_slots(operation.data)]
    operation.references = tuple(dict.fromkeys(references))
    return operation


def _parse_path(method: str, path: Any) -> tuple[ResourceKind, str | None]:
    if not isinstance(path, str) or not path:
        raise InvalidValueException(detail="path is required, e.g. /Users or /Users/{id}")
    endpoint, _, target = path.strip("/").partition("/")
    kind = KINDS_BY_ENDPOINT.get(endpoint)
    if kind is None or "/" in target:
        raise InvalidPathException(detail=f"path {path!r} names no Users or Groups resource")
    if method == "POST" and target:
        raise InvalidPathException(detail=f"a POST targets /{endpoint}, not {path!r}")
    if method != "POST" and not target:
        raise InvalidPathException(detail=f"a {method} targets /{endpoint}/{{id}}, not {path!r}")
    return kind, target or None


def _parse_data(method: str, raw: Mapping[str, Any]) -> Any:
    if method == "DELETE":
        return None
    data = _field(raw, "data")
    if data is None:
        raise InvalidValueException(detail=f"data is required for a {method} operation")
    if method in ("POST", "PUT") and not isinstance(data, dict):
        raise InvalidSyntaxException(detail="data must be a JSON object")
    return data


def _field(obj: Mapping[str, Any], name: str) -> Any:
    """An attribute of a raw JSON object; SCIM attribute names are case-insensitive."""
    if name in obj:
        return obj[name]
    lowered = name.lower()
    return next((value for key, value in obj.items() if key.lower() == lowered), None)


def _reference(value: str) -> list[str]:
    if value.startswith(BULK_ID_PREFIX) and len(value) > len(BULK_ID_PREFIX):
        return [value[len(BULK_ID_PREFIX) :]]
    return []


def _reference_slots(data: Any) -> Iterator[tuple[Any, Any, str]]:
    """Every ``(container, key, bulkId)`` where a string in ``data`` is ``bulkId:<bulkId>``.

    Breadth first with an explicit queue: nesting depth cannot exhaust the stack.
    """
    queue: deque[Any] = deque([data])
    while queue:
        node = queue.popleft()
        if isinstance(node, dict):
            items: Any = node.items()
        elif isinstance(node, list):
            items = enumerate(node)
        else:
            continue
        for key, value in items:
            if isinstance(value, str):
                for bulk_id in _reference(value):
                    yield node, key, bulk_id
            elif isinstance(value, dict | list):
                queue.append(value)


# -- planning --------------------------------------------------------------------


def _creators(operations: list[Operation]) -> dict[str, int]:
    """bulkId -> the POST that defines it; a repeated bulkId belongs to its first POST."""
    creators: dict[str, int] = {}
    for operation in operations:
        if operation.creates is not None:
            creators.setdefault(operation.creates, operation.index)
    return creators


def plan(operations: list[Operation]) -> list[Step]:
    """The order to run the operations in: after what they refer to, else in request order."""
    creators = _creators(operations)
    needs = [
        sorted({creators[ref] for ref in operation.references if ref in creators})
        for operation in operations
    ]
    components = _strongly_connected(needs)
    component_of = [0] * len(operations)
    for number, members in enumerate(components):
        for member in members:
            component_of[member] = number
    waiting_for = [0] * len(components)
    unblocks: list[list[int]] = [[] for _ in components]
    for number, members in enumerate(components):
        required = {component_of[n] for member in members for n in needs[member]} - {number}
        waiting_for[number] = len(required)
        for other in required:
            unblocks[other].append(number)
    # Kahn's algorithm; the heap keeps request order among the components that are ready.
    ready = [
        (members[0], number)
        for number, members in enumerate(components)
        if waiting_for[number] == 0
    ]
    heapq.heapify(ready)
    steps: list[Step] = []
    while ready:
        _, number = heapq.heappop(ready)
        members = components[number]
        cycle = len(members) > 1 or members[0] in needs[members[0]]
        steps.append(Step(tuple(members), cycle))
        for other in unblocks[number]:
            waiting_for[other] -= 1
            if waiting_for[other] == 0:
                heapq.heappush(ready, (components[other][0], other))
    return steps


def _strongly_connected(needs: list[list[int]]) -> list[list[int]]:
    """Tarjan's strongly connected components, iteratively; each component sorted."""
    count = len(needs)
    order, low = [-1] * count, [0] * count
    on_stack = [False] * count
    stack: list[int] = []
    components: list[list[int]] = []
    counter = 0
    for root in range(count):
        if order[root] != -1:
            continue
        order[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack[root] = True
        work: list[tuple[int, Iterator[int]]] = [(root, iter(needs[root]))]
        while work:
            node, successors = work[-1]
            descended = False
            for successor in successors:
                if order[successor] == -1:
                    order[successor] = low[successor] = counter
                    counter += 1
                    stack.append(successor)
                    on_stack[successor] = True
                    work.append((successor, iter(needs[successor])))
                    descended = True
                    break
                if on_stack[successor]:
                    low[node] = min(low[node], order[successor])
            if descended:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == order[node]:
                members: list[int] = []
                while True:
                    member = stack.pop()
                    on_stack[member] = False
                    members.append(member)
                    if member == node:
                        break
                components.append(sorted(members))
    return components


CYCLE_SHOWN = 4
"""How many bulkIds each half of a cycle's error names before eliding the rest."""

ELIDED = "…"


def _cycle_chains(
    operations: list[Operation], members: tuple[int, ...], creators: Mapping[str, int]
) -> dict[int, str]:
    """For each operation of a reference cycle, the bulkIds leading from it round back to it.

    Each chain goes from the operation to the cycle's first operation (its pivot) and on
    back to itself, each way a shortest one. Two breadth-first searches from the pivot,
    one along the references and one against them, give every operation both ways at
    once, and each way is shown with at most ``CYCLE_SHOWN`` bulkIds at its far end
    elided, so naming a cycle of n operations costs O(n) rather than a search and an
    n-long chain for each of them (a 1,000-operation cycle used to answer 8 MB of errors).
    """
    inside = set(members)
    refers_to = {
        node: [creators[ref] for ref in operations[node].references if creators.get(ref) in inside]
        for node in members
    }
    referred_by: dict[int, list[int]] = {node: [] for node in members}
    for node, successors in refers_to.items():
        for successor in successors:
            referred_by[successor].append(node)
    pivot = members[0]
    # node -> the node before it on a shortest way from the pivot, nearest nodes first.
    reached_from = _breadth_first(pivot, refers_to)
    # node -> the node after it on a shortest way to the pivot.
    leads_to = _breadth_first(pivot, referred_by)

    def name(node: int) -> str:
        return str(operations[node].bulk_id)

    def way_back(node: int) -> list[str]:
        """The bulkIds on the way from ``node`` to the pivot, the pivot excluded."""
        names: list[str] = []
        while node != pivot:
            if len(names) == CYCLE_SHOWN:
                return [*names, ELIDED]
            names.append(name(node))
            node = leads_to[node]
        return names

    def way_there(node: int) -> list[str]:
        """The bulkIds on the way from the pivot to ``node``, the pivot excluded."""
        names: list[str] = [name(node)]
        node = reached_from[node]
        while node != pivot:
            if len(names) == CYCLE_SHOWN:
                return [ELIDED, *reversed(names)]
            names.append(name(node))
            node = reached_from[node]
        return list(reversed(names))

    # The pivot's own chain goes round through the operation referring to it that is
    # nearest on the way from it: itself, when it refers to itself.
    referring = set(referred_by[pivot])
    last = next(node for node in reached_from if node in referring)
    chains = {pivot: [name(pivot), *(way_there(last) if last != pivot else []), name(pivot)]}
    for node in members:
        if node != pivot:
            chains[node] = [*way_back(node), name(pivot), *way_there(node)]
    return {node: " -> ".join(chain) for node, chain in chains.items()}


def _breadth_first(start: int, edges: Mapping[int, list[int]]) -> dict[int, int]:
    """Every node reachable from ``start`` -> the node it was first reached from.

    The nodes are in the order they were reached: by their distance from ``start``.
    """
    reached: dict[int, int] = {start: start}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for successor in edges[node]:
            if successor not in reached:
                reached[successor] = node
                queue.append(successor)
    return reached


# -- running ---------------------------------------------------------------------


@dataclass
class _Run:
    provisioning: Provisioning
    scope: Scope
    request: BulkRequest
    creators: dict[str, int]
    """bulkId -> index of the POST defining it (the first one carrying it)."""
    created: dict[str, str] = field(default_factory=dict)
    """bulkId -> id of the resource its POST created."""
    failed: dict[str, int] = field(default_factory=dict)
    """bulkId -> status of its POST, when that failed."""
    results: dict[int, Payload] = field(default_factory=dict)
    errors: int = 0
    stopped: bool = False


async def execute(provisioning: Provisioning, scope: Scope, request: BulkRequest) -> Payload:
    """Run the operations in plan order and answer the BulkResponse (status 200)."""
    run = _Run(provisioning, scope, request, _creators(request.operations))
    steps = plan(request.operations)
    position = 0
    while position < len(steps) and not run.stopped:
        batch = _user_creations(run, steps[position:])
        if len(batch) > 1:
            await _run_user_creations(run, batch)
            position += len(batch)
            continue
        await _run_step(run, steps[position])
        position += 1
    return {
        "schemas": [BulkResponse.__schema__],
        "Operations": [run.results[index] for index in sorted(run.results)],
    }


async def _run_step(run: _Run, step: Step) -> None:
    """Run a step's operation, or fail each operation of a cycle, until the run stops."""
    operations = run.request.operations
    chains = _cycle_chains(operations, step.indexes, run.creators) if step.cycle else {}
    for index in step.indexes:
        operation = operations[index]
        if step.cycle:
            error = ConflictException(detail=f"circular bulkId reference: {chains[index]}")
            _record(run, operation, _failure(operation, error))
        else:
            _record(run, operation, await _run_operation(run, operation))
        if run.stopped:
            break


def _record(run: _Run, operation: Operation, result: Payload) -> None:
    run.results[operation.index] = result
    status = int(result["status"])
    if status >= 400:
        run.errors += 1
        if operation.creates is not None and run.creators[operation.creates] == operation.index:
            run.failed[operation.creates] = status
        limit = run.request.fail_on_errors
        if (limit is not None and run.errors >= limit) or status == 503:
            run.stopped = True


async def _run_operation(run: _Run, operation: Operation) -> Payload:
    resource_id: str | None = None
    try:
        if operation.error is not None:
            raise operation.error
        assert operation.kind is not None and operation.method is not None
        if operation.target is not None:
            resource_id = _resolve(run, operation.target)
        _resolve_data(run, operation)
        return await _dispatch(run, operation, operation.kind, resource_id)
    except Exception as error:
        return _failed(run, operation, error, resource_id)


def _resolve_data(run: _Run, operation: Operation) -> None:
    """Replace each ``bulkId:`` reference in the operation's data by the id created for it.

    The data of an operation that refers to nothing (read when it was parsed) is not walked.
    """
    if not operation.references:
        return
    for container, key, bulk_id in list(_reference_slots(operation.data)):
        container[key] = _resolve(run, BULK_ID_PREFIX + bulk_id)


def _failed(
    run: _Run, operation: Operation, error: Exception, resource_id: str | None = None
) -> Payload:
    """The result of an operation that raised ``error``."""
    during = f"bulk operation {operation.index} ({operation.method})"
    return _failure(operation, scim_error(error, during), run.scope, resource_id)


# -- batched user creations ------------------------------------------------------------


def _user_creations(run: _Run, steps: list[Step]) -> list[Operation]:
    """The POSTs of users that open ``steps`` and can be created as one batch.

    Each is independent of the others (none refers to one created in the batch, whose id
    is only known once the batch is stored), and all of them would run one after the
    other anyway: the batch stops where ``failOnErrors`` could stop the run, were every
    operation before it to fail.
    """
    limit = run.request.fail_on_errors
    room = len(steps) if limit is None else limit - run.errors
    batch: list[Operation] = []
    created: set[str] = set()
    for step in steps[:room]:
        operation = run.request.operations[step.indexes[0]]
        if (
            step.cycle
            or operation.error is not None
            or operation.method != "POST"
            or operation.kind is not USERS
            or not created.isdisjoint(operation.references)
        ):
            break
        assert operation.bulk_id is not None
        batch.append(operation)
        created.add(operation.bulk_id)
    return batch


async def _run_user_creations(run: _Run, batch: list[Operation]) -> None:
    """Create a batch of users at once (``Writes.create_users``) and record each result.

    An operation whose references cannot be resolved fails alone, before the batch. Each
    other one gets what its own ``create`` would have answered. What fails the batch as a
    whole (the database unavailable, seats changing too fast) is each operation's error,
    recorded in request order until it stops the run, as the first would have.
    """
    results: dict[int, Payload] = {}
    ready: list[Operation] = []
    for operation in batch:
        try:
            _resolve_data(run, operation)
        except SCIMException as error:
            results[operation.index] = _failed(run, operation, error)
        else:
            ready.append(operation)
    try:
        answers = await run.provisioning.create_users(
            run.scope, [operation.data for operation in ready]
        )
    except Exception as error:
        for operation in ready:
            results[operation.index] = _failed(run, operation, error)
    else:
        for operation, answer in zip(ready, answers, strict=True):
            results[operation.index] = (
                _failed(run, operation, answer)
                if isinstance(answer, Exception)
                else _created(run, operation, USERS, answer.id, answer.version)
            )
    # Only a failure of the whole batch can stop the run before its end (see
    # ``_user_creations``), and that is before any user landed.
    for operation in batch:
        _record(run, operation, results[operation.index])
        if run.stopped:
            break


def _resolve(run: _Run, value: str) -> str:
    """A path id or data value with its ``bulkId:`` reference replaced by the created id."""
    references = _reference(value)
    if not references:
        return value
    bulk_id = references[0]
    if bulk_id in run.created:
        return run.created[bulk_id]
    if bulk_id in run.failed:
        raise ConflictException(
            detail=f"bulkId {bulk_id!r} was not created: its operation failed "
            f"with status {run.failed[bulk_id]}"
        )
    raise ConflictException(
        detail=f"bulkId {bulk_id!r} is not the bulkId of a POST in this request"
    )


async def _dispatch(
    run: _Run, operation: Operation, kind: ResourceKind, resource_id: str | None
) -> Payload:
    provisioning, scope = run.provisioning, run.scope
    preconditions = Preconditions(
        if_match=(operation.version,) if operation.version is not None else None
    )
    if operation.method == "POST":
        answer = await provisioning.create(kind, scope, operation.data)
        return _created(run, operation, kind, answer.payload["id"], answer.version)
    assert resource_id is not None
    if operation.method == "DELETE":
        await provisioning.delete(kind, scope, resource_id, preconditions)
        return _success(operation, scope.location(kind, resource_id), None)
    # A Bulk result carries the version, never the resource: nothing is rendered.
    if operation.method == "PUT":
        answer = await provisioning.replace(
            kind, scope, resource_id, operation.data, preconditions, None
        )
    else:
        answer = await provisioning.patch(
            kind, scope, resource_id, operation.data, preconditions, None
        )
    return _success(operation, scope.location(kind, resource_id), etag(answer.version))


def _created(
    run: _Run, operation: Operation, kind: ResourceKind, resource_id: str, version: int
) -> Payload:
    """The result of a POST that created ``resource_id``, which its bulkId now stands for."""
    assert operation.bulk_id is not None
    if run.creators[operation.bulk_id] == operation.index:
        run.created[operation.bulk_id] = resource_id
    return _success(operation, run.scope.location(kind, resource_id), etag(version))


def _result(operation: Operation) -> Payload:
    result: Payload = {}
    if operation.method is not None:
        result["method"] = operation.method
    if operation.bulk_id is not None:
        result["bulkId"] = operation.bulk_id
    return result


def _success(operation: Operation, location: str, version: str | None) -> Payload:
    result = _result(operation)
    if version is not None:
        result["version"] = version
    result["location"] = location
    assert operation.method is not None
    result["status"] = str(STATUS[operation.method])
    return result


def _failure(
    operation: Operation,
    error: SCIMException,
    scope: Scope | None = None,
    resource_id: str | None = None,
) -> Payload:
    result = _result(operation)
    if scope is not None and resource_id is not None and operation.kind is not None:
        result["location"] = scope.location(operation.kind, resource_id)
    result["status"] = str(error_status(error))
    result["response"] = error_document(error)
    return result
