"""One sign-in limiter for every login path: keyed by account and client address, slowing down, never locking out."""

from __future__ import annotations

import time

import pytest
from django.core.cache import cache
from django.urls import reverse

from annotate.services.login_limits import DEVICE_COOKIE
from tests.factories import AdminFactory, UserFactory

pytestmark = pytest.mark.django_db
PASSWORD = "pw-for-tests-1"
LOGIN = reverse("annotate:login")
LOGOUT = reverse("annotate:logout")
ADMIN_LOGIN = reverse("admin:login")


@pytest.fixture(autouse=True)
def _fresh_counters():
    cache.clear()
    yield
    cache.clear()


def attempt(client, url: str, username: str, password: str, **meta):
    return client.post(url, {"username": username, "password": password}, **meta)


def test_the_admin_login_is_limited_too(client):
    AdminFactory(username="root")
    answers = [attempt(client, ADMIN_LOGIN, "root", f"guess-{i}").status_code for i in range(30)]
    assert answers[:5] == [200] * 5  # free attempts
    assert answers.count(429) >= 20  # then one try per delay at most, the rest refused unchecked


def test_both_login_paths_share_one_count(client):
    AdminFactory(username="root")
    for i in range(3):
        assert attempt(client, LOGIN, "root", f"guess-{i}").status_code == 200
    for i in range(2):
        assert attempt(client, ADMIN_LOGIN, "root", f"guess-{i}").status_code == 200
    refused = attempt(client, ADMIN_LOGIN, "root", PASSWORD)  # the 6th try comes too soon after the 5th
    assert refused.status_code == 429 and int(refused["Retry-After"]) >= 1
    assert "_auth_user_id" not in client.session
    assert attempt(client, LOGIN, "root", PASSWORD).status_code == 429


def test_a_correct_password_signs_in_once_the_delay_is_over(client, settings):
    settings.LOGIN_BACKOFF_BASE_S = 1.0
    AdminFactory(username="root")
    for i in range(8):
        attempt(client, ADMIN_LOGIN, "root", f"guess-{i}")
    early = attempt(client, ADMIN_LOGIN, "root", PASSWORD)
    assert early.status_code == 429
    wait = int(early["Retry-After"])
    assert 1 <= wait <= settings.LOGIN_BACKOFF_MAX_S
    time.sleep(wait + 0.1)
    late = attempt(client, ADMIN_LOGIN, "root", PASSWORD)
    assert late.status_code == 302 and client.session["_auth_user_id"]


def test_failures_for_other_accounts_behind_one_address_do_not_lock_the_admin_out(client):
    # Before: 30 failures from one address locked every account out of it for 15 minutes.
    AdminFactory(username="root")
    browser = client.__class__()
    ok = attempt(browser, LOGIN, "root", PASSWORD, REMOTE_ADDR="192.0.2.10")
    assert ok.status_code == 302 and DEVICE_COOKIE in ok.cookies  # this browser is now known for root
    browser.post(LOGOUT)  # signing out keeps the known-browser cookie (the test client's logout() would not)
    for i in range(40):
        attempt(client, LOGIN, f"someone{i}", "wrong", REMOTE_ADDR="192.0.2.10")
    assert attempt(client, LOGIN, "someone-else", "wrong", REMOTE_ADDR="192.0.2.10").status_code == 429
    again = attempt(browser, ADMIN_LOGIN, "root", PASSWORD, REMOTE_ADDR="192.0.2.10")
    assert again.status_code == 302


def test_a_known_browser_is_not_slowed_by_guessing_on_its_own_account(client):
    admin = AdminFactory(username="root")
    browser = client.__class__()
    assert attempt(browser, LOGIN, "root", PASSWORD).status_code == 302
    browser.post(LOGOUT)
    for i in range(20):
        attempt(client, LOGIN, "root", f"guess-{i}")  # same address, no cookie: the guesser
    assert attempt(client, LOGIN, "root", PASSWORD).status_code == 429
    assert attempt(browser, LOGIN, "root", PASSWORD).status_code == 302
    assert browser.session["_auth_user_id"] == str(admin.pk)


def test_a_forged_known_browser_cookie_is_ignored(client):
    AdminFactory(username="root")
    client.cookies[DEVICE_COOKIE] = "eyJhIjoiIn0:forged:signature"
    answers = [attempt(client, LOGIN, "root", f"guess-{i}").status_code for i in range(10)]
    assert 429 in answers


def test_behind_a_trusted_proxy_attempts_are_keyed_by_the_real_client(client, settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    AdminFactory(username="root")
    proxy = {"REMOTE_ADDR": "10.0.0.2"}
    for i in range(20):
        attempt(client, LOGIN, "root", f"guess-{i}", HTTP_X_FORWARDED_FOR="198.51.100.7", **proxy)
    guesser = attempt(client, LOGIN, "root", PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.7", **proxy)
    assert guesser.status_code == 429
    admin = client.__class__()
    # A client-written entry left of the proxy's hop is not believed; the proxy's own hop is.
    ok = attempt(admin, LOGIN, "root", PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.7, 203.0.113.9", **proxy)
    assert ok.status_code == 302


def test_forwarded_for_from_an_untrusted_address_is_ignored(client, settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    AdminFactory(username="root")
    answers = [
        attempt(
            client,
            LOGIN,
            "root",
            f"guess-{i}",
            REMOTE_ADDR="198.51.100.7",
            HTTP_X_FORWARDED_FOR=f"203.0.113.{i}",
        ).status_code
        for i in range(12)
    ]
    assert 429 in answers  # rotating the header does not give a fresh count


def test_refused_attempts_do_not_count_and_a_success_clears_the_account(client, settings):
    settings.LOGIN_BACKOFF_BASE_S = 1.0
    UserFactory(username="victim")
    for i in range(5):
        attempt(client, LOGIN, "victim", f"guess-{i}")
    for _ in range(10):
        assert attempt(client, LOGIN, "victim", "guess").status_code == 429
    time.sleep(1.1)  # the delay after 5 failures is the base delay: refusals did not make it grow
    assert attempt(client, LOGIN, "victim", PASSWORD).status_code == 302
    client.logout()
    assert [attempt(client, LOGIN, "victim", "x").status_code for _ in range(5)] == [200] * 5
