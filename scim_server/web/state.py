"""What the aiohttp application holds for its handlers, under typed keys."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from scim_server.config import Settings
from scim_server.core.custom import CustomResources
from scim_server.core.instances import InstanceGroups
from scim_server.core.journal import ProvisioningJournal
from scim_server.core.provisioning import Provisioning
from scim_server.core.rate_limits import RateLimits
from scim_server.core.ssf.transmitter import Transmitter
from scim_server.core.sso.instances import CrossInstanceSignIn
from scim_server.core.sso.service import SingleSignOn
from scim_server.core.tenancy import Tenancy
from scim_server.core.tokens import TokenAuthority
from scim_server.core.webhooks import Webhooks
from scim_server.storage.database import Database
from scim_server.storage.tenants import TenantRepository


@dataclass
class Services:
    settings: Settings
    database: Database
    provisioning: Provisioning
    tenants: TenantRepository
    tenancy: Tenancy
    tokens: TokenAuthority
    admin_token: str
    admin_token_generated: bool
    """Whether this process generated the admin token (then it alone may show it)."""
    journal: ProvisioningJournal
    sso: SingleSignOn
    rate_limits: RateLimits
    instances: InstanceGroups
    cross_instance: CrossInstanceSignIn
    transmitter: Transmitter
    webhooks: Webhooks
    custom: CustomResources
    """Each tenant's custom resource types (Roles, Entitlements, Licenses) and their resources."""


SERVICES = web.AppKey("services", Services)
SETTINGS = web.AppKey("settings", Settings)


def services(request: web.Request) -> Services:
    # config_dict: the application's and its parents', so handlers of a sub-application
    # (the admin API) find the root's services too.
    return request.config_dict[SERVICES]
