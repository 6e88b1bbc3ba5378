"""The sans-IO HTTP/2 core against the toolkit's attack strategies, synchronously.

The same :func:`~trio_asgi.testing.strategies.malicious_h2_frames` that fuzz the
real server in memory (``tests/testing/test_fuzz_http2.py``) are fed here to
:class:`H2ServerConnection` alone, many more examples per second, with any split of
the bytes: the answer owed comes out, the output backlog stays bounded, and the
frame scanner never holds more than one frame.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_asgi._protocol._http2 import H2ServerConnection
from trio_asgi._protocol._http2_limits import H2Settings
from trio_asgi.testing.strategies import (
    H2_ATTACK_KINDS,
    H2_PREFACE,
    H2Attack,
    H2FrameReader,
    H2FrameType,
    malicious_h2_frames,
    settings_frame,
    splits,
)


def answers_of(output: bytes) -> set[tuple[str, int]]:
    answers: set[tuple[str, int]] = set()
    for frame in H2FrameReader().feed(output):
        code = frame.error_code
        if frame.type == H2FrameType.GOAWAY and code:
            answers.add(("goaway", code))
        elif frame.type == H2FrameType.RST_STREAM and code is not None:
            answers.add(("reset", code))
    return answers


@pytest.mark.parametrize("kind", sorted(H2_ATTACK_KINDS))
def test_each_attack_gets_its_answer_from_the_core(kind: str) -> None:
    @settings(max_examples=25, deadline=None)
    @given(attack=malicious_h2_frames([kind]), data=st.data())
    def check(attack: H2Attack, data: st.DataObject) -> None:
        limits = H2Settings()
        server = H2ServerConnection(limits)
        output = bytearray(server.data_to_send())
        server.receive_data(H2_PREFACE + settings_frame(), 0.0)
        output += server.data_to_send()
        for piece in data.draw(splits(attack.data, max_chunks=4), label="pieces"):
            server.receive_data(piece, 0.0)
            assert server.pending_output <= limits.max_pending_output_hard + limits.max_frame_size
            output += server.data_to_send()
            if server.terminated is not None:
                break  # what is left of the read is dropped with the connection
            assert server._scanner.buffered <= limits.max_frame_size + 9
        observed = answers_of(bytes(output))
        assert observed & attack.answers, (attack.kind, sorted(observed))

    check()
