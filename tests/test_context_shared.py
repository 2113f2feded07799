"""The shared-first prompt layout (``SharedLayout``): the conversation first, alike for every
caller on one model, then the memory block and the caller's instructions; every caller prunes
alike, so consecutive calls by different roles share their prefix."""

from __future__ import annotations

import random

from autogen_agentchat.agents import AssistantAgent
from autogen_core.models import AssistantMessage, LLMMessage, SystemMessage, UserMessage

from roundtable.agents import ScriptedChatCompletionClient
from roundtable.conversations.context import BudgetedContext, SharedLayout
from roundtable.conversations.pick_prompt import PickHistory, pick_prompt
from roundtable.transcripts import MessageEvent, now

HUMAN = "human"
ROLES = {"analyst": ("weigh the options", 20), "critic": ("find the weakest point now", 30)}
PEERS = tuple(ROLES.values())


def words(text: str) -> int:
    return len(text.split())


def shared_context(role: str, *, window: int = 240, memory: bool = True) -> BudgetedContext:
    instructions, reserve = ROLES[role]
    return BudgetedContext(
        window=window,
        reserve=reserve,
        system_prompt=instructions,
        counter=words,
        margin=0,
        block_share=0.25,
        shared=SharedLayout(peers=PEERS, memory=memory),
    )


async def test_the_conversation_comes_first_then_memory_then_the_instructions() -> None:
    client = ScriptedChatCompletionClient(["ok"])
    ctx = shared_context("analyst")
    ctx.set_memory_block("earlier finding")
    agent = AssistantAgent("analyst", model_client=client, system_message=None, model_context=ctx)
    await agent.run(task="Should we ban cars?")
    (call,) = client.calls
    assert call.messages == [
        UserMessage(content="Should we ban cars?", source="user"),
        SystemMessage(content="earlier finding"),
        SystemMessage(content="weigh the options"),
    ]


async def test_a_caller_s_own_turn_is_kept_as_the_others_see_it() -> None:
    ctx = shared_context("analyst", memory=False)
    await ctx.add_message(UserMessage(content="Q?", source=HUMAN))
    await ctx.add_message(AssistantMessage(content="Buses first.", source="analyst"))
    sent = await ctx.get_messages()
    assert sent[1] == UserMessage(content="Buses first.", source="analyst")
    assert sent[-1] == SystemMessage(content="weigh the options")


async def test_callers_on_one_model_prune_alike_so_their_prompts_share_the_prefix() -> None:
    """Two roles with different instructions, reply sizes and memory blocks of any size see
    the same kept turns on every call; their prompts differ only in the tail, and the prefix
    moves only at a prune, which frees a quarter of the window at once."""
    rng = random.Random(7)
    contexts = {role: shared_context(role) for role in ROLES}
    for ctx in contexts.values():
        await ctx.add_message(UserMessage(content="Should we ban cars downtown?", source=HUMAN))
    previous: list[LLMMessage] = []
    moves, added = 0, 0
    for n in range(1, 61):
        text = " ".join([f"t{n}"] * rng.randint(3, 20))
        added += words(text) + 5  # the speaker's name and the per-message overhead
        for role, ctx in contexts.items():
            source = "analyst" if n % 2 else "critic"
            own = source == role
            message: LLMMessage = (
                AssistantMessage(content=text, source=source)
                if own
                else UserMessage(content=text, source=source)
            )
            await ctx.add_message(message)
            ctx.set_memory_block(" ".join(["note"] * rng.randint(0, 40)) or None)
        prompts = {role: await ctx.get_messages() for role, ctx in contexts.items()}
        bodies = [
            [m for m in sent if not isinstance(m, SystemMessage)] for sent in prompts.values()
        ]
        assert bodies[0] == bodies[1], n
        for role, sent in prompts.items():
            assert sent[-1] == SystemMessage(content=ROLES[role][0])
            report = contexts[role].last_prune
            assert report is None or report.tokens_after <= report.budget
        if previous and bodies[0][: len(previous) - 1] != previous[:-1]:
            moves += 1
        previous = bodies[0]
    assert contexts["analyst"].last_prune is not None  # the run did outgrow the window
    # Each prune frees a quarter of the 240-token window (60 tokens): the prefix moves at
    # most once per 60 tokens added, not at every turn once the window is full.
    assert 1 <= moves <= added // 60, (moves, added)


def message(seq: int, speaker: str, content: str) -> MessageEvent:
    return MessageEvent(seq=seq, at=now(), turn=seq, speaker=speaker, content=content)


def test_a_shared_first_pick_reads_whole_turns_then_its_instructions() -> None:
    long = "word " * 200  # 1,000 characters: a role-first pick cuts it to 400
    history = PickHistory(words, 4096, shared_first=True)
    turns = [message(1, HUMAN, "Should we ban cars?"), message(2, "analyst", long)]
    read = history(turns)
    assert read == [UserMessage(content=t.content, source=t.speaker) for t in turns]
    assert len(str(PickHistory(words, 4096)(turns)[-1].content)) == 400
    prompt = pick_prompt({"critic": "finds flaws"}, ["critic"], read, instructions_last=True)
    assert prompt[: len(read)] == read
    assert isinstance(prompt[-2], SystemMessage) and "critic" in str(prompt[-2].content)
    assert prompt[-1].source == "manager"  # type: ignore[union-attr]


def test_each_pick_begins_as_the_previous_one_did_except_at_a_prune() -> None:
    """The question and the newest turn are always read; older turns are dropped in blocks of
    a quarter of the window, so the prefix a model server reuses moves rarely."""
    rng = random.Random(3)
    window = 900  # 900 - 60 - 400 = 440 tokens of history
    history = PickHistory(words, window, shared_first=True)
    turns = [message(1, HUMAN, "Should we ban cars downtown?")]
    previous: list[LLMMessage] = []
    moves, added = 0, 0
    for seq in range(2, 122):
        text = " ".join([f"t{seq}"] * rng.randint(3, 30))
        added += words(text) + 5
        turns.append(message(seq, "analyst" if seq % 2 else "critic", text))
        read = history(turns)
        assert read[0].content == "Should we ban cars downtown?" and read[-1].content == text
        assert sum(words(f"{m.source}: {m.content}") + 4 for m in read) <= 440  # type: ignore[union-attr]
        if previous and read[: len(previous)] != previous:
            moves += 1
        previous = read
    assert len(previous) < len(turns)  # it did prune
    assert 1 <= moves <= added // (window // 4), (moves, added)
