"""Test helpers for trio-asgi and for apps served by it (like :mod:`trio.testing`).

The hypothesis strategies live in :mod:`trio_asgi.testing.strategies`, imported on
demand so that this package does not need hypothesis.
"""

from __future__ import annotations

from ._client_errors import ConnectionClosed as ConnectionClosed
from ._client_errors import InvalidResponse as InvalidResponse
from ._client_errors import WebSocketClosed as WebSocketClosed
from ._connection import TestConnection as TestConnection
from ._connection import TestRequest as TestRequest
from ._connection import TestResponse as TestResponse
from ._connection import TestServer as TestServer
from ._connection import open_test_server as open_test_server
from ._invariants import RecordedCall as RecordedCall
from ._invariants import RecordingApp as RecordingApp
from ._invariants import assert_app_calls as assert_app_calls
from ._invariants import assert_app_not_called as assert_app_not_called
from ._invariants import assert_bounded_buffering as assert_bounded_buffering
from ._invariants import assert_no_request_completed as assert_no_request_completed
from ._invariants import assert_no_server_errors as assert_no_server_errors
from ._invariants import capture_server_errors as capture_server_errors
from ._invariants import expect_one_response_each as expect_one_response_each
from ._invariants import max_buffered_bytes as max_buffered_bytes
from ._server_errors import ServerErrors as ServerErrors
from ._streams import Address as Address
from ._streams import AnyIOByteStream as AnyIOByteStream
from ._streams import BoundedMemoryStream as BoundedMemoryStream
from ._streams import MemoryStreamStatistics as MemoryStreamStatistics
from ._streams import bounded_memory_stream_pair as bounded_memory_stream_pair
from ._streams import open_memory_connection as open_memory_connection
from ._ws_client import TestWebSocket as TestWebSocket
from ._ws_client import WebSocketRejection as WebSocketRejection
