"""A Chainlit session inside the test process that keeps what the app sends, as a page would.

``recording_page()`` opens a Chainlit context whose emitter records every step and message by
id (sent, streamed, updated, removed), so a test can check the renderer's output whole,
without a server or a browser. Only the emitter is replaced; ``cl.Message`` and ``cl.Step``
run unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chainlit.context import init_http_context
from chainlit.emitter import BaseChainlitEmitter
from chainlit.session import BaseSession


@dataclass(frozen=True)
class Item:
    """One step or message as the page holds it now."""

    id: str
    type: str
    name: str
    output: str
    parent: str | None
    is_error: bool
    ended: bool
    default_open: bool


class RecordingEmitter(BaseChainlitEmitter):
    """Keeps the last state of every step and message, in the order they were first sent."""

    def __init__(self, session: BaseSession) -> None:
        super().__init__(session)
        self.state: dict[str, dict[str, Any]] = {}
        self.updates: dict[str, int] = {}
        self.elements: dict[str, dict[str, Any]] = {}

    async def send_step(self, step_dict: Any) -> None:
        self.state[step_dict["id"]] = dict(step_dict)

    async def stream_start(self, step_dict: Any) -> None:
        await self.send_step(step_dict)

    async def update_step(self, step_dict: Any) -> None:
        self.state.setdefault(step_dict["id"], {}).update(step_dict)
        self.updates[step_dict["id"]] = self.updates.get(step_dict["id"], 0) + 1

    async def send_element(self, element_dict: Any) -> None:
        self.elements[element_dict["id"]] = dict(element_dict)

    async def delete_step(self, step_dict: Any) -> None:
        self.state.pop(step_dict["id"], None)

    async def send_token(
        self, id: str, token: str, is_sequence: bool = False, is_input: bool = False
    ) -> None:
        step = self.state[id]
        step["output"] = token if is_sequence else step.get("output", "") + token

    def items(self) -> list[Item]:
        return [
            Item(
                id=key,
                type=str(raw.get("type")),
                name=str(raw.get("name")),
                output=str(raw.get("output") or ""),
                parent=raw.get("parentId"),
                is_error=bool(raw.get("isError")),
                ended=raw.get("end") is not None,
                default_open=bool(raw.get("defaultOpen")),
            )
            for key, raw in self.state.items()
        ]

    def messages(self) -> list[str]:
        """The text of every assistant message, in order."""
        return [i.output for i in self.items() if i.type == "assistant_message"]

    def steps(self, prefix: str) -> list[Item]:
        return [
            i for i in self.items() if i.type != "assistant_message" and i.name.startswith(prefix)
        ]


def recording_page() -> RecordingEmitter:
    """A fresh Chainlit context for this task, recording what is sent to it."""
    context = init_http_context()
    emitter = RecordingEmitter(context.session)
    context.emitter = emitter
    return emitter
