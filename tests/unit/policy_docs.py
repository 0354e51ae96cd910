"""Policy documents for the policy tests, and the error a bad one raises at load."""

from __future__ import annotations

from typing import Any

import pytest
from approval_gate.policy import Policy, PolicyError


def doc(defaults: dict[str, Any], *rules: dict[str, Any]) -> dict[str, Any]:
    """A policy whose defaults post to C0DEPLOYS for U0ALICE, with `defaults` over them."""
    document: dict[str, Any] = {
        "defaults": {"channel": "C0DEPLOYS", "approvers": {"users": ["U0ALICE"]}, **defaults}
    }
    if rules:
        document["pipelines"] = list(rules)
    return document


def error_of(document: Any) -> str:
    """The PolicyError's words for a document the loader must refuse."""
    with pytest.raises(PolicyError) as caught:
        Policy.from_document(document)
    return str(caught.value)
