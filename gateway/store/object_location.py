"""Where blobs live in object storage, parsed from `GATEWAY_BLOB_URL` (no client library here,
so settings can check the URL cheaply at start-up)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit


class BlobUrlError(ValueError):
    """GATEWAY_BLOB_URL is not an s3:// URL this gateway understands."""


@dataclass(frozen=True)
class ObjectLocation:
    """Where blobs live: a bucket, a key prefix and the S3 endpoint (None: AWS itself)."""

    bucket: str
    prefix: str
    endpoint: str | None
    region: str | None

    @classmethod
    def parse(cls, url: str) -> ObjectLocation:
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise BlobUrlError(
                "blob URL must look like s3://bucket/prefix?endpoint=https://host:port"
            )
        query = parse_qs(parts.query)
        unknown = set(query) - {"endpoint", "region"}
        if unknown:
            raise BlobUrlError(f"blob URL has unknown parameters: {', '.join(sorted(unknown))}")
        endpoint = query.get("endpoint", [None])[0]
        if endpoint is not None and urlsplit(endpoint).scheme not in ("http", "https"):
            raise BlobUrlError("blob URL endpoint must be an http:// or https:// URL")
        return cls(
            bucket=parts.netloc,
            prefix=parts.path.strip("/"),
            endpoint=endpoint,
            region=query.get("region", [None])[0],
        )

    def key_for(self, digest: str) -> str:
        name = f"{digest[:2]}/{digest}"
        return f"{self.prefix}/{name}" if self.prefix else name

    def digest_of(self, key: str) -> str | None:
        """The content hash a key names, or None for a key this gateway did not write."""
        parts = key.split("/")
        name = parts[-1]
        if len(parts) >= 2 and len(name) == 64 and parts[-2] == name[:2]:
            return name
        return None
