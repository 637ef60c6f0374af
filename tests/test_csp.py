"""A strict Content-Security-Policy on every response, and templates it would not break (no inline code)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from tests.factories import AdminFactory

ROOT = Path(__file__).resolve().parents[1]
# What a strict policy blocks: inline <script> (without src), <style> elements, style="" attributes,
# on*="" event handler attributes and javascript: URLs.
INLINE = [
    (re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I), "an inline <script>"),
    (re.compile(r"<style\b", re.I), "a <style> element"),
    (re.compile(r"\sstyle\s*=", re.I), "a style attribute"),
    (re.compile(r"\son[a-z]+\s*=", re.I), "an event handler attribute"),
    (re.compile(r"javascript:", re.I), "a javascript: URL"),
    (re.compile(r"hx-on", re.I), "an hx-on handler (evaluated as inline script)"),
]


def test_no_template_holds_inline_script_or_style():
    found = []
    for path in sorted((ROOT / "templates").rglob("*.html")):
        text = path.read_text()
        for pattern, what in INLINE:
            for match in pattern.finditer(text):
                line = text[: match.start()].count("\n") + 1
                found.append(f"{path.relative_to(ROOT)}:{line}: {what}")
    assert not found, "\n".join(found)


def test_the_policy_is_strict():
    policy = dict(part.strip().split(" ", 1) for part in settings.CONTENT_SECURITY_POLICY.split(";"))
    assert policy["default-src"] == "'self'"
    assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'"
    assert policy["object-src"] == "'none'" and policy["base-uri"] == "'none'"
    assert policy["frame-ancestors"] == "'none'"
    assert "unsafe" not in settings.CONTENT_SECURITY_POLICY


@pytest.mark.django_db
def test_every_kind_of_response_carries_the_policy(client):
    responses = [
        client.get(reverse("annotate:login")),
        client.get("/no-such-page/"),
        client.post(
            reverse("annotate:login"), data=b"x" * 100, content_type="text/plain", CONTENT_LENGTH="999999999"
        ),
        client.get(reverse("annotate:home")),  # a redirect to sign in
    ]
    client.force_login(AdminFactory())
    responses += [client.get(reverse("core:job-list")), client.get(reverse("admin:index"))]
    for response in responses:
        assert response["Content-Security-Policy"] == settings.CONTENT_SECURITY_POLICY, response
