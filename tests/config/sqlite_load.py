"""Run by test_sqlite_under_load.py in a child process: the labeling loop from many threads on one SQLite file.

Usage: python -m tests.config.sqlite_load FOLDER THREADS CYCLES; prints a JSON summary.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
from pathlib import Path


def main(folder: Path, threads: int, cycles: int) -> dict:
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.local"
    os.environ["DATABASE_URL"] = f"sqlite:///{folder / 'db.sqlite3'}"
    os.environ["DJANGO_MEDIA_ROOT"] = str(folder / "media")
    os.environ["CROWD_FREE_NEW_WORKERS_PER_ADDRESS"] = "100000"
    os.environ["LOG_LEVEL"] = "CRITICAL"
    os.environ["DJANGO_ALLOWED_HOSTS"] = "testserver"
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    call_command("migrate", verbosity=0)
    from tests.annotate.test_assign_engine import campaign_with_pairs

    campaign = campaign_with_pairs(120, humans_per_pair=3, min_seconds_per_pair=0)
    connection.close()
    aspects = [a.key for a in campaign.aspects.all()]
    statuses: list[int] = []
    failures: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def crowdworker(number: int) -> None:
        client = Client(raise_request_exception=False)
        start.wait()
        answers = [client.get(f"/c/{campaign.slug}/start?PROLIFIC_PID={number:024x}").status_code]
        for _ in range(cycles):
            page = client.get(f"/c/{campaign.slug}/label/", HTTP_HX_REQUEST="true")
            answers.append(page.status_code)
            if page.status_code != 200:
                continue
            assignment = int(re.search(r"/label/(\d+)/submit", page.content.decode()).group(1))
            form = {f"choice-{key}": "left" for key in aspects}
            answers.append(
                client.post(
                    f"/c/{campaign.slug}/label/{assignment}/submit", form, HTTP_HX_REQUEST="true"
                ).status_code
            )
        with lock:
            statuses.extend(answers)
        from django.db import connection as thread_connection

        thread_connection.close()

    from django.core.signals import got_request_exception

    got_request_exception.connect(lambda sender, request=None, **kw: failures.append(str(sys.exc_info()[1])))
    workers = [threading.Thread(target=crowdworker, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    from annotate.models import Assignment, Judgment

    return {
        "requests": len(statuses),
        "errors": sum(1 for s in statuses if s not in (200, 204, 302)),
        "failures": sorted(set(failures))[:5],
        "submitted": Assignment.objects.filter(status="submitted").count(),
        "judgments": Judgment.objects.count(),
        "transaction_mode": connection.settings_dict["OPTIONS"].get("transaction_mode"),
    }


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))))
