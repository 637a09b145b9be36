"""The AMQP 1.0 side of the emulator: SASL, connections, sessions, links, CBS and ``$management``.

One asyncio task per TCP connection reads frames and handles them synchronously on the loop
thread; replies and deliveries are written straight to the transport. Only what the
``azure-servicebus`` SDK uses is implemented; anything else (sessions, topics, transactions,
deferral) is answered with an AMQP error that says so, never ignored.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import logging
import struct
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, quote_plus, urlsplit

from ._broker import Broker, Queue
from ._codec import (
    Array,
    DecodeError,
    Described,
    Symbol,
    UByte,
    UInt,
    ULong,
    UShort,
    decode,
    decode_all,
    encode,
)
from ._message import BATCH_FORMAT, StoredMessage, parse_message, split_batch

__all__ = ["AmqpServer", "Credentials"]

_LOG = logging.getLogger("emulators.servicebus")

# Performatives and other descriptors (AMQP 1.0 part 2, 3, 4, 5).
OPEN, BEGIN, ATTACH, FLOW, TRANSFER, DISPOSITION, DETACH, END, CLOSE = range(0x10, 0x19)
SASL_MECHANISMS, SASL_INIT, SASL_OUTCOME = 0x40, 0x41, 0x44
ERROR, SOURCE, TARGET, COORDINATOR = 0x1D, 0x28, 0x29, 0x30
RECEIVED, ACCEPTED, REJECTED, RELEASED, MODIFIED = 0x23, 0x24, 0x25, 0x26, 0x27
TRANSACTIONAL_STATE = 0x34

AMQP_HEADER = b"AMQP\x00\x01\x00\x00"
SASL_HEADER = b"AMQP\x03\x01\x00\x00"

MAX_FRAME_SIZE = 65536
MAX_MESSAGE_SIZE = 1024 * 1024
SESSION_WINDOW = 5000
LINK_CREDIT = 1000  # credit granted to each sending client, topped up when half is used

# Conditions the SDK maps to its exception types.
NOT_FOUND = Symbol("amqp:not-found")
NOT_IMPLEMENTED = Symbol("amqp:not-implemented")
UNAUTHORIZED = Symbol("amqp:unauthorized-access")
DECODE_ERROR = Symbol("amqp:decode-error")
INTERNAL_ERROR = Symbol("amqp:internal-error")
NOT_ALLOWED = Symbol("amqp:not-allowed")
LOCK_LOST = Symbol("com.microsoft:message-lock-lost")
ARGUMENT_ERROR = Symbol("com.microsoft:argument-error")

LOCK_LOST_TEXT = (
    "The lock supplied is invalid. Either the lock expired, or the message has already been removed from the queue."
)


def _error(condition: str, description: str) -> Described:
    return Described(ULong(ERROR), [Symbol(condition), description])


def _code(descriptor: Any) -> int:
    """Numeric descriptor, accepting the symbolic forms (``amqp:accepted:list``) too."""
    if isinstance(descriptor, int):
        return descriptor
    names = {
        "amqp:accepted:list": ACCEPTED,
        "amqp:rejected:list": REJECTED,
        "amqp:released:list": RELEASED,
        "amqp:modified:list": MODIFIED,
        "amqp:received:list": RECEIVED,
        "amqp:source:list": SOURCE,
        "amqp:target:list": TARGET,
        "amqp:coordinator:list": COORDINATOR,
        "amqp:transactional-state:list": TRANSACTIONAL_STATE,
    }
    return names.get(str(descriptor), -1)


def _field(values: list[Any], index: int, default: Any = None) -> Any:
    return values[index] if index < len(values) and values[index] is not None else default


@dataclass(frozen=True)
class Credentials:
    """The one shared access policy the emulator knows."""

    key_name: str
    key: str

    def check_token(self, token: str) -> tuple[str | None, str]:
        """Validate a SAS token; return (audience, "") or (None, why it was refused)."""
        scheme, _, query = token.partition(" ")
        if scheme != "SharedAccessSignature":
            return None, "the token is not a SharedAccessSignature"
        fields = {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}
        audience, signature, expiry = fields.get("sr"), fields.get("sig"), fields.get("se")
        if not audience or not signature or not expiry or not expiry.isdigit():
            return None, "the token is missing sr, sig or se"
        if fields.get("skn") != self.key_name:
            return None, f"the token is signed with an unknown policy {fields.get('skn')!r}"
        if int(expiry) < time.time():
            return None, "the token has expired"
        expected = hmac.new(self.key.encode(), f"{quote_plus(audience)}\n{expiry}".encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(base64.b64encode(expected).decode(), signature):
            return None, "InvalidSignature: The token has an invalid signature."
        return audience, ""


def entity_path(address: str) -> str:
    """``amqps://host:port/q/$management`` or ``sb://host/q`` -> ``q/$management``."""
    if "://" in address:
        address = urlsplit(address).path
    return address.strip("/")


@dataclass
class Link:
    """One attached link; ``role_sender`` is True when the broker sends on it."""

    session: Session
    name: str
    handle: int
    remote_handle: int
    role_sender: bool
    kind: str  # "queue", "cbs", "management" or "dead" (refused, waiting for the client's detach)
    address: str
    queue: Queue | None = None
    snd_settle_mode: int = 0
    rcv_settle_mode: int = 0
    # sender side (broker -> client)
    delivery_count: int = 0
    link_credit: int = 0
    # receiver side (client -> broker)
    incoming: bytearray = field(default_factory=bytearray)
    incoming_first: list[Any] | None = None
    attached: bool = True

    # Consumer protocol used by the broker
    @property
    def peek_lock(self) -> bool:
        return self.snd_settle_mode != 1

    @property
    def credit(self) -> int:
        return self.link_credit if self.attached else 0

    def deliver(self, queue: Queue, message: StoredMessage) -> None:
        token = message.lock_token if self.peek_lock else None
        payload = message.encode(with_lock=self.peek_lock)
        tag = token.bytes_le if token is not None else uuid.uuid4().bytes_le
        self.session.send_transfer(self, tag, payload, settled=not self.peek_lock, queue=queue, token=token)


@dataclass
class _Pending:
    link: Link
    queue: Queue
    token: uuid.UUID


class Session:
    """One AMQP session: handles, transfer ids and the broker's unsettled deliveries."""

    def __init__(self, connection: Connection, channel: int, next_incoming_id: int) -> None:
        self.connection = connection
        self.channel = channel
        self.next_incoming_id = next_incoming_id
        self.next_outgoing_id = 0
        self.next_delivery_id = 0
        self.links: dict[int, Link] = {}  # by the client's handle
        self.next_handle = 0
        self.unsettled: dict[int, _Pending] = {}

    # -- frames out -------------------------------------------------------------------------

    def send(self, performative: int, fields: list[Any], payload: bytes = b"") -> None:
        self.connection.send_frame(self.channel, performative, fields, payload)

    def flow_fields(self) -> list[Any]:
        return [
            UInt(self.next_incoming_id),
            UInt(SESSION_WINDOW),
            UInt(self.next_outgoing_id),
            UInt(SESSION_WINDOW),
        ]

    def send_link_flow(self, link: Link, *, drain: bool = False) -> None:
        fields = [*self.flow_fields(), UInt(link.handle), UInt(link.delivery_count), UInt(link.link_credit)]
        if drain:
            fields += [UInt(0), True]
        self.send(FLOW, fields)

    def send_transfer(
        self,
        link: Link,
        tag: bytes,
        payload: bytes,
        *,
        settled: bool,
        queue: Queue | None = None,
        token: uuid.UUID | None = None,
    ) -> None:
        delivery_id = self.next_delivery_id
        self.next_delivery_id = (self.next_delivery_id + 1) & 0xFFFFFFFF
        if link.link_credit > 0:
            link.link_credit -= 1
        link.delivery_count = (link.delivery_count + 1) & 0xFFFFFFFF
        if not settled and queue is not None and token is not None:
            self.unsettled[delivery_id] = _Pending(link, queue, token)
        # Split to the client's max frame size; 64 bytes covers the transfer performative itself.
        room = max(64, self.connection.remote_max_frame_size - 64 - len(tag))
        chunks = [payload[i : i + room] for i in range(0, len(payload), room)] or [b""]
        for index, chunk in enumerate(chunks):
            more = index < len(chunks) - 1
            if index == 0:
                fields = [UInt(link.handle), UInt(delivery_id), tag, UInt(0), settled, more]
            else:
                fields = [UInt(link.handle), None, None, None, None, more]
            self.send(TRANSFER, fields, chunk)
            self.next_outgoing_id = (self.next_outgoing_id + 1) & 0xFFFFFFFF

    def send_detach(self, link: Link, error: Described | None = None) -> None:
        self.send(DETACH, [UInt(link.handle), True, error])

    # -- frames in --------------------------------------------------------------------------

    def on_attach(self, fields: list[Any]) -> None:
        name = _field(fields, 0, "")
        remote_handle = int(_field(fields, 1, 0))
        client_is_receiver = bool(_field(fields, 2, False))
        source = _field(fields, 5)
        target = _field(fields, 6)
        terminus = source if client_is_receiver else target
        address = ""
        if isinstance(terminus, Described) and isinstance(terminus.value, list):
            address = str(_field(terminus.value, 0, ""))
        link = Link(
            session=self,
            name=name,
            handle=self.next_handle,
            remote_handle=remote_handle,
            role_sender=client_is_receiver,
            kind="dead",
            address=address,
            snd_settle_mode=int(_field(fields, 3, 2)),
            rcv_settle_mode=int(_field(fields, 4, 0)),
        )
        self.next_handle += 1
        self.links[remote_handle] = link
        refusal = self.connection.classify(link, source, target)
        reply = [
            name,
            UInt(link.handle),
            link.role_sender is False,
            UByte(link.snd_settle_mode),
            UByte(link.rcv_settle_mode),
            source,
            target,
            None,
            None,
            UInt(0) if link.role_sender else None,
            ULong(MAX_MESSAGE_SIZE),
        ]
        self.send(ATTACH, reply)
        if refusal is not None:
            link.kind = "dead"
            link.attached = False
            self.send_detach(link, refusal)
            return
        if not link.role_sender:
            link.link_credit = LINK_CREDIT
            link.delivery_count = int(_field(fields, 9, 0))
            self.send_link_flow(link)
        elif link.kind == "queue" and link.queue is not None:
            self.connection.broker.add_consumer(link.queue, link)

    def on_flow(self, fields: list[Any]) -> None:
        handle = _field(fields, 4)
        if handle is None:
            if _field(fields, 10, False):
                self.send(FLOW, self.flow_fields())
            return
        link = self.links.get(int(handle))
        if link is None or not link.attached:
            return
        if link.role_sender:
            remote_count = _field(fields, 5, 0)
            credit = int(_field(fields, 6, 0))
            link.link_credit = max(0, (int(remote_count) + credit - link.delivery_count) & 0xFFFFFFFF)
            if link.link_credit > 0x7FFFFFFF:  # the client's count ran ahead: treat as no credit
                link.link_credit = 0
            if link.kind == "queue" and link.queue is not None:
                self.connection.broker.dispatch(link.queue)
            if _field(fields, 8, False):  # drain: use up the credit we could not fill, say so
                link.delivery_count = (link.delivery_count + link.link_credit) & 0xFFFFFFFF
                link.link_credit = 0
                self.send_link_flow(link, drain=True)
                return
        if _field(fields, 9, False):  # echo
            self.send_link_flow(link)

    def on_transfer(self, fields: list[Any], payload: bytes) -> None:
        self.next_incoming_id = (self.next_incoming_id + 1) & 0xFFFFFFFF
        link = self.links.get(int(_field(fields, 0, 0)))
        if link is None:
            raise ProtocolError(Symbol("amqp:session:unattached-handle"), "transfer on an unattached handle")
        if link.incoming_first is None:
            link.incoming_first = fields
        link.incoming.extend(payload)
        if _field(fields, 5, False):  # more frames follow
            return
        first = link.incoming_first
        body = bytes(link.incoming)
        link.incoming = bytearray()
        link.incoming_first = None
        if _field(fields, 9, False):  # aborted
            return
        link.delivery_count = (link.delivery_count + 1) & 0xFFFFFFFF
        link.link_credit -= 1
        delivery_id = _field(first, 1)
        settled = bool(_field(first, 4, False))
        state = _field(first, 7)
        if isinstance(state, Described) and _code(state.descriptor) == TRANSACTIONAL_STATE:
            outcome = Described(
                ULong(REJECTED), [_error(NOT_IMPLEMENTED, "The emulator does not support transactions.")]
            )
        elif link.kind == "dead":
            outcome = Described(ULong(REJECTED), [_error(NOT_ALLOWED, "The link is detached.")])
        else:
            outcome = self.connection.on_message(link, body, int(_field(first, 3, 0)))
        if not settled and delivery_id is not None:
            self.send(DISPOSITION, [True, UInt(delivery_id), None, True, outcome])
        if link.link_credit < LINK_CREDIT // 2 and link.attached:
            link.link_credit = LINK_CREDIT
            self.send_link_flow(link)

    def on_disposition(self, fields: list[Any]) -> None:
        if not _field(fields, 0, False):
            return  # a sender's disposition about its own transfers: we never leave those unsettled
        first = int(_field(fields, 1, 0))
        last = int(_field(fields, 2, first))
        settled = bool(_field(fields, 3, False))
        state = _field(fields, 4)
        for delivery_id in range(first, last + 1):
            pending = self.unsettled.get(delivery_id)
            if pending is None:
                if not settled:
                    lost = Described(ULong(REJECTED), [_error(LOCK_LOST, LOCK_LOST_TEXT)])
                    self.send(DISPOSITION, [False, UInt(delivery_id), None, True, lost])
                continue
            outcome = self.connection.settle(pending, state)
            if outcome is None:
                continue  # non-terminal state (received): the delivery stays unsettled
            del self.unsettled[delivery_id]
            if not settled:
                self.send(DISPOSITION, [False, UInt(delivery_id), None, True, outcome])

    def on_detach(self, fields: list[Any]) -> None:
        link = self.links.pop(int(_field(fields, 0, 0)), None)
        if link is None:
            return
        if link.attached:
            link.attached = False
            self.send(DETACH, [UInt(link.handle), True])
        self.forget(link)

    def forget(self, link: Link) -> None:
        link.attached = False
        if link.kind == "queue" and link.queue is not None and link.role_sender:
            self.connection.broker.remove_consumer(link.queue, link)
        # Locks taken through this link stay valid until they expire, as in Service Bus: the
        # SDK settles them over $management once the receive link is gone.
        for delivery_id in [d for d, p in self.unsettled.items() if p.link is link]:
            del self.unsettled[delivery_id]

    def close(self) -> None:
        for link in list(self.links.values()):
            self.forget(link)
        self.links.clear()


class ProtocolError(Exception):
    """The client broke the protocol: close the connection with this condition."""

    def __init__(self, condition: str, description: str) -> None:
        super().__init__(description)
        self.condition = condition
        self.description = description


class Connection:
    """One client connection."""

    def __init__(
        self,
        server: AmqpServer,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.server = server
        self.broker = server.broker
        self.reader = reader
        self.writer = writer
        self.sessions: dict[int, Session] = {}
        self.remote_max_frame_size = 512
        self.audiences: set[str] = set()  # entity paths ("" for the namespace) with a valid token
        self.closed = False
        self.last_sent = time.monotonic()

    # -- I/O --------------------------------------------------------------------------------

    def send_frame(
        self, channel: int, performative: int, fields: list[Any], payload: bytes = b"", *, frame_type: int = 0
    ) -> None:
        if self.closed:
            return
        body = encode(Described(ULong(performative), fields)) + payload
        self.writer.write(struct.pack(">IBBH", 8 + len(body), 2, frame_type, channel) + body)
        self.last_sent = time.monotonic()

    async def _read_frame(self) -> tuple[int, int, bytes]:
        head = await self.reader.readexactly(8)
        size, doff, frame_type, channel = struct.unpack(">IBBH", head)
        if size < 8 or size > MAX_FRAME_SIZE:
            raise ProtocolError(Symbol("amqp:connection:framing-error"), f"bad frame size {size}")
        rest = await self.reader.readexactly(size - 8)
        return frame_type, channel, rest[doff * 4 - 8 :]

    async def run(self) -> None:
        try:
            await self._handshake()
            while not self.closed:
                frame_type, channel, body = await self._read_frame()
                if not body:
                    continue  # heartbeat
                if frame_type != 0:
                    raise ProtocolError(Symbol("amqp:connection:framing-error"), "unexpected SASL frame")
                performative, end = decode(body)
                if not isinstance(performative, Described) or not isinstance(performative.value, list):
                    raise ProtocolError(DECODE_ERROR, "a frame body must be a described list")
                self._on_frame(channel, int(performative.descriptor), performative.value, body[end:])
                await self.writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except (ProtocolError, DecodeError) as problem:
            condition = getattr(problem, "condition", DECODE_ERROR)
            _LOG.warning("closing connection: %s", problem)
            self.send_frame(0, CLOSE, [_error(condition, str(problem))])
        except Exception as problem:
            # A bug in the emulator: say so on the wire (the SDK then reports it) and in the log,
            # and keep serving the other connections.
            _LOG.exception("internal error; closing the connection")
            self.send_frame(0, CLOSE, [_error(INTERNAL_ERROR, f"Emulator internal error: {problem!r}")])
        finally:
            self._teardown()

    async def _handshake(self) -> None:
        header = await self.reader.readexactly(8)
        if header == SASL_HEADER:
            self.writer.write(SASL_HEADER)
            mechanisms = Array(0xB3, ["ANONYMOUS", "PLAIN"])
            self.send_frame(0, SASL_MECHANISMS, [mechanisms], frame_type=1)
            frame_type, _, body = await self._read_frame()
            init, _ = decode(body)
            if frame_type != 1 or not isinstance(init, Described) or int(init.descriptor) != SASL_INIT:
                raise ProtocolError(DECODE_ERROR, "expected sasl-init")
            mechanism = str(_field(init.value, 0, ""))
            outcome = 0
            if mechanism == "PLAIN":
                response = bytes(_field(init.value, 1, b""))
                parts = response.split(b"\x00")
                creds = self.server.credentials
                if len(parts) == 3 and parts[1].decode() == creds.key_name and parts[2].decode() == creds.key:
                    self.audiences.add("")
                else:
                    outcome = 1
            elif mechanism != "ANONYMOUS":
                outcome = 1
            self.send_frame(0, SASL_OUTCOME, [UByte(outcome)], frame_type=1)
            if outcome:
                await self.writer.drain()
                self.closed = True
                return
            header = await self.reader.readexactly(8)
        if header != AMQP_HEADER:
            # TLS or another protocol version: answer with what we speak, as the spec says.
            self.writer.write(AMQP_HEADER)
            _LOG.warning("refused a client: protocol header %r (the emulator speaks plain AMQP 1.0 only)", header)
            raise ConnectionError(f"unsupported protocol header {header!r}")
        self.writer.write(AMQP_HEADER)

    def _teardown(self) -> None:
        self.closed = True
        for session in self.sessions.values():
            session.close()
        self.sessions.clear()
        self.server.connections.discard(self)
        with contextlib.suppress(Exception):
            self.writer.close()

    async def heartbeat(self, interval: float) -> None:
        # The client closes a connection that stays silent past its idle time-out.
        while not self.closed:
            await asyncio.sleep(interval)
            if not self.closed and time.monotonic() - self.last_sent >= interval:
                self.writer.write(struct.pack(">IBBH", 8, 2, 0, 0))
                self.last_sent = time.monotonic()

    # -- dispatch ---------------------------------------------------------------------------

    def _on_frame(self, channel: int, performative: int, fields: list[Any], payload: bytes) -> None:
        if performative == OPEN:
            self.remote_max_frame_size = int(_field(fields, 2, 0xFFFFFFFF))
            idle = _field(fields, 4)
            self.send_frame(0, OPEN, ["servicebus-emulator", None, UInt(MAX_FRAME_SIZE), UShort(0xFFFF)])
            if idle:
                task = asyncio.ensure_future(self.heartbeat(int(idle) / 2000))
                self.server.tasks.add(task)
                task.add_done_callback(self.server.tasks.discard)
            return
        if performative == CLOSE:
            self.send_frame(0, CLOSE, [])
            self.closed = True
            return
        if performative == BEGIN:
            self.sessions[channel] = Session(self, channel, int(_field(fields, 1, 0)))
            self.send_frame(
                channel,
                BEGIN,
                [UShort(channel), UInt(0), UInt(SESSION_WINDOW), UInt(SESSION_WINDOW), UInt(0xFFFFFFFF)],
            )
            return
        if channel not in self.sessions:
            raise ProtocolError(Symbol("amqp:not-found"), f"no session on channel {channel}")
        session = self.sessions[channel]
        if performative == END:
            session.close()
            del self.sessions[channel]
            self.send_frame(channel, END, [])
        elif performative == ATTACH:
            session.on_attach(fields)
        elif performative == FLOW:
            session.on_flow(fields)
        elif performative == TRANSFER:
            session.on_transfer(fields, payload)
        elif performative == DISPOSITION:
            session.on_disposition(fields)
        elif performative == DETACH:
            session.on_detach(fields)
        else:
            raise ProtocolError(NOT_IMPLEMENTED, f"performative 0x{performative:02x} is not supported")

    # -- links ------------------------------------------------------------------------------

    def _authorized(self, path: str) -> bool:
        lowered = path.lower()
        return any(a in ("", lowered) or lowered.startswith(a + "/") for a in self.audiences)

    def classify(self, link: Link, source: Any, target: Any) -> Described | None:
        """Decide what the link is for; return the error that refuses it, if any."""
        if isinstance(target, Described) and _code(target.descriptor) == COORDINATOR:
            return _error(NOT_IMPLEMENTED, "The emulator does not support transactions.")
        path = entity_path(link.address)
        if path == "$cbs":
            link.kind = "cbs"
            return None
        if isinstance(source, Described) and isinstance(source.value, list):
            filters = _field(source.value, 7)
            if isinstance(filters, dict) and any("session-filter" in str(k) for k in filters):
                return _error(NOT_IMPLEMENTED, "The emulator does not support sessions.")
        management = path.lower().endswith("/$management")
        entity = path[: -len("/$management")] if management else path
        lowered = entity.lower()
        if "/subscriptions/" in lowered or lowered.endswith("/$transfer/$deadletterqueue"):
            return _error(NOT_IMPLEMENTED, f"The emulator supports queues only, not '{entity}'.")
        queue = self.broker.find(entity)
        if queue is None:
            return _error(
                NOT_FOUND,
                f"The messaging entity 'sb://{self.server.host}/{entity}' could not be found. "
                "The emulator knows the queues: " + ", ".join(q.name for q in self.broker.queues()),
            )
        if not self._authorized(entity):
            return _error(UNAUTHORIZED, f"Unauthorized access to '{entity}': put a valid token on $cbs first.")
        if not management and link.role_sender is False and queue.is_dead_letter:
            return _error(NOT_ALLOWED, "Messages cannot be sent to a dead-letter queue.")
        link.kind = "management" if management else "queue"
        link.queue = queue
        link.address = path
        return None

    def _reply_link(self, request_link: Link) -> Link | None:
        wanted = entity_path(request_link.address)
        for session in self.sessions.values():
            for link in session.links.values():
                if link.role_sender and link.attached and entity_path(link.address) == wanted:
                    return link
        return None

    # -- messages from clients -------------------------------------------------------------

    def on_message(self, link: Link, body: bytes, message_format: int) -> Described:
        """Handle one complete incoming message; return the outcome for its disposition."""
        try:
            if link.kind == "queue":
                assert link.queue is not None
                raw_messages = split_batch(body) if message_format == BATCH_FORMAT else [body]
                parsed = [parse_message(raw) for raw in raw_messages]
                for message in parsed:
                    self.broker.enqueue(link.queue, message)
                return Described(ULong(ACCEPTED), [])
            request = _Request.parse(body)
            if link.kind == "cbs":
                response = self._put_token(request)
            else:
                assert link.queue is not None
                response = self.server.management.handle(link.queue, request)
        except (DecodeError, ValueError, TypeError) as problem:
            return Described(ULong(REJECTED), [_error(DECODE_ERROR, f"Malformed message: {problem}")])
        reply = self._reply_link(link)
        if reply is None:
            return Described(
                ULong(REJECTED), [_error(NOT_ALLOWED, "Attach a receiver link to the node before sending.")]
            )
        reply.session.send_transfer(reply, uuid.uuid4().bytes, response, settled=True)
        return Described(ULong(ACCEPTED), [])

    def _put_token(self, request: _Request) -> bytes:
        operation = request.application_properties.get("operation")
        token = request.body
        token_type = request.application_properties.get("type")
        status, description = 202, "Accepted"
        if operation != "put-token":
            status, description = 400, f"Unsupported CBS operation {operation!r}."
        elif not isinstance(token, str) or not token.startswith("SharedAccessSignature "):
            # The SDK sends SAS tokens with type "jwt" as well as the sastoken type; the real
            # service accepts both, so the token itself decides.
            status, description = 401, f"The emulator accepts SAS tokens only (token type {token_type!r})."
        else:
            audience, why = self.server.credentials.check_token(token)
            if audience is None:
                status, description = 401, f"Unauthorized: {why}"
            else:
                status, description = self._check_audience(audience)
                if status < 300:
                    self.audiences.add(entity_path(audience).lower())
        properties = {"status-code": status, "status-description": description}
        return _response(request, properties, None)

    def _check_audience(self, audience: str) -> tuple[int, str]:
        # Like the real service, a token for an entity that does not exist is refused at put-token
        # time with 404, which is what the SDK reports for an unknown queue.
        path = entity_path(audience)
        lowered = path.lower()
        if not path:
            return 202, "Accepted"
        if "/subscriptions/" in lowered or lowered.endswith("/$transfer/$deadletterqueue"):
            return 404, (
                f"The messaging entity 'sb://{self.server.host}/{path}' could not be found: "
                "the emulator supports queues only (no topics, subscriptions or transfer queues)."
            )
        if self.broker.find(path) is None:
            known = ", ".join(q.name for q in self.broker.queues())
            return 404, (
                f"The messaging entity 'sb://{self.server.host}/{path}' could not be found. (emulator queues: {known})"
            )
        return 202, "Accepted"

    # -- settlement of our deliveries -----------------------------------------------------

    def settle(self, pending: _Pending, state: Any) -> Described | None:
        """Apply a client's outcome to a locked message; return the outcome to confirm."""
        broker, queue, token = self.broker, pending.queue, pending.token
        code = _code(state.descriptor) if isinstance(state, Described) else ACCEPTED
        values = state.value if isinstance(state, Described) and isinstance(state.value, list) else []
        lost = Described(ULong(REJECTED), [_error(LOCK_LOST, LOCK_LOST_TEXT)])
        if code == RECEIVED:
            return None
        if code == ACCEPTED:
            return Described(ULong(ACCEPTED), []) if broker.complete(queue, token) else lost
        if code == RELEASED:
            return Described(ULong(RELEASED), []) if broker.release(queue, token) else lost
        if code == REJECTED:
            error = _field(values, 0)
            info: dict[Any, Any] = {}
            description = None
            if isinstance(error, Described) and isinstance(error.value, list):
                description = _field(error.value, 1)
                info = _field(error.value, 2, {}) or {}
            reason = info.get("DeadLetterReason")
            description = info.get("DeadLetterErrorDescription", description)
            if broker.dead_letter(queue, token, reason, description):
                return Described(ULong(REJECTED), [])
            return lost
        if code == MODIFIED:
            delivery_failed = bool(_field(values, 0, False))
            undeliverable = bool(_field(values, 1, False))
            annotations = _field(values, 2, {}) or {}
            if undeliverable:
                if not broker.is_locked(queue, token):
                    return lost
                return Described(ULong(REJECTED), [_error(NOT_IMPLEMENTED, "The emulator does not support deferral.")])
            ok = broker.abandon(queue, token, annotations) if delivery_failed else broker.release(queue, token)
            return Described(ULong(MODIFIED), values) if ok else lost
        return Described(ULong(REJECTED), [_error(NOT_IMPLEMENTED, f"Unsupported outcome 0x{code:02x}.")])


@dataclass
class _Request:
    """A request message to $cbs or $management, fully decoded."""

    message_id: Any
    reply_to: str | None
    application_properties: dict[str, Any]
    body: Any

    @classmethod
    def parse(cls, buf: bytes) -> _Request:
        message_id, reply_to = None, None
        application_properties: dict[str, Any] = {}
        body = None
        for value, _, _ in decode_all(buf):
            if not isinstance(value, Described):
                raise ValueError("a message section must be a described type")
            code = int(value.descriptor) if isinstance(value.descriptor, int) else -1
            if code == 0x73:
                message_id = _field(value.value, 0)
                reply_to = _field(value.value, 4)
            elif code == 0x74:
                application_properties = {str(k): v for k, v in value.value.items()}
            elif code == 0x77:
                body = value.value
        return cls(message_id, reply_to, application_properties, body)


def _response(request: _Request, application_properties: dict[str, Any], body: Any) -> bytes:
    properties = Described(ULong(0x73), [None, None, None, None, None, request.message_id])
    parts = [encode(properties), encode(Described(ULong(0x74), application_properties))]
    parts.append(encode(Described(ULong(0x77), body)))
    return b"".join(parts)


class AmqpServer:
    """Accepts AMQP connections for one broker."""

    def __init__(self, broker: Broker, credentials: Credentials, host: str) -> None:
        from ._management import Management

        self.broker = broker
        self.credentials = credentials
        self.host = host
        self.management = Management(broker)
        self.connections: set[Connection] = set()
        self.tasks: set[asyncio.Future[Any]] = set()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = Connection(self, reader, writer)
        self.connections.add(connection)
        await connection.run()

    def close_all(self) -> None:
        for connection in list(self.connections):
            connection.send_frame(0, CLOSE, [_error("amqp:connection:forced", "The emulator is shutting down.")])
            connection._teardown()
        for task in list(self.tasks):
            task.cancel()
