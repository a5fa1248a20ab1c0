"""The ``interop-draft`` suite, proven both ways.

Against our real server every check passes, or skips saying why: the draft's three rules that
contradict RFC 7644 and the IdPs skip as a ``profile deviation:``, never failing the run.
Behind a proxy that breaks one rule (tests/support/proxy.py) each check fails, and it passes
(or skips the same way) behind an honest proxy, so the violation alone is the cause. A check
that runs another suite's code under its own id is broken by that check's own violations; the
TLS check, by a proxy that listens with TLS 1.2 at most.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import ssl
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from cryptography.x509.oid import NameOID

from conformance.checks import Verdict, suites
from conformance.runner import run
from conformance.suites.interop import DEVIATION, DEVIATIONS, PROFILE
from tests.support.proxy import (
    Req,
    Resp,
    Violation,
    answer,
    is_,
    mutate,
    patch_ops,
    start_proxy,
    when,
)
from tests.support.scim import Scim
from tests.support.urns import ERROR
from tests.test_conformance import VIOLATIONS as RFC_VIOLATIONS
from tests.test_conformance_ipsie import VIOLATIONS as IPSIE_VIOLATIONS

users = is_("GET", r"/Users")
patch_user = is_("PATCH", r"/Users/.+")
SKIPPED_HERE = {
    "interop.spc-conformance-flag": "does not claim conformance",
    "interop.unknown-schema-urn": DEVIATION,
    "interop.patch-pathless-refused": DEVIATION,
    "interop.patch-replace-complex": DEVIATION,
    "interop.tls-1-3": "plain HTTP",
}
"""Checks that skip against this server, and what their reason says."""
TWINS = {
    "interop.case-rules": ("rfc.filter.eq-case-insensitive", "rfc.errors.uniqueness"),
    "interop.externalid-case-exact": ("rfc.filter.externalid-case-exact",),
    "interop.username-case-insensitive": ("rfc.filter.eq-case-insensitive",),
    "interop.unknown-attribute": ("rfc.errors.unknown-attribute",),
    "interop.pagination": ("rfc.paging.invariants",),
    "interop.patch-supported": ("rfc.patch.replace",),
    "interop.delete-deletes": ("rfc.crud.delete",),
    "interop.identifiers-reusable": ("ipsie.recreate-after-delete",),
}
"""Checks that run another suite's code, and the checks whose violations break them."""
PROVEN_APART = {"interop.tls-1-3": "test_the_tls_check_fails_a_server_that_offers_no_tls_1_3"}
"""Checks shown failing by a test of their own (a TLS listener), not through VIOLATIONS."""


def _error(status: int, scim_type: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"schemas": [ERROR], "status": str(status), "detail": "broken"}
    if scim_type:
        body["scimType"] = scim_type
    return body


def _drop_schema_extensions(body: dict[str, Any]) -> None:
    for resource_type in body.get("Resources", []):
        resource_type["schemaExtensions"] = [
            {"schema": "urn:example:scimconf:missing:2.0:User", "required": False}
        ]


def _id_ignores_case(req: Req) -> None:
    text = req.query.get("filter", "")
    if text.startswith("id eq ") and text != text.lower():
        req.query["filter"] = text.lower()


def _without_canonical_email_types(body: dict[str, Any]) -> None:
    for attribute in body.get("attributes", []):
        for sub in attribute.get("subAttributes") or []:
            if attribute.get("name") == "emails" and sub.get("name") == "type":
                sub.pop("canonicalValues", None)


def _all_of_one_page(req: Req, resp: Resp) -> None:
    body = resp.json()
    if req.query.get("count") == "100" and isinstance(body, dict):
        body["Resources"] = body.get("Resources", [])[:1]
        resp.set_json(body)


OWN: list[tuple[str, str, Violation]] = [
    (
        "interop.spc-conformance-flag",
        "interopProfileConformant not a boolean",
        when(
            is_("GET", "/ServiceProviderConfig"),
            after=mutate(lambda body: body.update(interopProfileConformant="yes")),
        ),
    ),
    (
        "interop.discovery-endpoints",
        "no /ResourceTypes",
        answer(is_("GET", "/ResourceTypes"), 404, _error(404)),
    ),
    (
        "interop.schemas-served",
        "an extension no /Schemas serves",
        when(is_("GET", "/ResourceTypes"), after=mutate(_drop_schema_extensions)),
    ),
    (
        "interop.resource-type-id",
        "resource type ids unlike their names",
        when(
            is_("GET", "/ResourceTypes"),
            after=mutate(
                lambda body: [t.update(id=t["name"].lower()) for t in body.get("Resources", [])]
            ),
        ),
    ),
    (
        "interop.type-canonical-values",
        "emails.type without canonicalValues",
        when(is_("GET", r"/Schemas/.+"), after=mutate(_without_canonical_email_types)),
    ),
    ("interop.id-case-exact", "id compared in any case", when(users, before=_id_ignores_case)),
    (
        "interop.unknown-schema-urn",
        "an unknown URN answered 500",
        answer(
            lambda req: req.method == "POST" and "urn:example:scimconf" in req.body.decode(),
            500,
            _error(500),
        ),
    ),
    (
        "interop.content-type",
        "lists as application/json",
        when(
            users, after=lambda req, resp: resp.headers.update({"Content-Type": "application/json"})
        ),
    ),
    (
        "interop.content-type",
        "a created user as application/json",
        when(
            is_("POST", "/Users"),
            after=lambda req, resp: resp.headers.update({"Content-Type": "application/json"}),
        ),
    ),
    (
        "interop.endpoint-per-type",
        "meta.location under another path",
        when(
            is_("POST", "/Groups"),
            after=mutate(
                lambda body: body["meta"].update(
                    location=body["meta"]["location"].replace("/Groups/", "/g/")
                )
            ),
        ),
    ),
    (
        "interop.filter-eq-and",
        "and ignored",
        when(
            users,
            before=lambda req: req.query.update(
                filter=req.query.get("filter", "").split(" and ")[0]
            ),
        ),
    ),
    (
        "interop.filter-unknown-attribute",
        "an unknown attribute matches nothing",
        answer(
            lambda req: users(req) and "scimconfNoSuchAttr" in req.query.get("filter", ""),
            200,
            {"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], "totalResults": 0},
        ),
    ),
    ("interop.page-size", "count=100 cut to one", when(users, after=_all_of_one_page)),
    (
        "interop.patch-pathless-refused",
        "a path-less op answered 500",
        answer(
            lambda req: patch_user(req) and "path" not in req.json()["Operations"][0],
            500,
            _error(500),
        ),
    ),
    (
        "interop.patch-add-is-replace",
        "add keeps the old value",
        when(
            patch_user,
            before=patch_ops(
                lambda ops: [
                    {"op": "replace", "path": "nickName", "value": "x"} if o["op"] == "add" else o
                    for o in ops
                ]
            ),
        ),
    ),
    (
        "interop.patch-replace-complex",
        "replace of name ignored",
        when(
            patch_user,
            before=patch_ops(
                lambda ops: [
                    {**o, "path": "nickName", "value": "x"} if o.get("path") == "name" else o
                    for o in ops
                ]
            ),
        ),
    ),
    (
        "interop.patch-add-complex",
        "add of name replaces it",
        when(
            patch_user,
            before=patch_ops(
                lambda ops: [
                    {"op": "remove", "path": "name"} if o.get("path") == "name" else o for o in ops
                ]
            ),
        ),
    ),
    (
        "interop.patch-replace-multi-valued",
        "replace of emails appends",
        when(patch_user, before=patch_ops(lambda ops: [{**o, "op": "add"} for o in ops])),
    ),
    (
        "interop.patch-add-multi-valued",
        "add of emails replaces",
        when(patch_user, before=patch_ops(lambda ops: [{**o, "op": "replace"} for o in ops])),
    ),
    (
        "interop.patch-filter-without-sub-attribute",
        "a value path without a sub-attribute answered 500",
        answer(
            lambda req: (
                patch_user(req) and req.json()["Operations"][0].get("path", "").endswith("]")
            ),
            500,
            _error(500),
        ),
    ),
    (
        "interop.patch-never-deletes",
        "a deactivating PATCH deletes",
        answer(
            lambda req: req.method == "GET" and req.path.startswith("/Users/"),
            404,
            _error(404),
        ),
    ),
    (
        "interop.deleted-is-gone",
        "a PUT of a deleted user recreates it",
        answer(is_("PUT", r"/Users/.+"), 200, {"id": "back"}),
    ),
    (
        "interop.uniqueness-on-patch",
        "a PATCH to a taken displayName accepted",
        answer(is_("PATCH", r"/Groups/.+"), 204, b""),
    ),
]
VIOLATIONS: list[tuple[str, str, Violation]] = OWN + [
    (interop_id, f"{check_id}: {name}", violation)
    for interop_id, twins in TWINS.items()
    for check_id, name, violation in [*RFC_VIOLATIONS, *IPSIE_VIOLATIONS]
    if check_id in twins
]


@pytest.fixture
def real_base(client: TestClient, scim: Scim) -> str:
    return str(client.make_url("")).rstrip("/") + scim.base


def test_every_check_fails_behind_a_violation_or_a_test_of_its_own() -> None:
    every = {c.id for c in suites()["interop-draft"]}
    assert len(every) == 31
    assert every == {c for c, _, _ in VIOLATIONS} | set(PROVEN_APART)
    assert all(test in globals() for test in PROVEN_APART.values())
    assert all(any(c == twin for c, _, _ in VIOLATIONS) for twin in TWINS)


def test_the_deviations_count_apart_from_the_profile() -> None:
    checks = suites()["interop-draft"]
    deviations = {c.id for c in checks if c.profiles == DEVIATIONS}
    assert deviations == {id for id, reason in SKIPPED_HERE.items() if reason == DEVIATION}
    assert all(c.profiles in (PROFILE, DEVIATIONS) for c in checks)
    assert all(c.source.startswith("draft-zollner-scim-interop-profile-02 §") for c in checks)


async def test_every_check_passes_or_skips_saying_why_against_our_server(
    real_base: str, scim: Scim
) -> None:
    result = await run(real_base, scim.token, ["interop-draft"])
    skipped = {r.check.id: r.reason for r in result.results if r.verdict is Verdict.SKIP}
    assert {r.check.id for r in result.results if r.verdict is Verdict.PASS} == {
        c.id for c in suites()["interop-draft"]
    } - set(SKIPPED_HERE)
    assert set(skipped) == set(SKIPPED_HERE)
    assert all(SKIPPED_HERE[id] in reason for id, reason in skipped.items())
    assert result.failed is False
    assert result.profile_verdicts() == {
        "Interop 02": "Interop 02: 26/28 pass, 2 skipped",
        "Interop 02 deviations": "Interop 02 deviations: 0/3 pass, 3 skipped",
    }
    assert result.leftovers == []


@pytest.mark.parametrize(
    ("check_id", "violation"),
    [(c, v) for c, _, v in VIOLATIONS],
    ids=[f"{c}:{name}" for c, name, _ in VIOLATIONS],
)
async def test_a_broken_server_fails_the_check(
    aiohttp_server: Any, real_base: str, scim: Scim, check_id: str, violation: Violation
) -> None:
    honest = await start_proxy(aiohttp_server, real_base, when(lambda req: False))
    fine = await run(honest, scim.token, ["interop-draft"], only=[check_id])
    expected = Verdict.SKIP if check_id in SKIPPED_HERE else Verdict.PASS
    assert [r.verdict for r in fine.results] == [expected], fine.results[0].reason
    broken = await start_proxy(aiohttp_server, real_base, violation)
    result = await run(broken, scim.token, ["interop-draft"], only=[check_id])
    (verdict,) = result.results
    assert (verdict.verdict, verdict.reason != "") == (Verdict.FAIL, True), verdict.reason
    assert verdict.transcript, "a failure must carry its evidence"


# --- TLS 1.3: the runner against a TLS listener ---------------------------------------------


def tls_files(directory: Path) -> tuple[Path, Path]:
    """A key and a self-signed certificate for 127.0.0.1 (the runner must trust it)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_file, cert_file = directory / "key.pem", directory / "cert.pem"
    key_file.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    cert_file.write_bytes(certificate.public_bytes(Encoding.PEM))
    return key_file, cert_file


@pytest.mark.parametrize(
    ("highest", "verdict"),
    [(ssl.TLSVersion.TLSv1_3, "pass"), (ssl.TLSVersion.TLSv1_2, "fail")],
    ids=["TLS 1.3 offered", "TLS 1.2 at most"],
)
async def test_the_tls_check_fails_a_server_that_offers_no_tls_1_3(
    aiohttp_server: Any,
    real_base: str,
    scim: Scim,
    tmp_path: Path,
    highest: ssl.TLSVersion,
    verdict: str,
) -> None:
    key_file, cert_file = tls_files(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    context.maximum_version = highest
    proxy = await start_proxy(aiohttp_server, real_base, when(lambda req: False), ssl=context)
    assert proxy.startswith("https://")
    report = tmp_path / "report.json"
    # A run of its own: the client trusts the certificate through SSL_CERT_FILE, which the
    # TLS library reads once, when the runner's HTTP client is first imported.
    runner = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "conformance.cli",
        "--base-url",
        proxy,
        "--suite",
        "interop-draft",
        "--check",
        "interop.tls-1-3",
        "--json",
        str(report),
        env={**os.environ, "SSL_CERT_FILE": str(cert_file), "SCIM_TOKEN": scim.token},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(runner.communicate(), 120)
    assert report.is_file(), output.decode()
    (result,) = json.loads(report.read_text())["results"]
    assert result["verdict"] == verdict, result["reason"]
    if verdict == "fail":
        assert result["reason"] == "the connection negotiated TLSv1.2, not TLSv1.3"
