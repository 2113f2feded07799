"""Opening ChromaDB: the client, the directory lock and checked collections.

Owns: the embedded ``PersistentClient`` and its single-owner lock file, the ``HttpClient`` to a
``chroma run`` server, opening a collection in cosine space and refusing one whose recorded
embedding function is not ours, and turning store faults into InfraError. Does not own: which
collections exist or what goes in them (store.py), nor how vectors are computed (embedding.py).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlparse

import chromadb
from chromadb.api import ClientAPI
from chromadb.api.models.Collection import Collection
from chromadb.api.types import Documents, Embeddable, EmbeddingFunction
from chromadb.config import Settings
from chromadb.errors import ChromaError, NotFoundError

from roundtable.common.errors import ConfigError, InfraError

LOCK_FILE = "roundtable-memory.lock"
# Settings of remote embedding functions that do not change the vectors they return.
_NON_SEMANTIC_KEYS = frozenset(
    {"api_key_env_var", "api_base", "organization_id", "default_headers", "timeout", "url"}
)


@contextlib.contextmanager
def infra(action: str) -> Iterator[None]:
    """Report a store fault as an InfraError naming what was being done."""
    try:
        yield
    except (ChromaError, OSError) as e:
        raise InfraError(f"memory store: {action} failed: {e}") from e


class DirectoryLock:
    """An exclusive, non-blocking ``flock`` on a file in the store's directory.

    ChromaDB's embedded store is thread-safe but not process-safe: a second owner gets an
    InfraError at once instead of corrupting or hanging. The kernel drops the lock if the
    owning process dies, so a crash leaves nothing to clean up.
    """

    def __init__(self, directory: Path) -> None:
        try:
            directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise InfraError(f"memory store {directory}: cannot open it ({e})") from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise InfraError(
                f"memory store {directory} is in use by another process (pid {owner}); "
                "one process owns an embedded store: share it through a Chroma server"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def open_embedded(directory: Path) -> ClientAPI:
    """An embedded client on ``directory`` (the caller holds its DirectoryLock)."""
    with infra(f"opening {directory}"):
        return chromadb.PersistentClient(
            path=str(directory), settings=Settings(anonymized_telemetry=False)
        )


def connect(url: str) -> ClientAPI:
    """A client of the Chroma server at ``url``, checked with a heartbeat."""
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ConfigError(f"memory url {url!r}: expected http://host:port")
    port = parsed.port or (443 if parsed.scheme == "https" else 8000)
    try:
        client = chromadb.HttpClient(
            host=parsed.hostname,
            port=port,
            ssl=parsed.scheme == "https",
            settings=Settings(anonymized_telemetry=False),
        )
        client.heartbeat()
    except Exception as e:  # connection errors come from several layers (httpx, chroma)
        raise InfraError(f"memory server {url} is unreachable: {e}") from e
    return client


def close_client(client: ClientAPI) -> None:
    # Client.close (chromadb >= 1.4) releases the embedded store's files; ClientAPI lacks it.
    with contextlib.suppress(Exception):
        cast(Any, client).close()


def open_collection(
    client: ClientAPI,
    name: str,
    embedding_function: EmbeddingFunction[Documents],
    *,
    create: bool,
    location: str,
) -> Collection | None:
    """The named collection (made in cosine space if ``create``), or None if absent.

    Raises ConfigError if it was made with another embedding function, naming both.
    """
    with infra(f"opening collection {name}"):
        try:
            # Opened without an embedding function: the store passes vectors itself, and
            # Chroma's own conflict check lets a collection of its "default" function through.
            collection = client.get_collection(name, embedding_function=None)
        except NotFoundError:
            if not create:
                return None
            collection = client.get_or_create_collection(
                name,
                configuration={"hnsw": {"space": "cosine"}},
                embedding_function=cast("EmbeddingFunction[Embeddable]", embedding_function),
            )
    check_collection(name, collection.configuration_json, embedding_function, location)
    return collection


def check_collection(
    name: str,
    configuration: dict[str, Any],
    embedding_function: EmbeddingFunction[Documents],
    location: str,
) -> None:
    """Refuse a collection not made with ``embedding_function`` or not in cosine space."""
    stored = configuration.get("embedding_function") or {}
    stored_name = stored.get("name") if stored.get("type") == "known" else None
    stored_config = stored.get("config") or {}
    mine, my_config = embedding_function.name(), embedding_function.get_config()
    if stored_name != mine or _semantic(stored_config) != _semantic(my_config):
        raise ConfigError(
            f"memory collection {name} in {location} was embedded with "
            f"{_describe(stored_name, stored_config)}, but this store is configured with "
            f"{_describe(mine, my_config)}; their vectors cannot be compared "
            "(use the original embedding function or a new memory location)"
        )
    hnsw = configuration.get("hnsw") or {}
    spann = configuration.get("spann") or {}
    space = hnsw.get("space") or spann.get("space")
    if space != "cosine":
        raise ConfigError(f"memory collection {name} in {location} uses the {space} space")


def _semantic(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k not in _NON_SEMANTIC_KEYS}


def _describe(name: str | None, config: dict[str, Any]) -> str:
    if name is None:
        return "no recorded embedding function"
    details = ", ".join(f"{k}={v}" for k, v in sorted(_semantic(config).items()))
    return f"embedding function {name!r}" + (f" ({details})" if details else "")
