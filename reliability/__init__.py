"""`make reliability`: fault injection and adversarial trials over the whole workflow.

Not part of `make test` (it takes minutes); see reliability/__main__.py for the command line,
docs/reliability.md for the last run and docs/explanation/security.md for what it covers.
"""
