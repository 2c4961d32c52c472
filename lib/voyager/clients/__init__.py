"""One way to talk to a cluster: resolver, REST layer, API clients, SSH.

See docs/architecture.md (Clients). Every URL and socket comes from
:class:`Endpoints`; every HTTP call goes through :class:`HttpClient` (retries,
timeouts, TLS pinning, evidence, redaction).
"""
from voyager.clients.adapter import RetryPolicy
from voyager.clients.endpoints import SERVICES, Endpoints, Timeouts, plan_addresses
from voyager.clients.errors import (
    ApiError,
    CertificateMismatchError,
    ClientError,
    CommandError,
    GraphQLError,
    HostKeyError,
    TargetNotAllowedError,
    TransportError,
    UnreachableError,
)
from voyager.clients.fisheye import DEPLOY_TOKEN, FisheyeClient
from voyager.clients.http import HttpClient
from voyager.clients.inspector import InspectorClient
from voyager.clients.ssh import CommandResult, SSHClient
from voyager.clients.tower import AlreadyExists, TowerClient, is_already_exists

__all__ = [
    "SERVICES", "Endpoints", "Timeouts", "RetryPolicy", "plan_addresses", "HttpClient",
    "FisheyeClient", "DEPLOY_TOKEN", "TowerClient", "AlreadyExists", "is_already_exists",
    "InspectorClient", "SSHClient", "CommandResult",
    "ClientError", "ApiError", "GraphQLError", "TransportError", "UnreachableError",
    "TargetNotAllowedError", "CertificateMismatchError", "HostKeyError", "CommandError",
]
