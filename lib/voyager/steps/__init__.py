"""Step logic used by ``suites/``: payload builders and observe / act / verify
functions, each step idempotent (observe first, act only when needed, verify)."""
