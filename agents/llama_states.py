"""Saved llama.cpp states, one per caller, so that no caller reads its conversation twice.

One ``Llama`` context serves every role and the manager. llama.cpp reuses only the longest
common prefix of the previous prompt, and each caller's prompt starts with its own
instructions, so every change of speaker used to re-read the whole conversation (22-28 s per
turn at 1,000 tokens on a loaded 2-core machine). Here the state after each call is kept per
caller; before a call, the saved state sharing the longest prefix with the new prompt is
restored when it beats what the context holds. A caller then evaluates only what was added
since its own previous call.

Why states and not a shared-first prompt layout: see the README ("Prefix reuse"). Only the
KV cache and the token ids are saved (``llama_state_get_data``): llama-cpp-python's own
``save_state`` also copies the logits buffer (100 MB for SmolLM2 at n_batch 512) on every save.
Restoring marks the context as needing evaluation, so the last prompt token is always
evaluated again and the logits are fresh.

Must be called with the engine's lock held (a context is not thread-safe).
"""

from __future__ import annotations

import ctypes
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import llama_cpp

MIN_GAIN = 32
"""A saved state is restored only when it saves at least this many tokens of evaluation over
what the context holds: restoring costs about a millisecond per megabyte."""


@dataclass(frozen=True)
class _Saved:
    ids: tuple[int, ...]
    data: bytes


def common_prefix(a: Iterable[int], b: Iterable[int]) -> int:
    """How many leading tokens ``a`` and ``b`` share."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


class PrefixStates:
    """Per-caller saved states of one context, least recently used dropped past a byte cap."""

    def __init__(self, capacity_bytes: int) -> None:
        self.capacity_bytes = capacity_bytes
        self._states: OrderedDict[str, _Saved] = OrderedDict()
        self.restores = 0
        """How many times a saved state replaced the live context (for tests and the bench)."""

    def clear(self) -> None:
        """Forget every saved state."""
        self._states.clear()

    @property
    def size_bytes(self) -> int:
        return sum(len(s.data) for s in self._states.values())

    def restore_best(self, llama: llama_cpp.Llama, prompt: Sequence[int]) -> int:
        """Put the context in the state sharing the longest prefix with ``prompt``; return
        that prefix's length (what llama.cpp will not evaluate again, before its last-token
        rule)."""
        live = common_prefix(llama.input_ids[: llama.n_tokens], prompt)
        best, best_len = None, live
        for key, saved in self._states.items():
            length = common_prefix(saved.ids, prompt)
            if length >= best_len + MIN_GAIN:
                best, best_len = key, length
        if best is None:
            return live
        saved = self._states[best]
        self._states.move_to_end(best)
        _load(llama, saved)
        self.restores += 1
        return best_len

    def save(self, llama: llama_cpp.Llama, caller: str) -> None:
        """Keep the context's state as ``caller``'s, replacing its previous one."""
        if self.capacity_bytes <= 0 or llama.n_tokens == 0:
            return
        self._states.pop(caller, None)
        saved = _dump(llama)
        if len(saved.data) > self.capacity_bytes:
            return
        self._states[caller] = saved
        while self.size_bytes > self.capacity_bytes:
            self._states.popitem(last=False)


def _dump(llama: llama_cpp.Llama) -> _Saved:
    ctx = llama.ctx
    size = llama_cpp.llama_state_get_size(ctx)
    buffer = (ctypes.c_uint8 * int(size))()
    written = int(llama_cpp.llama_state_get_data(ctx, buffer, size))
    if written > int(size):
        raise RuntimeError("llama.cpp wrote more state than it announced")
    ids = tuple(int(t) for t in llama.input_ids[: llama.n_tokens])
    return _Saved(ids=ids, data=bytes(memoryview(buffer)[:written]))


def _load(llama: llama_cpp.Llama, saved: _Saved) -> None:
    buffer = (ctypes.c_uint8 * len(saved.data)).from_buffer_copy(saved.data)
    if int(llama_cpp.llama_state_set_data(llama.ctx, buffer, len(saved.data))) != len(saved.data):
        raise RuntimeError("llama.cpp refused a saved state")
    n = len(saved.ids)
    llama.input_ids[:n] = saved.ids
    llama.n_tokens = n
    llama._requires_eval = True  # the logits are not part of the saved state
