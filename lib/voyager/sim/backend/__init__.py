"""The simulator's backend (moto's ``models``): the world and its parts, no HTTP.

``world.py`` (:class:`World`, the API the front-ends call) composes ``hosts.py``
(planned hosts, NICs, disks), ``deployer.py`` (the deployment job),
``cluster.py`` (the deployed cluster), ``jobs.py``, ``network.py`` (VDSes,
VLANs), ``images.py`` (images, chunked upload volumes), ``vms.py``,
``installer.py`` (CloudTower installer), ``persistence.py`` (state file),
``clock.py`` (time), ``faults.py`` (fault injection), ``errors.py`` and
``passwords.py`` (salted digests). Nothing here imports a front-end; the
CloudTower backend (:mod:`voyager.sim.tower.models`) is loaded by name.
"""
