"""CloudTower's where/orderBy/first/skip grammar (voyager.sim.tower.where)."""
from __future__ import annotations

import pytest

from voyager.sim.tower.where import WhereError, matches, order, query

CLUSTERS = [
    {"id": "c1", "name": "alpha", "host_num": 3, "connect_state": "CONNECTED",
     "datacenters": [{"id": "d1", "name": "DC1"}], "settings": {"id": "s1"}, "iscsi_vip": None},
    {"id": "c2", "name": "beta", "host_num": 4, "connect_state": "INITIALIZING",
     "datacenters": [], "settings": {"id": "s2"}, "iscsi_vip": "10.0.0.9"},
    {"id": "c3", "name": "gamma-x", "host_num": 5, "connect_state": "CONNECTED",
     "datacenters": [{"id": "d2", "name": "DC2"}], "settings": None, "iscsi_vip": None},
]


def ids(items):
    return [i["id"] for i in items]


@pytest.mark.parametrize("where, expected", [
    (None, ["c1", "c2", "c3"]),
    ({}, ["c1", "c2", "c3"]),
    ({"id": "c2"}, ["c2"]),
    ({"iscsi_vip": None}, ["c1", "c3"]),
    ({"id_in": ["c1", "c3", "zz"]}, ["c1", "c3"]),
    ({"id_not_in": ["c1"]}, ["c2", "c3"]),
    ({"name_not": "alpha"}, ["c2", "c3"]),
    ({"name_contains": "et"}, ["c2"]),
    ({"name_not_contains": "a"}, []),
    ({"name_starts_with": "ga"}, ["c3"]),
    ({"name_not_starts_with": "ga"}, ["c1", "c2"]),
    ({"name_ends_with": "-x"}, ["c3"]),
    ({"name_not_ends_with": "-x"}, ["c1", "c2"]),
    ({"host_num_gt": 3}, ["c2", "c3"]),
    ({"host_num_gte": 4, "host_num_lt": 5}, ["c2"]),
    ({"host_num_lte": 3}, ["c1"]),
    ({"settings": {"id": "s2"}}, ["c2"]),
    ({"settings": {"id_in": ["s1", "s3"]}}, ["c1"]),
    ({"datacenters_some": {"name": "DC2"}}, ["c3"]),
    ({"datacenters_some": {}}, ["c1", "c3"]),
    ({"datacenters_none": {"id": "d1"}}, ["c2", "c3"]),
    ({"datacenters_every": {"id_starts_with": "d"}}, ["c1", "c2", "c3"]),
    ({"AND": [{"connect_state": "CONNECTED"}, {"host_num_gt": 3}]}, ["c3"]),
    ({"OR": [{"id": "c1"}, {"name": "beta"}]}, ["c1", "c2"]),
    ({"NOT": [{"id": "c1"}, {"id": "c2"}]}, ["c3"]),
    ({"AND": {"id": "c1"}}, ["c1"]),
    ({"AND": [{"AND": [{"name_not_starts_with": "a"}, {"name_not_starts_with": "b"}]}]}, ["c3"]),
])
def test_where_operators(where, expected):
    assert ids(query(CLUSTERS, {"where": where})) == expected


def test_equality_on_a_relation_that_is_null_does_not_match():
    assert not matches(CLUSTERS[2], {"settings": {"id": "s1"}})


@pytest.mark.parametrize("where, message", [
    ({"nosuchfield": 1}, "nosuchfield"),
    ({"name_in": "alpha"}, "list"),
    ({"name_contains": 3}, "string"),
    ({"host_num": {"id": 1}}, "not a relation"),
    ({"datacenters": {"id": "d1"}}, "_some"),
    ({"name_some": {}}, "not a list relation"),
    ({"OR": "x"}, "OR"),
    ("not-an-object", "object"),
])
def test_malformed_where_is_an_error(where, message):
    with pytest.raises(WhereError, match=message):
        query(CLUSTERS, {"where": where})


def test_order_first_skip():
    assert ids(query(CLUSTERS, {"orderBy": "host_num_DESC"})) == ["c3", "c2", "c1"]
    assert ids(query(CLUSTERS, {"orderBy": "name_ASC", "skip": 1, "first": 1})) == ["c2"]
    assert ids(query(CLUSTERS, {"first": 0})) == []
    assert ids(order([{"id": "a", "v": None}, {"id": "b", "v": 1}], "v_ASC")) == ["a", "b"]


@pytest.mark.parametrize("body", [{"orderBy": "name"}, {"orderBy": "nope_ASC"}, {"first": -1}, {"skip": "2"},
                                  {"first": True}])
def test_bad_paging_or_order_is_an_error(body):
    with pytest.raises(WhereError):
        query(CLUSTERS, body)


SCHEMA = frozenset(CLUSTERS[0])


@pytest.mark.parametrize("body", [{"where": {"nme": "alpha"}}, {"where": {"name_startswith": "a"}},
                                  {"where": {"AND": [{"OR": [{"bogus_in": []}]}]}}, {"orderBy": "nope_ASC"}])
def test_a_schema_refuses_unknown_fields_on_an_empty_list(body):
    with pytest.raises(WhereError):
        query([], body, SCHEMA)
    with pytest.raises(WhereError):
        query(CLUSTERS, body, SCHEMA)


def test_a_schema_accepts_its_fields_with_operators_on_an_empty_list():
    body = {"where": {"AND": [{"name_not_starts_with": "x"}, {"datacenters_some": {"id": "d1"}},
                              {"NOT": [{"host_num_gte": 9}]}]}, "orderBy": "host_num_DESC"}
    assert query([], body, SCHEMA) == []
    assert ids(query(CLUSTERS, body, SCHEMA)) == ["c1"]
