"""The simulated SSH service: ``server.py`` (paramiko server, one port per
planned address), ``machines.py`` (sessions: who may log in where, files),
``shell.py`` (command-line interpreter) and ``commands.py`` (built-in programs)."""
