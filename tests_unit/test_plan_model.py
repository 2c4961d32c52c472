"""The plan model: ``Secret`` never shows its value, whatever prints it; plan dicts and
fingerprints carry no secret."""
from __future__ import annotations

import copy
import dataclasses
import io
import json
import logging
import pickle
import traceback

import pytest

from voyager.plan import Secret, build_demo_plan
from voyager.plan.model import MASK

VALUE = "Sup3r-s3cret!"


def renderings(s: Secret) -> list[str]:
    return [
        repr(s), str(s), f"{s}", f"{s!r}", f"{s!s}", f"{s:>20}", format(s), "%s" % s, "%r" % s,
        "{}".format(s), str([s]), str({"k": s}), str((s,)),
        json.dumps({"k": s}, default=str), json.dumps([s], default=repr),
    ]


def test_secret_never_renders_its_value():
    s = Secret(VALUE)
    for text in renderings(s):
        assert VALUE not in text, text
        assert MASK in text, text
    assert s.reveal() == VALUE


def test_empty_secret_is_falsy_and_renders_empty():
    assert not Secret("") and not Secret(None)
    assert str(Secret(None)) == "" and repr(Secret("")) == "Secret('')"


def test_secret_in_logs_and_tracebacks():
    stream = io.StringIO()
    log = logging.getLogger("test_plan_model")
    handler = logging.StreamHandler(stream)
    log.addHandler(handler)
    try:
        log.warning("password %s / %r", Secret(VALUE), Secret(VALUE))
    finally:
        log.removeHandler(handler)
    assert VALUE not in stream.getvalue()

    def fail(password):
        raise ValueError(f"login failed with {password}")

    try:
        fail(Secret(VALUE))
    except ValueError:
        text = traceback.format_exc()
    assert VALUE not in text and MASK in text


def test_secret_is_not_picklable():
    with pytest.raises(TypeError):
        pickle.dumps(Secret(VALUE))
    with pytest.raises(TypeError):
        pickle.dumps(build_demo_plan().hosts[0])


def test_secret_copies_share_the_value_without_pickling():
    s = Secret(VALUE)
    assert copy.copy(s) is s and copy.deepcopy(s) is s
    plan = build_demo_plan()
    clone = copy.deepcopy(plan)
    assert clone.hosts[0].ssh_password.reveal() == plan.hosts[0].ssh_password.reveal()
    as_dict = dataclasses.asdict(plan.hosts[0])
    assert as_dict["ssh_password"] == plan.hosts[0].ssh_password
    assert "HC!r0cks" not in json.dumps(as_dict, default=str)


def test_secret_of_a_secret_keeps_the_value():
    assert Secret(Secret(VALUE)).reveal() == VALUE
    assert Secret(Secret(VALUE)) == Secret(VALUE)


def test_secret_equality_and_hash():
    assert Secret("a1b2c3") == Secret("a1b2c3") and Secret("a1b2c3") != Secret("other1")
    assert len({Secret("a1b2c3"), Secret("a1b2c3")}) == 1
    assert Secret("a1b2c3") != "a1b2c3"  # never equal to the clear text


def test_plan_dict_and_fingerprint_carry_no_secret():
    plan = build_demo_plan()
    for h in plan.hosts:
        h.ssh_password = Secret(VALUE)
    text = json.dumps(plan.to_dict(), ensure_ascii=False) + repr(plan) + str(plan.content_fields())
    assert VALUE not in text and "HC!r0cks" not in text
    before = plan.fingerprint()
    plan.hosts[0].ssh_password = Secret(VALUE + "x")
    assert plan.fingerprint() != before  # a changed password still changes the fingerprint
    assert Secret(VALUE) in plan.secrets()
