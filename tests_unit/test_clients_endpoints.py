"""voyager.clients.endpoints: the resolver in both modes and the guard."""
import socket

import pytest
import responses

from voyager.clients import SERVICES, Endpoints, RetryPolicy, TargetNotAllowedError, Timeouts, UnreachableError
from voyager.clients.endpoints import plan_addresses
from voyager.plan.demo import build_demo_plan

SIM_MAP = {"http": "http://127.0.0.1:18080", "https": "https://127.0.0.1:18443",
           "ssh": {"127.10.20.11": 12022, "127.10.20.2": 12023}}


def test_services_table():
    assert {k: (v.scheme, v.port) for k, v in SERVICES.items()} == {
        "deploy": ("http", 80), "fisheye": ("https", 443), "tower": ("https", 443),
        "tower_http": ("http", 80), "inspector": ("https", 443), "ssh": ("ssh", 22)}


def test_plan_addresses_cover_what_the_suite_talks_to():
    addrs = plan_addresses(build_demo_plan())
    assert {"127.10.20.11", "127.10.20.12", "127.10.20.13", "127.10.20.10", "127.10.20.2",
            "127.10.21.11", "127.10.20.231", "127.10.20.239"} <= addrs
    assert "127.10.19.11" not in addrs  # BMC addresses are not client targets


def test_live_resolver():
    e = Endpoints.live(build_demo_plan())
    assert e.mode == "live"
    assert e.url("127.10.20.11", "deploy", "/api/v2/deployment/host") == "http://127.10.20.11/api/v2/deployment/host"
    assert e.url("127.10.20.10", "fisheye", "api/v2/jobs/1") == "https://127.10.20.10/api/v2/jobs/1"
    assert e.url("127.10.20.2", "tower_http", "/v2/api/login") == "http://127.10.20.2/v2/api/login"
    assert e.url("127.10.20.2", "inspector", "/api/inspector/x") == "https://127.10.20.2/api/inspector/x"
    assert e.ssh_target("127.10.20.11") == ("127.10.20.11", 22)
    s = e.session("127.10.20.11", "fisheye")
    assert "Host" not in s.headers and s.verify is False and s.trust_env is False
    assert e.session("127.10.20.11", "fisheye") is s
    assert e.session("127.10.20.11", "deploy") is not s


def test_sim_resolver_uses_loopback_ports_and_host_header():
    e = Endpoints.simulated(SIM_MAP, build_demo_plan())
    assert e.url("127.10.20.11", "deploy", "/api/v2/deployment/host") == "http://127.0.0.1:18080/api/v2/deployment/host"
    assert e.url("127.10.20.2", "tower", "/api") == "https://127.0.0.1:18443/api"
    assert e.display_url("127.10.20.2", "tower", "/api") == "https://127.10.20.2/api"
    assert e.session("127.10.20.2", "tower").headers["Host"] == "127.10.20.2"
    assert e.session("127.10.20.11", "tower").headers["Host"] == "127.10.20.11"
    assert e.ssh_target("127.10.20.11") == ("127.0.0.1", 12022)
    with pytest.raises(UnreachableError, match="SSH"):
        e.ssh_target("127.10.20.12")


@pytest.mark.parametrize("target", ["10.0.20.211", "192.168.1.1", "8.8.8.8", "127.10.20.99", "cloudtower.local"])
def test_live_guard_refuses_undeclared_targets(target):
    e = Endpoints.live(build_demo_plan())
    with pytest.raises(TargetNotAllowedError):
        e.url(target, "deploy", "/")
    with pytest.raises(TargetNotAllowedError):
        e.session(target, "fisheye")
    with pytest.raises(TargetNotAllowedError):
        e.tcp_open(target, 443)
    with pytest.raises(TargetNotAllowedError):
        e.ssh_target(target)


def test_live_without_plan_allows_nothing_but_extras():
    e = Endpoints.live(allowed=["127.0.0.5"])
    assert e.url("127.0.0.5", "deploy", "/") == "http://127.0.0.5/"
    with pytest.raises(TargetNotAllowedError):
        Endpoints.live().url("127.0.0.5", "deploy", "/")


def test_sim_guard_is_loopback_only():
    e = Endpoints.simulated(SIM_MAP)  # no plan: any loopback address
    assert e.url("127.1.2.3", "deploy", "/x").endswith("/x")
    with pytest.raises(TargetNotAllowedError, match="127.0.0.0/8"):
        e.url("10.0.20.211", "deploy", "/")
    with pytest.raises(TargetNotAllowedError):
        Endpoints.simulated({"http": "http://10.0.0.1:80"})
    with pytest.raises(TargetNotAllowedError):
        Endpoints.simulated(SIM_MAP, build_demo_plan()).url("127.99.0.1", "deploy", "/")


def test_tcp_open_live_uses_a_socket():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    try:
        e = Endpoints.live(allowed=["127.0.0.1"], timeouts=Timeouts(connect=1))
        assert e.tcp_open("127.0.0.1", port) is True
    finally:
        server.close()
    assert e.tcp_open("127.0.0.1", port) is False


@responses.activate
def test_tcp_open_sim_asks_the_simulator():
    responses.get("http://127.0.0.1:18080/__sim__/reachable", json={"open": True},
                  match=[responses.matchers.query_param_matcher({"ip": "127.10.20.2", "port": "443"})])
    responses.get("http://127.0.0.1:18080/__sim__/reachable", json={"open": False},
                  match=[responses.matchers.query_param_matcher({"ip": "127.10.20.2", "port": "22"})])
    e = Endpoints.simulated(SIM_MAP, build_demo_plan(), retry=RetryPolicy(backoff=0))
    assert e.tcp_open("127.10.20.2", 443) is True
    assert e.tcp_open("127.10.20.2", 22) is False


def test_unknown_service():
    with pytest.raises(ValueError, match="未知服务"):
        Endpoints.live(build_demo_plan()).url("127.10.20.11", "ftp", "/")
