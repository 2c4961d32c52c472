"""Front-ends of the SMTX OS host APIs: ``deployment.py`` (``/api/v2/deployment/*``
before a cluster exists), ``core.py`` (fisheye users/sessions, settings,
license, hosts, jobs), ``resources.py`` (VDS/VLAN and VMs), ``images.py``
(images and chunked uploads); ``base.py`` is their shared wire format."""
