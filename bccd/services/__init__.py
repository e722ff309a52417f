"""Use cases: the only way the interfaces (bccd/api, bccd/cli.py, bccd/web) reach the store.

One small module per topic. Each function opens its own transaction on the `Database` it is given and
checks the rules (bccd.permissions) for the acting user; `actor=None` is the operator at the CLI, who
has every right. Errors are those of bccd.errors.
"""
