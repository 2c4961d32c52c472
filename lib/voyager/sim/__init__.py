"""The embedded SmartX simulator (see docs/architecture.md, "Simulator").

A moto-like layout: :mod:`voyager.sim.backend.world` holds the state and the rules,
thin front-ends (:mod:`voyager.sim.fisheye.deployment`, :mod:`voyager.sim.fisheye`,
the CloudTower and SSH modules) render each API's wire format, and
:class:`Simulator` serves them on loopback.

``Simulator`` is imported on first use so that ``voyager plan …`` (which
registers the ``sim`` command group) does not pay for the whole simulator.
"""
from voyager.sim.backend.clock import DEFAULT_SPEED

__all__ = ["DEFAULT_SPEED", "Simulator"]


def __getattr__(name: str):
    if name == "Simulator":
        from voyager.sim.simulator import Simulator

        globals()["Simulator"] = Simulator
        return Simulator
    raise AttributeError(f"module 'voyager.sim' has no attribute {name!r}")
