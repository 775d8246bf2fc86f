"""Browsing by path through the running service: the namespaces directly below one, in order, paged."""

from __future__ import annotations

import uuid

from harness.oci import push_image
from harness.processes import wait_until


def _namespaces(stack, **params):
    response = stack.get("/api/v1/namespaces", **params)
    assert response.status_code == 200, response.text
    body = response.json()
    return [(n["name"], n["namespace"]) for n in body["items"]], body["next_cursor"]


def test_child_namespaces_in_order_and_paged(stack):
    ns = f"tree{uuid.uuid4().hex[:6]}"
    # "-" and "." sort before "/" in byte order: a naive range over "a/" would skip or repeat them.
    names = [f"{ns}/a/x", f"{ns}/a-b/y", f"{ns}/a.c/z", f"{ns}/a/b/c/deep", f"{ns}/a_b/w", f"{ns}/direct"]
    for name in names:
        push_image(stack.registry.url, name, "v1", seed=name)
    wait_until(lambda: all(stack.tags(name) for name in names), timeout=60, what="the tree")

    children = [(f"{ns}/{c}", ns) for c in ("a", "a-b", "a.c", "a_b")]  # "direct" is a repository, not a namespace
    assert _namespaces(stack, namespace=ns) == (children, None)
    assert _namespaces(stack, namespace=f"{ns}/") == (children, None)
    assert _namespaces(stack, namespace=f"{ns}/a") == ([(f"{ns}/a/b", f"{ns}/a")], None)
    assert _namespaces(stack, namespace=f"{ns}/a/b/c") == ([], None)
    assert _namespaces(stack, namespace=f"{ns}/nope") == ([], None)

    paged, cursor = [], None
    while True:
        items, cursor = _namespaces(stack, namespace=ns, limit=1, **({"cursor": cursor} if cursor else {}))
        paged += items
        if not cursor:
            break
    assert paged == children

    top = []
    cursor = None
    for _ in range(50):
        items, cursor = _namespaces(stack, limit=500, **({"cursor": cursor} if cursor else {}))
        top += [name for name, parent in items if parent == ""]
        if not cursor:
            break
    assert ns in top and all("/" not in name for name in top) and top == sorted(top)


def test_bad_namespace_parameters_are_400(stack):
    assert stack.get("/api/v1/namespaces", namespace="Upper/Case").status_code == 400
    assert stack.get("/api/v1/namespaces", cursor="garbage!").status_code == 400
