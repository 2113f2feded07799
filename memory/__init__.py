"""Roundtable's retrieval memory: messages, pruned turns and documents in ChromaDB.

Standalone: imports nothing from ``agents``, ``conversations`` or ``ui``. Importing this package
registers the offline MiniLM embedding function with ChromaDB, so collections that name it can
be opened.
"""

from roundtable.memory.documents import Document, DocumentError, read_document
from roundtable.memory.embedding import (
    MODEL_SHA256,
    TOKENIZER_SHA256,
    EmbeddingSettings,
    MiniLMEmbedding,
    make_embedding_function,
)
from roundtable.memory.hits import DocumentEntry, Hit, Kind, MemoryStats
from roundtable.memory.passages import Passage, PassageMetadata, describe_added, split_passages
from roundtable.memory.store import MemoryStore

__all__ = [
    "MODEL_SHA256",
    "TOKENIZER_SHA256",
    "Document",
    "DocumentEntry",
    "DocumentError",
    "EmbeddingSettings",
    "Hit",
    "Kind",
    "MemoryStats",
    "MemoryStore",
    "MiniLMEmbedding",
    "Passage",
    "PassageMetadata",
    "describe_added",
    "make_embedding_function",
    "read_document",
    "split_passages",
]
