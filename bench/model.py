"""The embedded model: tokens per second through ``LlamaChatClient`` against raw llama-cpp-python.

Both paths run on the same loaded ``Llama`` (the engine's, under its lock), with the same
prompt tokens, sampling settings, seed and token cap, and its KV cache reset before every
call (llama-cpp-python otherwise reuses a matching prompt prefix and skips its evaluation).
The client path includes everything the client adds: rendering the chat template,
tokenizing, the worker thread, detokenizing and the hand-off of each piece of text to the
event loop. The raw path is ``Llama.generate`` over the token list, nothing else.

Prompt speed is prompt tokens over the time to the first generated token; generation speed
is the following tokens over the time they took. Calls alternate between the two paths.

Then the thread count: generation through the client with ``n_threads`` 1 and 2, on the
machine as it is and with one busy process beside it, which this module starts and stops
(the default of 1 thread was chosen because 2 collapsed under such load). Other processes
on the machine also count: the load average is in the note.

Owns the measurement only.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from autogen_core.models import CreateResult, LLMMessage, SystemMessage, UserMessage

from bench.figures import Row, row
from roundtable.agents.llama_client import (
    EmbeddedModelSettings,
    LlamaChatClient,
    LlamaEngine,
    render_messages,
)

BENCH = "model"
N_CTX = 2048
TEMPERATURE = 0.7
REPEAT_PENALTY = 1.15
MAX_TOKENS = 128
QUICK_MAX_TOKENS = 48
THREAD_TOKENS = 64
THREAD_CAP_S = 8.0
"""A reply that collapses (2 threads beside a busy process) is cut short after this."""
REPEATS = 5
QUICK_REPEATS = 2
THREAD_REPEATS = 3
QUICK_THREAD_REPEATS = 1
SEED = 1234
TARGET = 0.95
BUSY_LOOP = "while True: pass"

SYSTEM = (
    "You are the researcher in a small expert team that debates a question. Give concrete "
    "facts with numbers and name the kind of source. Keep to the question; do not repeat "
    "what others said; write plain sentences."
)
CONTEXT = (
    "analyst: Downtown bans elsewhere cut car traffic by a quarter to a third within two "
    "years. Retail footfall held where transit and delivery windows came first; it fell "
    "where they did not. Air quality improved measurably on the affected streets. "
)


def messages() -> list[LLMMessage]:
    """A prompt of a few hundred tokens, asking for a long answer so replies use their cap."""
    return [
        SystemMessage(content=SYSTEM),
        UserMessage(content="Should our city ban private cars downtown?", source="human"),
        UserMessage(content=CONTEXT * 3, source="analyst"),
        UserMessage(
            content="List thirty distinct facts about car bans in city centres, one per line.",
            source="human",
        ),
    ]


@dataclass(frozen=True)
class Timing:
    prompt_tokens: int
    generated: int
    to_first_s: float
    """From the call to the first generated token: prompt evaluation (and set-up)."""
    rest_s: float
    """From the first generated token to the last."""
    cut: bool = False
    """Cut short by the time cap."""

    @property
    def prompt_tok_s(self) -> float:
        return self.prompt_tokens / self.to_first_s

    @property
    def gen_tok_s(self) -> float:
        if self.generated < 2:  # a collapsed run: one token (or none) in the whole cap
            return max(self.generated, 1) / (self.to_first_s + self.rest_s)
        return (self.generated - 1) / self.rest_s


def forget_prompt(engine: LlamaEngine) -> None:
    """Empty the KV cache, so the next call evaluates its whole prompt again."""
    engine.llama.reset()  # type: ignore[no-untyped-call]  # llama_cpp leaves it unannotated


async def through_client(
    engine: LlamaEngine,
    max_tokens: int,
    seed: int,
    *,
    cap_s: float | None = None,
    fresh: bool = True,
) -> Timing:
    """One streamed reply; ``fresh`` empties the KV cache first; ``cap_s`` cuts the reply
    short (softly, through the stop signal) after that many seconds."""
    signal = threading.Event()
    client = LlamaChatClient(
        engine,
        max_tokens=max_tokens,
        temperature=TEMPERATURE,
        repeat_penalty=REPEAT_PENALTY,
        stop_signal=signal,
    )
    if fresh:
        forget_prompt(engine)  # no call is running: the lock is free
    cap = None if cap_s is None else asyncio.get_running_loop().call_later(cap_s, signal.set)
    first: float | None = None
    result: CreateResult | None = None
    started = time.perf_counter()
    stream = client.create_stream(messages(), extra_create_args={"seed": seed})
    async with contextlib.aclosing(stream):
        async for item in stream:
            if isinstance(item, CreateResult):
                result = item
            elif first is None:
                first = time.perf_counter()
    ended = time.perf_counter()
    if cap is not None:
        cap.cancel()
    if result is None or first is None:
        raise RuntimeError("the client streamed no text")
    return Timing(
        result.usage.prompt_tokens,
        result.usage.completion_tokens,
        first - started,
        ended - first,
        cut=client.last_interrupted,
    )


def raw(engine: LlamaEngine, max_tokens: int, seed: int) -> Timing:
    """The same call on ``Llama.generate`` directly: same tokens, settings, seed and cap."""
    tokens = engine.prompt_tokens(render_messages(messages()))
    llama = engine.llama
    with engine.lock:
        forget_prompt(engine)
        llama.set_seed(seed)
        first: float | None = None
        count = 0
        started = time.perf_counter()
        generator = llama.generate(tokens, temp=TEMPERATURE, repeat_penalty=REPEAT_PENALTY)
        try:
            for token in generator:
                if first is None:
                    first = time.perf_counter()
                if engine.is_end_of_turn(token):
                    break
                count += 1
                if count >= max_tokens:
                    break
        finally:
            generator.close()
        ended = time.perf_counter()
    if first is None:
        raise RuntimeError("raw generation yielded nothing")
    return Timing(len(tokens), count, first - started, ended - first)


# -- the thread count, with and without a busy neighbour ------------------------------------


@contextlib.contextmanager
def busy_process() -> Iterator[int]:
    """One process spinning on a core, as another debate or an embedding would; stopped after."""
    process = subprocess.Popen([sys.executable, "-c", BUSY_LOOP])
    try:
        time.sleep(0.5)  # let it get going
        yield process.pid
    finally:
        process.kill()
        process.wait()


def engine(threads: int) -> LlamaEngine:
    return LlamaEngine.load(EmbeddedModelSettings(n_ctx=N_CTX, n_threads=threads))


def client_vs_raw(repeats: int, max_tokens: int) -> list[Row]:
    shared = engine(1)
    ours: list[Timing] = []
    theirs: list[Timing] = []
    for n in range(repeats):
        seed = SEED + n
        if n % 2 == 0:  # alternate which path goes first
            ours.append(asyncio.run(through_client(shared, max_tokens, seed)))
            theirs.append(raw(shared, max_tokens, seed))
        else:
            theirs.append(raw(shared, max_tokens, seed))
            ours.append(asyncio.run(through_client(shared, max_tokens, seed)))
    out: list[Row] = []
    for phase, speed in (("prompt", _prompt), ("generation", _gen)):
        mine, raw_ = [speed(t) for t in ours], [speed(t) for t in theirs]
        ratio = statistics.median(a / b for a, b in zip(mine, raw_, strict=True))
        for case, values, is_ours in (
            (f"{phase}: LlamaChatClient", mine, True),
            (f"{phase}: raw Llama.generate", raw_, False),
        ):
            out.append(
                _speed_row(
                    case,
                    values,
                    tokens=ours[0].prompt_tokens if phase == "prompt" else max_tokens,
                    ratio=ratio if is_ours else 1.0,
                    anchor="raw Llama.generate, same run" if is_ours else "",
                    target=f"ratio >= {TARGET}" if is_ours else "",
                    note=_same_tokens(ours, theirs) + f"; 1 thread; {_load()}",
                )
            )
    return out


def threads(repeats: int) -> list[Row]:
    """Generation only: each engine evaluates the prompt once (untimed), later calls reuse it."""
    engines = {1: engine(1), 2: engine(2)}
    for warm in engines.values():
        asyncio.run(through_client(warm, 1, SEED))
    out: list[Row] = []
    for neighbour in ("idle", "busy"):
        speeds: dict[int, list[float]] = {1: [], 2: []}
        cut: dict[int, int] = {1: 0, 2: 0}
        with busy_process() if neighbour == "busy" else contextlib.nullcontext(0):
            load = _load()
            for n in range(repeats):
                for count in (1, 2) if n % 2 == 0 else (2, 1):
                    timing = asyncio.run(
                        through_client(
                            engines[count], THREAD_TOKENS, SEED + n, cap_s=THREAD_CAP_S, fresh=False
                        )
                    )
                    speeds[count].append(timing.gen_tok_s)
                    cut[count] += timing.cut
        label = "machine as is" if neighbour == "idle" else "+1 busy process"
        for count in (1, 2):
            out.append(
                _speed_row(
                    f"generation {count} thread{'s' if count > 1 else ''}, {label}",
                    speeds[count],
                    tokens=THREAD_TOKENS,
                    ratio=statistics.median(speeds[count]) / statistics.median(speeds[1]),
                    anchor="1 thread, same condition",
                    target="",
                    note=f"{load}; runs={len(speeds[count])}, "
                    f"{cut[count]} cut at {THREAD_CAP_S:.0f} s",
                )
            )
    return out


def _prompt(timing: Timing) -> float:
    return timing.prompt_tok_s


def _gen(timing: Timing) -> float:
    return timing.gen_tok_s


def _speed_row(
    case: str,
    tok_s: list[float],
    *,
    tokens: int,
    ratio: float,
    anchor: str,
    target: str,
    note: str,
) -> Row:
    """Speeds as microseconds per token (the table's unit), tokens per second beside them."""
    return row(
        BENCH,
        case,
        tokens,
        [1e6 / s for s in tok_s],
        unit="us per token; ratio of tok/s",
        ratio=ratio,
        anchor=anchor,
        target=target,
        note=note,
        tok_s=round(statistics.median(tok_s), 1),
    )


def _same_tokens(ours: list[Timing], theirs: list[Timing]) -> str:
    """Both paths must have done the same work, seed for seed: say so, or say they did not."""
    same = sum(
        a.prompt_tokens == b.prompt_tokens and a.generated == b.generated
        for a, b in zip(ours, theirs, strict=True)
    )
    generated = "/".join(str(t.generated) for t in ours)
    return f"same tokens in {same}/{len(ours)} pairs; generated {generated}"


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load avg {one:.1f}/{five:.1f} on {os.cpu_count()} cpus"


def run(quick: bool) -> list[Row]:
    if quick:
        return client_vs_raw(QUICK_REPEATS, QUICK_MAX_TOKENS) + threads(QUICK_THREAD_REPEATS)
    return client_vs_raw(REPEATS, MAX_TOKENS) + threads(THREAD_REPEATS)
