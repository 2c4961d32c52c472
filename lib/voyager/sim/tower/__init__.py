"""CloudTower: its backend and its APIs.

Backend (no HTTP): ``models.py`` (:class:`TowerBackend`: users, organizations,
datacenters, connect-cluster, settings, license, NTP, tasks), composed of
``alerts.py`` (alert rules), ``dashboards.py`` (views, graphs),
``topology.py`` (zones, racks, bricks, nodes), ``inspection.py`` (inspection
center jobs and exports) and ``packages.py`` (uploaded packages and the
ovm-operator front-end).

Wire format: ``rest.py`` (``POST /v2/api/<operation>``, e.g. connect-cluster),
``graphql_api.py`` (``POST /api``), ``inspector_api.py``
(``/api/inspector/...``); ``views.py`` renders entities in the OpenAPI shapes,
``where.py`` is the list grammar, ``schema.py`` the filterable fields.
"""
