"""Composition roots: the worker, the `lucy` command, `lucy dev`, the ingress app."""
