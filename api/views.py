"""The API token page: a user lists, creates and revokes their own personal tokens (a new one is shown once)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from api.models import ApiToken
from api.services import api_token_create, api_token_revoke


@login_required
@require_http_methods(["GET", "POST"])
def api_tokens(request: HttpRequest) -> HttpResponse:
    """GET lists the user's tokens; POST action=create makes one (shown once), action=revoke revokes one."""
    context: dict[str, object] = {}
    status = 200
    if request.method == "POST":
        action = request.POST.get("action", "")
        if action == "create":
            try:
                made = api_token_create(user=request.user, name=request.POST.get("name", ""))
                context["new_token"] = made.token
                context["new_row"] = made.row
            except ValueError as refused:
                context["error"] = str(refused)
                status = 400
        elif action == "revoke":
            token_id = request.POST.get("token_id", "")
            if not (token_id.isdigit() and api_token_revoke(user=request.user, token_id=int(token_id))):
                context["error"] = "No such active token of yours."
                status = 404
        else:
            context["error"] = "Unknown action."
            status = 400
    user: Any = request.user  # signed in (login_required)
    context["tokens"] = ApiToken.objects.filter(user=user)
    response = render(request, "api/tokens.html", context, status=status)
    response["Cache-Control"] = "no-store"  # the page may hold a new token
    return response
