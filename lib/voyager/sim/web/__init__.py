"""HTTP plumbing of the simulator: ``server.py`` (the WSGI app choosing a
machine by ``Host`` and dispatching to the front-ends), ``listener.py``
(werkzeug listeners with keep-alive), ``frontend.py`` (the front-end base class)
and ``tls.py`` (the self-signed certificate)."""
