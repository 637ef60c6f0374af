"""The token page's route (the API itself is mounted from config/urls.py)."""

from django.urls import path

from api.views import api_tokens

app_name = "api"
urlpatterns = [path("account/api-tokens/", api_tokens, name="tokens")]
