"""The URL map: every endpoint the server answers, in one table."""

from __future__ import annotations

from aiohttp import web
from scim2_models import NotImplementedException

from scim_server.models import CUSTOM_KINDS, KINDS
from scim_server.web import (
    admin,
    bulk,
    discovery,
    group_names_admin,
    instances_admin,
    metrics,
    rate_limit_admin,
    resources_admin,
    seats_admin,
    sessions_admin,
    ssf_admin,
    sso_admin,
    user_extensions_admin,
)
from scim_server.web.crud import CustomEndpoints, ResourceEndpoints, search_all
from scim_server.web.instances import add_instance_routes
from scim_server.web.ssf import add_ssf_routes
from scim_server.web.sso import add_sso_routes
from scim_server.web.state import services
from scim_server.web.tenancy import authenticated_scope
from scim_server.web.webhooks_admin import add_webhook_routes

SCIM = "/scim/v2/{tenant}"
BULK = f"{SCIM}/Bulk"


async def not_implemented(request: web.Request) -> web.Response:
    """``/Me``: advertised as unsupported, answered 501 (RFC 7644 §3.11)."""
    await authenticated_scope(request)
    raise NotImplementedException(detail=f"{request.path.rsplit('/', 1)[-1]} is not supported")


READY_TIMEOUT_SECONDS = 1.0
"""How long ``/readyz`` waits for the database's answer to its ping."""


async def health(request: web.Request) -> web.Response:
    """``/healthz``, liveness: this process can serve. It asks nothing of the database."""
    return web.json_response({"status": "ok"})


async def ready(request: web.Request) -> web.Response:
    """``/readyz``, readiness: the database answers a ping (503 with Retry-After otherwise)."""
    await services(request).database.ping(READY_TIMEOUT_SECONDS)
    return web.json_response({"status": "ready"})


def admin_application() -> web.Application:
    """The admin API: a sub-application whose middleware requires the admin token."""
    admin_app = web.Application(middlewares=[admin.admin_token_required])
    router = admin_app.router
    router.add_post("/tenants", admin.create_tenant)
    router.add_get("/tenants", admin.list_tenants)
    router.add_delete("/tenants/{name}", admin.delete_tenant)
    router.add_post("/tenants/{name}/tokens", admin.issue_token)
    router.add_get("/tenants/{name}/tokens", admin.list_tokens)
    router.add_delete("/tenants/{name}/tokens/{token_id}", admin.revoke_token)
    router.add_get("/tenants/{name}/journal", admin.journal)
    router.add_get("/tenants/{name}/events", admin.events)

    seats = "/tenants/{name}/seats"
    router.add_get(seats, seats_admin.get_seats)
    router.add_put(seats, seats_admin.set_seats)
    router.add_post(f"{seats}/recount", seats_admin.recount_seats)

    rate_limit = "/tenants/{name}/rate-limit"
    router.add_get(rate_limit, rate_limit_admin.get_rate_limit)
    router.add_put(rate_limit, rate_limit_admin.set_rate_limit)
    router.add_delete(rate_limit, rate_limit_admin.clear_rate_limit)

    group_names = "/tenants/{name}/group-names"
    router.add_get(group_names, group_names_admin.get_group_names)
    router.add_put(group_names, group_names_admin.set_group_names)

    resource_types = "/tenants/{name}/resource-types"
    router.add_get(resource_types, resources_admin.get_resource_types)
    router.add_put(resource_types, resources_admin.set_resource_types)
    resources = "/tenants/{name}/resources/{endpoint}"
    router.add_post(resources, resources_admin.load_resources)
    router.add_delete(f"{resources}/{{id}}", resources_admin.remove_resource)

    user_extensions = "/tenants/{name}/user-extensions"
    router.add_get(user_extensions, user_extensions_admin.list_extensions)
    one_extension = f"{user_extensions}/{{urn}}"
    router.add_get(one_extension, user_extensions_admin.get_extension)
    router.add_put(one_extension, user_extensions_admin.define_extension)
    router.add_delete(one_extension, user_extensions_admin.remove_extension)

    sso = "/tenants/{name}/sso"
    router.add_get(sso, sso_admin.show)
    router.add_put(sso, sso_admin.replace_settings)
    router.add_patch(sso, sso_admin.patch_settings)
    router.add_post(f"{sso}/certificates", sso_admin.add_certificate)
    router.add_delete(f"{sso}/certificates/{{fingerprint}}", sso_admin.remove_certificate)
    router.add_post(f"{sso}/metadata", sso_admin.import_metadata)
    router.add_get(f"{sso}/log", sso_admin.log)
    router.add_post(f"{sso}/test", sso_admin.start_test)

    router.add_post("/tenants/{name}/users/{user_id}/password-reset", sso_admin.issue_reset_link)
    groups = "/instance-groups"
    router.add_post(groups, instances_admin.create_group)
    router.add_get(groups, instances_admin.list_groups)
    router.add_get(f"{groups}/{{group}}", instances_admin.get_group)
    router.add_patch(f"{groups}/{{group}}", instances_admin.update_group)
    router.add_delete(f"{groups}/{{group}}", instances_admin.delete_group)

    sessions = "/tenants/{name}/sessions"
    router.add_get(sessions, sessions_admin.list_sessions)
    router.add_delete(sessions, sessions_admin.revoke_user_sessions)
    router.add_delete(f"{sessions}/{{session_id}}", sessions_admin.revoke_session)

    ssf_admin.add_ssf_admin_routes(router)
    add_webhook_routes(router)
    return admin_app


def add_routes(app: web.Application, *, metrics_on_main_port: bool = True) -> None:
    """Every route; ``/metrics`` (behind the admin token) unless it has a listener of its own."""
    router = app.router
    router.add_get("/healthz", health)
    router.add_get("/readyz", ready)
    if metrics_on_main_port:
        router.add_get(metrics.PATH, metrics.guarded_exposition)

    app.add_subapp("/admin", admin_application())

    router.add_get(f"{SCIM}/ServiceProviderConfig", discovery.service_provider_config)
    router.add_get(f"{SCIM}/ResourceTypes", discovery.resource_types)
    router.add_get(f"{SCIM}/ResourceTypes/{{name}}", discovery.resource_type)
    router.add_get(f"{SCIM}/Schemas", discovery.schemas)
    router.add_get(f"{SCIM}/Schemas/{{urn}}", discovery.schema)

    for kind in (*KINDS, *CUSTOM_KINDS):
        endpoints = CustomEndpoints(kind) if kind.custom else ResourceEndpoints(kind)
        collection = f"{SCIM}/{kind.endpoint}"
        router.add_get(collection, endpoints.list)
        router.add_post(collection, endpoints.create)
        router.add_post(f"{collection}/.search", endpoints.search)
        # ".search" is reserved (RFC 7644 §3.4.3), never an id: another method on it is
        # answered 405 with Allow: POST rather than read as a resource that is not there.
        item = f"{collection}/{{id:(?!\\.search$)[^/]+}}"
        router.add_get(item, endpoints.get)
        router.add_put(item, endpoints.replace)
        router.add_patch(item, endpoints.patch)
        router.add_delete(item, endpoints.delete)

    router.add_post(f"{SCIM}/.search", search_all)
    router.add_route("*", f"{SCIM}/Me", not_implemented)
    router.add_route("*", f"{SCIM}/Me/{{tail:.*}}", not_implemented)
    router.add_post(BULK, bulk.bulk)

    add_instance_routes(router)  # before the catch-all of the tenants' pages
    add_sso_routes(router)
    add_ssf_routes(router)
