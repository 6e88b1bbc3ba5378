"""Test helpers for trio-asgi and for apps served by it (like :mod:`trio.testing`).

The hypothesis strategies live in :mod:`trio_asgi.testing.strategies`, imported on
demand so that this package does not need hypothesis.
"""

from __future__ import annotations

from .._types import ASGIApp as ASGIApp
from .._types import Message as Message
from .._types import Receive as Receive
from .._types import Scope as Scope
from .._types import Send as Send
from ._app_failures import AppError as AppError
from ._app_failures import HungRequest as HungRequest
from ._app_failures import IncompleteResponse as IncompleteResponse
from ._client_errors import ConnectionClosed as ConnectionClosed
from ._client_errors import InvalidResponse as InvalidResponse
from ._client_errors import WebSocketClosed as WebSocketClosed
from ._connection import TestConnection as TestConnection
from ._h2_client import TestH2Connection as TestH2Connection
from ._h2_client import open_http2 as open_http2
from ._h2_invariants import assert_h2_attack_answered as assert_h2_attack_answered
from ._h2_invariants import assert_h2_bounded_buffering as assert_h2_bounded_buffering
from ._h2_invariants import assert_h2_requests_delivered as assert_h2_requests_delivered
from ._h2_invariants import assert_h2_responses_complete as assert_h2_responses_complete
from ._h2_invariants import assert_h2_still_serving as assert_h2_still_serving
from ._h2_invariants import max_h2_buffered_bytes as max_h2_buffered_bytes
from ._h2_responses import GoAway as GoAway
from ._h2_responses import TestH2Response as TestH2Response
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
from ._peak_memory import PeakMemory as PeakMemory
from ._peak_memory import max_peak as max_peak
from ._requests import TestRequest as TestRequest
from ._responses import TestResponse as TestResponse
from ._runner import BACKENDS as BACKENDS
from ._runner import Backend as Backend
from ._runner import run_in_virtual_time as run_in_virtual_time
from ._runner import with_test_server as with_test_server
from ._server_errors import ServerErrors as ServerErrors
from ._streams import Address as Address
from ._streams import AnyIOByteStream as AnyIOByteStream
from ._streams import BoundedMemoryStream as BoundedMemoryStream
from ._streams import MemoryStreamStatistics as MemoryStreamStatistics
from ._streams import bounded_memory_stream_pair as bounded_memory_stream_pair
from ._streams import open_memory_connection as open_memory_connection
from ._test_server import TestServer as TestServer
from ._test_server import open_test_server as open_test_server
from ._virtual_clock import VirtualClockEventLoop as VirtualClockEventLoop
from ._virtual_clock import wait_all_tasks_blocked as wait_all_tasks_blocked
from ._ws_client import TestWebSocket as TestWebSocket
from ._ws_client import WebSocketRejection as WebSocketRejection
