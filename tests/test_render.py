"""Rendering outbound parts to a channel's capabilities."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omnichannel_sdk import (
    Action,
    ActionsPart,
    Capabilities,
    EventPart,
    LocationPart,
    MediaPart,
    TemplatePart,
    TextPart,
    UnsupportedFeatureError,
    render_parts,
    split_text,
)
from omnichannel_sdk._render import html_to_text

SMS = Capabilities(max_text_length=1600, text_overflow="vendor")
CHAT = Capabilities(max_text_length=20, buttons=True, max_buttons=3, max_button_title=20,
                    media_kinds=frozenset({"image"}), locations=True, formats=frozenset({"plain", "markdown"}))


def test_buttons_fit_or_become_a_numbered_list() -> None:
    few = ActionsPart(prompt="Pick", actions=[Action(id="y", title="Yes"), Action(id="n", title="No")])
    assert render_parts([few], CHAT).parts == [few]
    many = ActionsPart(prompt="Pick", actions=[
        Action(id=str(i), title=f"T{i}") for i in range(4)] + [
        Action(id="web", title="Site", kind="url", value="https://x.test")])
    rendered = render_parts([many], SMS)
    assert rendered.parts == [TextPart(text="Pick\n1. T0\n2. T1\n3. T2\n4. T3\n5. Site: https://x.test")]
    assert [a["id"] for a in rendered.metadata["numbered_actions"]] == ["0", "1", "2", "3", "web"]


def test_media_and_locations_degrade_to_links() -> None:
    video = MediaPart(kind="video", url="https://cdn.test/v.mp4", caption="Clip")
    assert render_parts([video], SMS).parts == [TextPart(text="Clip: https://cdn.test/v.mp4")]
    image = MediaPart(kind="image", url="https://cdn.test/a.png")
    assert render_parts([image], CHAT).parts == [image]
    place = LocationPart(latitude=1.5, longitude=2.5, label="Shop")
    [text] = render_parts([place], SMS).parts
    assert isinstance(text, TextPart) and text.text.startswith("Shop\nhttps://www.openstreetmap.org/")
    with pytest.raises(UnsupportedFeatureError):
        render_parts([MediaPart(kind="file")], SMS)


def test_text_splits_truncates_or_is_left_to_the_vendor() -> None:
    long = "alpha beta gamma delta epsilon zeta"
    assert [p.text for p in render_parts([TextPart(text=long)], CHAT).parts] == [  # type: ignore[union-attr]
        "alpha beta gamma", "delta epsilon zeta"]
    truncating = Capabilities(max_text_length=10, text_overflow="truncate")
    assert render_parts([TextPart(text=long)], truncating).parts == [TextPart(text="alpha bet…")]
    assert render_parts([TextPart(text=long * 100)], SMS).parts == [TextPart(text=long * 100)]


def test_formats_the_channel_cannot_show_become_plain() -> None:
    [part] = render_parts([TextPart(text="<p>Hello<br>world</p><ul><li>a</li></ul>", format="html")], SMS).parts
    assert isinstance(part, TextPart) and part.format == "plain" and part.text == "Hello\nworld\n\n- a"
    [md] = render_parts([TextPart(text="**hi**", format="markdown")], CHAT).parts
    assert isinstance(md, TextPart) and md.format == "markdown"
    assert html_to_text("a &amp; b") == "a & b"


def test_unsendable_parts_are_refused() -> None:
    with pytest.raises(UnsupportedFeatureError):
        render_parts([TemplatePart(name="x")], SMS)
    with pytest.raises(UnsupportedFeatureError):
        render_parts([EventPart(name="typing")], SMS)
    with pytest.raises(UnsupportedFeatureError):
        render_parts([], SMS)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=2000), st.integers(1, 300))
def test_split_keeps_every_character_and_the_limit(text: str, limit: int) -> None:
    chunks = split_text(text, limit)
    assert all(len(c) <= limit for c in chunks)
    rebuilt = "".join(chunks)
    # only the whitespace a split falls on may go
    assert "".join(text.split()) == "".join(rebuilt.split())


@settings(max_examples=200, deadline=None)
@given(st.lists(st.builds(Action, id=st.text(min_size=1, max_size=4), title=st.text(min_size=1, max_size=30),
                          kind=st.sampled_from(["reply", "url", "postback", "call"]),
                          value=st.none() | st.text(max_size=10)), min_size=1, max_size=15))
def test_actions_always_render_somewhere(actions: list[Action]) -> None:
    rendered = render_parts([ActionsPart(actions=actions)], CHAT)
    if rendered.metadata:
        assert len(rendered.metadata["numbered_actions"]) == len(actions)
        assert all(isinstance(p, TextPart) and len(p.text) <= 20 for p in rendered.parts)
    else:
        assert rendered.parts == [ActionsPart(actions=actions)]
