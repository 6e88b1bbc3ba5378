"""The how-to's example (docs/examples/fuzz_sample_app.py): hypothesis finds the planted bug."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from trio_asgi.testing import HungRequest

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "fuzz_sample_app.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_example_fuzz_sample_app", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_hypothesis_finds_the_planted_bug() -> None:
    example = _load()
    # The example's own test body and strategies, without its example database (the bug
    # must be found afresh) and without shrinking (seconds of it: not needed to know).
    search = settings(max_examples=500, deadline=None, database=None, phases=[Phase.generate])(
        given(text=st.text(min_size=1), data=st.data())(
            example.test_shouts_any_text.hypothesis.inner_test
        )
    )
    # The failure is the app's own exception, raised by the client's read.
    with pytest.raises(UnicodeDecodeError):
        search()


async def test_the_bug_needs_a_cut_inside_a_character(autojump_clock) -> None:
    from trio_asgi.testing import TestRequest, open_test_server

    example = _load()
    wire = TestRequest("POST", "/shout", body="é".encode()).data
    async with open_test_server(example.app, lifespan="off", raise_app_exceptions=False) as server:
        client = await server.connect()
        await client.send_in_pieces(wire, [len(wire) - 1])  # the cut inside "é"
        assert (await client.read_response("POST")).status == 500
        client = await server.connect()
        await client.send(wire)  # one piece: the bug hides
        assert (await client.read_response("POST")).body == "É".encode()


SHOP = Path(__file__).resolve().parents[2] / "docs" / "examples" / "fuzz_fastapi_shop.py"


def _shop() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_example_fuzz_fastapi_shop", SHOP)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("test_name", "planted"),
    [
        ("test_every_documented_request_is_answered", ZeroDivisionError),
        ("test_the_news_feed_ends_when_its_client_leaves", HungRequest),
        ("test_the_chat_room_survives_joins_and_leaves", RuntimeError),
    ],
)
def test_each_shop_test_finds_its_planted_bug(test_name: str, planted: type[Exception]) -> None:
    test = getattr(_shop(), test_name)
    # The example's own body and strategies, afresh (no database), without shrinking.
    search = settings(
        max_examples=300,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        report_multiple_bugs=False,
    )(given(**test.hypothesis._given_kwargs)(test.hypothesis.inner_test))
    with pytest.raises(planted):
        search()


def test_the_smuggling_example_passes_on_our_server() -> None:
    path = EXAMPLE.parent / "fuzz_smuggling.py"  # "fuzz_smuggling.py" in the docs
    spec = importlib.util.spec_from_file_location("docs_example_fuzz_smuggling", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.test_smuggling_never_reaches_the_app()
    # It ran: the recording app saw only the requests that were not refused (none).
    assert module.app.calls == []
