"""An S3 API server on a loopback port (moto's threaded server) for the tests, the S3 demo and the bench.

Nothing here runs in production: the tests' fixtures (conftest.py), ``VP_DEMO_S3=1 make demo``
(scripts/run_demo.py) and bench/storage.py start one so the app's real S3 path (django-storages, boto3,
presigned links) is exercised over HTTP on one machine, with no AWS account and no Docker.

moto serves objects without checking a presigned link's expiry (AWS and MinIO answer 403 "Request has
expired"), so the server is wrapped in `_ExpiryCheck`, which refuses an expired SigV4 presigned request
the way S3 documents. Unsigned requests to the private bucket are refused by moto itself.
https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

EXPIRED_BODY = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    b"<Message>Request has expired</Message></Error>"
)


class _ExpiryCheck:
    """WSGI middleware: 403 for a presigned request past its expiry (SigV4 X-Amz-Date + X-Amz-Expires, or
    SigV2 Expires)."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        query = parse_qs(environ.get("QUERY_STRING", ""))
        now = datetime.now(UTC)
        expired = False
        if "X-Amz-Expires" in query and "X-Amz-Date" in query:  # SigV4
            signed = datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
            expired = (now - signed).total_seconds() > int(query["X-Amz-Expires"][0])
        elif "Expires" in query and "Signature" in query:  # SigV2: an absolute time
            expired = now.timestamp() > int(query["Expires"][0])
        if expired:
            start_response("403 Forbidden", [("Content-Type", "application/xml")])
            return [EXPIRED_BODY]
        return self.app(environ, start_response)


class LoopbackS3:
    """moto's S3 server on 127.0.0.1, one bucket, fake keys made up per run; stop() and start() again
    keep the objects (they live in this process), like a store that restarts."""

    region = "us-east-1"

    def __init__(self, bucket: str = "studio-test", port: int = 0) -> None:
        self.bucket = bucket
        self.port = port
        # Made up per run: the server accepts any key; tests look for these in pages and logs.
        self.access_key = "LOOPBACK" + secrets.token_hex(6).upper()
        self.secret_key = secrets.token_urlsafe(30)
        self._server: Any = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LoopbackS3:
        """Start serving (on the same port as before after a stop) and make sure the bucket exists."""
        from moto.moto_server.threaded_moto_server import ThreadedMotoServer
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        class Server(ThreadedMotoServer):
            def _server_entry(self) -> None:
                app = _ExpiryCheck(DomainDispatcherApplication(create_backend_app))
                self._server = make_server(
                    self._ip_address, self._port, app, True, request_handler=MotoRequestHandler
                )
                self._server_ready_event.set()
                self._server.serve_forever()

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
        self._server = Server(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        self.port = int(self._server.get_host_and_port()[1])
        client = self.client()
        if self.bucket not in {b["Name"] for b in client.list_buckets().get("Buckets", [])}:
            client.create_bucket(Bucket=self.bucket)
        return self

    def stop(self) -> None:
        """Stop answering: connections to the port are refused until start()."""
        if self._server is not None:
            self._server.stop()
            self._server = None

    def client(self) -> Any:
        """A boto3 S3 client for this server (for checks that look past the app)."""
        import boto3

        return boto3.client("s3", **self.client_options())

    def client_options(self) -> dict[str, str]:
        return {
            "endpoint_url": self.endpoint_url,
            "region_name": self.region,
            "aws_access_key_id": self.access_key,
            "aws_secret_access_key": self.secret_key,
        }

    def storage_options(self) -> dict[str, Any]:
        """OPTIONS of the app's S3 storage (config.storage.PublicEndpointS3Storage) for this bucket."""
        return {
            "bucket_name": self.bucket,
            "endpoint_url": self.endpoint_url,
            "region_name": self.region,
            "access_key": self.access_key,
            "secret_key": self.secret_key,
            "querystring_auth": True,
            "file_overwrite": False,
            "signature_version": "s3v4",
        }

    def environment(self) -> dict[str, str]:
        """The environment a web or worker process needs to use this bucket (what production sets)."""
        return {
            "AWS_STORAGE_BUCKET_NAME": self.bucket,
            "AWS_S3_ENDPOINT_URL": self.endpoint_url,
            "AWS_S3_REGION_NAME": self.region,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
        }
