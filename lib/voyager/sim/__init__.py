"""The embedded SmartX simulator (see docs/architecture.md, "Simulator").

A moto-like layout: :mod:`voyager.sim.world` holds the state and the rules,
thin front-ends (:mod:`voyager.sim.deployment`, :mod:`voyager.sim.fisheye*`,
the CloudTower and SSH modules) render each API's wire format, and
:class:`Simulator` serves them on loopback.
"""
from voyager.sim.clock import DEFAULT_SPEED
from voyager.sim.simulator import Simulator

__all__ = ["DEFAULT_SPEED", "Simulator"]
