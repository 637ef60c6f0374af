"""Image storages: local files behind signed links, and S3-compatible storage whose browser URLs may use
another address than the app's own.

Local media (demo, tests, single-box installs): `SignedFileSystemStorage` adds an expiry and a signature
to every URL, checked by core.media.media_serve (why: see core/media.py).

In docker-compose the app reaches MinIO as ``http://minio:9000``, a name only containers can resolve;
browsers load images from the address the store is published on (``http://localhost:9000``). A presigned
URL signs its host, so it cannot be rewritten afterwards: it is signed with a client for the public
endpoint instead. Without ``public_endpoint_url`` this is django-storages' S3Storage unchanged.
https://django-storages.readthedocs.io/en/latest/backends/amazon-S3.html
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from django.core.files.storage import FileSystemStorage
from storages.backends.s3 import S3Storage
from storages.utils import clean_name

from core.media import media_link_query


class SignedFileSystemStorage(FileSystemStorage):
    """FileSystemStorage whose URLs are short-lived signed links (served by core.media.media_serve)."""

    def url(self, name: str | None) -> str:
        """The file's URL with its expiry and signature."""
        base = super().url(name)
        return f"{base}?{media_link_query(str(name).replace(chr(92), '/'))}"


class PublicEndpointS3Storage(S3Storage):
    """S3Storage that signs browser URLs for ``public_endpoint_url`` when one is configured."""

    def __init__(self, *, public_endpoint_url: str | None = None, **options: Any) -> None:
        super().__init__(**options)
        self.public_endpoint_url = public_endpoint_url or None

    @cached_property
    def _public_client(self) -> Any:
        # Same credentials, region and client config as the storage's own connection; only the address
        # differs. Signing needs no network.
        return self._create_session().client(
            "s3",
            endpoint_url=self.public_endpoint_url,
            region_name=self.region_name,
            use_ssl=self.use_ssl,
            verify=self.verify,
            config=self.client_config,
        )

    def url(
        self,
        name: str,
        parameters: dict[str, Any] | None = None,
        expire: int | None = None,
        http_method: str | None = None,
    ) -> str:
        """A presigned GET URL on the public endpoint; the parent's URL when none is configured."""
        if not self.public_endpoint_url or not self.querystring_auth or self.custom_domain:
            return super().url(name, parameters=parameters, expire=expire, http_method=http_method)
        params = dict(parameters or {})
        params["Bucket"] = self.bucket_name
        params["Key"] = self._normalize_name(clean_name(name))
        return self._public_client.generate_presigned_url(
            "get_object",
            Params=params,
            ExpiresIn=self.querystring_expire if expire is None else expire,
            HttpMethod=http_method,
        )
