import pytest
@pytest.mark.django_db
def test_smoke(admin_api, worker_api, anon_api, campaign):
    r = anon_api.get("/openapi.json"); print(r.status_code, len(r.content))
    for c in (anon_api, worker_api, admin_api):
        r = c.get("/campaigns"); print(r.status_code, r.content[:200])
    r = worker_api.get(f"/label/{campaign.slug}/next"); print(r.status_code, r.content[:600])
    r = admin_api.get("/nope"); print(r.status_code, r.content[:200], r.get("Content-Type"))
    r = admin_api.call("DELETE", "/campaigns"); print(r.status_code, r.content[:200])
    r = admin_api.get("/jobs/kinds"); print(r.status_code, r.content[:300])
    r = anon_api.get("/docs"); print(r.status_code, r["Content-Security-Policy"])
