"""Hypothesis strategies for fuzz-testing HTTP/1.1 and WebSocket servers and ASGI apps.

Requires hypothesis (``pip install trio-asgi[testing]``).

HTTP requests:
    :func:`http_requests` draws valid requests as :class:`RawRequest` (the
    parts and the bytes), on the routes, methods, query parameters, header
    fields and bodies you name, with the wire variations clients produce; its
    building blocks (:func:`tokens`, :data:`header_names`, :data:`field_values`,
    :data:`origin_targets`, :data:`hosts`, :data:`authorities`, :func:`bodies`)
    are strategies of their own. :func:`requests_from_openapi` draws them from an
    OpenAPI 3 document (FastAPI's ``app.openapi()``). :func:`pipelines` draws
    several requests back to back, and
    :func:`splits` the ways to deliver bytes in pieces. :func:`invalid_requests`
    mutates valid requests into one of the malformed or request-smuggling kinds
    listed in :data:`INVALID_REQUEST_KINDS`, each with the status a strict
    server answers.

WebSocket:
    :func:`websocket_handshakes` draws handshakes on the paths, query parameters,
    header fields and subprotocols you name (:class:`WebSocketHandshake`).
    :func:`ws_client_frames` draws valid client traffic (fragmentation, control
    frames between fragments, close codes and reasons), :func:`invalid_ws_frames`
    traffic ending in a defect from :data:`INVALID_WS_KINDS`, with the close
    code the server must send. :func:`encode_frame` writes any frame, valid or not.

HTTP/2:
    :func:`h2_requests` draws valid requests (:class:`H2Request`: pseudo-headers,
    fields, the body in DATA pieces, trailers); :func:`h2_interleavings` several on
    one connection with their frames interleaved (:class:`H2Interleaving`), sent by
    :func:`send_interleaving`. :func:`malicious_h2_frames` draws attacks
    (:class:`H2Attack`) of the kinds in :data:`H2_ATTACK_KINDS`, each with the
    answers owed. :func:`encode_h2_frame` and the frame builders write any frame.

ASGI apps:
    :func:`asgi_http_apps` draws :class:`ScriptedApp` instances: apps that
    answer well or misbehave (invalid messages, exceptions, early returns,
    slow or missing reads) and record what they saw.

Example:
    >>> import h11
    >>> from hypothesis import given, strategies as st
    >>> from trio_asgi.testing.strategies import http_requests, splits
    >>> @given(http_requests(), st.data())
    ... def test_any_split_parses(request, data):
    ...     server = h11.Connection(h11.SERVER)
    ...     for chunk in data.draw(splits(request.data)):
    ...         server.receive_data(chunk)
    ...     assert isinstance(server.next_event(), h11.Request)
    >>> test_any_split_parses()
"""

from __future__ import annotations

from ._asgi_apps import AppCall as AppCall
from ._asgi_apps import ExpectedResponse as ExpectedResponse
from ._asgi_apps import Raise as Raise
from ._asgi_apps import ReadBody as ReadBody
from ._asgi_apps import ReceiveOnce as ReceiveOnce
from ._asgi_apps import Return as Return
from ._asgi_apps import ScriptedApp as ScriptedApp
from ._asgi_apps import ScriptedAppError as ScriptedAppError
from ._asgi_apps import SendMessage as SendMessage
from ._asgi_apps import Sleep as Sleep
from ._asgi_apps import Step as Step
from ._asgi_apps import asgi_http_apps as asgi_http_apps
from ._disconnects import Disconnect as Disconnect
from ._disconnects import disconnects as disconnects
from ._h2_attacks import H2_ATTACK_KINDS as H2_ATTACK_KINDS
from ._h2_attacks import malicious_h2_frames as malicious_h2_frames
from ._h2_frames import H2_PREFACE as H2_PREFACE
from ._h2_frames import H2Flag as H2Flag
from ._h2_frames import H2Frame as H2Frame
from ._h2_frames import H2FrameReader as H2FrameReader
from ._h2_frames import H2FrameType as H2FrameType
from ._h2_frames import continuation_frame as continuation_frame
from ._h2_frames import data_frame as data_frame
from ._h2_frames import encode_h2_frame as encode_h2_frame
from ._h2_frames import encode_header_block as encode_header_block
from ._h2_frames import goaway_frame as goaway_frame
from ._h2_frames import headers_frame as headers_frame
from ._h2_frames import ping_frame as ping_frame
from ._h2_frames import priority_frame as priority_frame
from ._h2_frames import request_fields as request_fields
from ._h2_frames import rst_stream_frame as rst_stream_frame
from ._h2_frames import settings_frame as settings_frame
from ._h2_frames import window_update_frame as window_update_frame
from ._h2_requests import H2Attack as H2Attack
from ._h2_requests import H2Interleaving as H2Interleaving
from ._h2_requests import H2Request as H2Request
from ._h2_requests import send_interleaving as send_interleaving
from ._h2_strategies import h2_interleavings as h2_interleavings
from ._h2_strategies import h2_requests as h2_requests
from ._http_invalid import INVALID_REQUEST_KINDS as INVALID_REQUEST_KINDS
from ._http_invalid import RawInvalidRequest as RawInvalidRequest
from ._http_invalid import invalid_requests as invalid_requests
from ._http_requests import Framing as Framing
from ._http_requests import RawRequest as RawRequest
from ._http_requests import TargetForm as TargetForm
from ._http_requests import authorities as authorities
from ._http_requests import bodies as bodies
from ._http_requests import field_values as field_values
from ._http_requests import header_names as header_names
from ._http_requests import hosts as hosts
from ._http_requests import http_requests as http_requests
from ._http_requests import origin_targets as origin_targets
from ._http_requests import pipelines as pipelines
from ._http_requests import splits as splits
from ._http_requests import tokens as tokens
from ._openapi import requests_from_openapi as requests_from_openapi
from ._scenarios import ClientStep as ClientStep
from ._scenarios import Scenario as Scenario
from ._scenarios import ScenarioLog as ScenarioLog
from ._scenarios import client_scenarios as client_scenarios
from ._scenarios import run_scenario as run_scenario
from ._ws_frames import Frame as Frame
from ._ws_frames import Opcode as Opcode
from ._ws_frames import encode_frame as encode_frame
from ._ws_handshakes import WebSocketHandshake as WebSocketHandshake
from ._ws_handshakes import websocket_handshakes as websocket_handshakes
from ._ws_strategies import INVALID_WS_KINDS as INVALID_WS_KINDS
from ._ws_strategies import RawInvalidWsFrames as RawInvalidWsFrames
from ._ws_strategies import WsTraffic as WsTraffic
from ._ws_strategies import invalid_ws_frames as invalid_ws_frames
from ._ws_strategies import ws_client_frames as ws_client_frames
