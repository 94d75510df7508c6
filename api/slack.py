"""The Slack bot: answers mentions, DMs and its slash command (`/cite` unless RAG_SLACK_COMMAND says
otherwise) with cited Block Kit replies, over HTTP or Socket Mode.

Over HTTP, `POST /slack/events` checks the signature on the raw body before anything parses it (401),
refuses signed bodies that are not what Slack sends (400), and acknowledges a replayed signed request
without answering it again. Then slack-bolt's `AsyncApp` answers `url_verification` and `ssl_check` and
skips the bot's own events. Every listener acknowledges first and answers in a lazy listener, on the
service's backend (a worker thread or an answering process), so Slack never waits 3 seconds. Retried
deliveries are dropped by event id; threads keep their earlier questions for follow-ups.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from urllib.parse import parse_qs

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from slack_bolt.adapter.fastapi.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from api.observability import error_body
from api.runtime import Backend, LocalBackend, ask_assistant
from api.schemas import strict_json
from api.slack_blocks import (
    SHARE_ACTION_ID,
    Block,
    answer_blocks,
    escape,
    fallback_text,
    notice_blocks,
    paginate,
    share_button,
    share_value,
    truncate,
)
from rag.config import Settings
from rag.errors import QuestionError, RagError
from rag.types import Answer, Turn

if TYPE_CHECKING:
    from rag.assistant import Assistant

log = logging.getLogger("rag.slack")

DEFAULT_API_URL = "https://slack.com/api/"
EVENTS_PATH = "/slack/events"
SIGNATURE_WINDOW_S = 5 * 60  # Slack's (and slack-bolt's) allowed clock difference, either way
# Retry reasons meaning Slack's first delivery never reached us, so the retry is the only copy to answer.
UNDELIVERED_RETRY_REASONS = frozenset({"connection_failed", "ssl_error", "too_many_redirects", "http_error"})
# Message subtypes that are still a person writing; every other subtype (edits, deletions, bots,
# joins...) is ignored.
USER_MESSAGE_SUBTYPES = frozenset({None, "thread_broadcast", "file_share"})

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TTLCache(Generic[K, V]):
    """A mapping that forgets entries after `ttl` seconds and keeps at most `maxsize` (oldest dropped first)."""

    def __init__(self, maxsize: int, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        if maxsize < 1 or ttl <= 0:
            raise ValueError("TTLCache needs maxsize >= 1 and ttl > 0")
        self.maxsize, self.ttl, self._clock = maxsize, ttl, clock
        self._data: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def _expire(self) -> None:
        now = self._clock()
        while self._data:
            key, (stamp, _) = next(iter(self._data.items()))
            if now - stamp < self.ttl:
                break
            del self._data[key]

    def get(self, key: K, default: V | None = None) -> V | None:
        self._expire()
        entry = self._data.get(key)
        return default if entry is None else entry[1]

    def set(self, key: K, value: V) -> None:
        """Store (or refresh) an entry; it becomes the newest."""
        self._expire()
        self._data[key] = (self._clock(), value)
        self._data.move_to_end(key)
        while len(self._data) > self.maxsize:
            self._data.popitem(last=False)

    def add(self, key: K, value: V) -> bool:
        """Store the entry unless the key is present; True when it was new (a check-and-set in one step)."""
        self._expire()
        if key in self._data:
            return False
        self.set(key, value)
        return True

    def __contains__(self, key: object) -> bool:
        self._expire()
        return key in self._data

    def __len__(self) -> int:
        self._expire()
        return len(self._data)


class ThreadHistory:
    """Earlier questions per Slack thread, bounded in threads, turns and age, for follow-up questions."""

    def __init__(self, max_threads: int = 2000, max_turns: int = 6, ttl: float = 24 * 3600) -> None:
        self.max_turns = max_turns
        self._threads: TTLCache[tuple[str, str], tuple[str, ...]] = TTLCache(max_threads, ttl)

    def turns(self, channel: str, thread_ts: str) -> list[Turn]:
        return [Turn("user", q) for q in self._threads.get((channel, thread_ts), ()) or ()]

    def add(self, channel: str, thread_ts: str, question: str) -> None:
        earlier = self._threads.get((channel, thread_ts), ()) or ()
        self._threads.set((channel, thread_ts), (*earlier, question)[-self.max_turns :])


@dataclass(slots=True)
class SharedAnswer:
    """What the "Share in channel" button posts: the rendered answer pages."""

    question: str
    text: str
    pages: list[list[Block]]


_USER_MENTION = re.compile(r"<@[UW][A-Z0-9]+(?:\|[^>]*)?>")
_CHANNEL_REF = re.compile(r"<#[A-Z0-9]+\|([^>]*)>")
_SPECIAL = re.compile(r"<![^>]*>")
_LINK = re.compile(r"<([^<>|]+)(?:\|([^<>]*))?>")


def question_from_slack(text: str) -> str:
    """The question in a Slack message: mentions dropped, links and channel names as plain text, unescaped."""
    text = _USER_MENTION.sub(" ", text)
    text = _CHANNEL_REF.sub(lambda m: "#" + m.group(1), text)
    text = _SPECIAL.sub(" ", text)
    text = _LINK.sub(lambda m: m.group(2) or m.group(1), text)
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return " ".join(text.split())


def api_base_url(settings: Settings) -> str:
    """The Web API base URL (SLACK_API_URL or Slack's), with the trailing slash slack_sdk requires."""
    url = (settings.slack_api_url or DEFAULT_API_URL).strip()
    if not url.startswith(("http://", "https://")):
        raise RagError(f"SLACK_API_URL must be an http(s) URL, got {url!r}")
    return url if url.endswith("/") else url + "/"


def retry_handlers() -> list[AsyncRetryHandler]:
    """Retries for Slack calls: after a 429 (waiting Retry-After), a 500/503, or a dropped connection."""
    return [
        AsyncConnectionErrorRetryHandler(max_retry_count=2),
        AsyncRateLimitErrorRetryHandler(max_retry_count=3),
        AsyncServerErrorRetryHandler(max_retry_count=2),
    ]


def _first_header(request: AsyncBoltRequest, name: str) -> str | None:
    values = request.headers.get(name)
    return values[0] if values else None


class _SkipDuplicateTokenWarning(logging.Filter):
    """slack-bolt warns "`token` will be unused" whenever SLACK_BOT_TOKEN is in the environment and a client
    is passed, even when the client carries that very token: the warning is wrong then, so it is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != warning_client_prioritized_and_token_skipped()


log.addFilter(_SkipDuplicateTokenWarning())


class SlackBot:
    """The bolt app and its state (seen events and requests, thread history, shareable answers) around the
    service's backend (or a callable returning it, for apps that load it after startup)."""

    def __init__(
        self,
        backend: Backend | Callable[[], Backend],
        settings: Settings,
        *,
        socket_mode: bool = False,
    ) -> None:
        if not settings.slack_bot_token:
            raise RagError("Slack needs SLACK_BOT_TOKEN (the app's xoxb- bot token)")
        if not socket_mode and not settings.slack_signing_secret:
            raise RagError("Slack over HTTP needs SLACK_SIGNING_SECRET (Basic Information > App Credentials)")
        self._backend = backend
        self.settings = settings
        self.command = settings.slack_command
        self.usage = f"Ask me about the news sources, e.g. `{self.command} How much did the government give?`"
        self.seen_events: TTLCache[str, bool] = TTLCache(maxsize=10_000, ttl=3600)
        self.seen_signatures: TTLCache[str, bool] = TTLCache(maxsize=50_000, ttl=2 * SIGNATURE_WINDOW_S)
        self.answered_messages: TTLCache[tuple[str, str], bool] = TTLCache(maxsize=10_000, ttl=3600)
        self.history = ThreadHistory()
        self.shared: TTLCache[str, SharedAnswer] = TTLCache(maxsize=500, ttl=24 * 3600)
        self._secret = (settings.slack_signing_secret or "").encode()
        self.client = AsyncWebClient(
            token=settings.slack_bot_token, base_url=api_base_url(settings), retry_handlers=retry_handlers()
        )
        # AsyncApp calls auth.test lazily, on the first request, through this client (so SLACK_API_URL
        # applies); nothing touches the network at construction.
        self.app = AsyncApp(
            name="rag-slack",
            client=self.client,
            signing_secret=settings.slack_signing_secret or "",
            request_verification_enabled=not socket_mode,  # Socket Mode frames are not signed
            logger=log,
        )
        self._register()

    # -- HTTP requests, before slack-bolt sees them ---------------------------------------------------

    def screen(self, raw: bytes, headers: Mapping[str, str]) -> Response | None:
        """The response for a request that must not reach slack-bolt, or None to let it through: 401 for a
        missing, malformed, stale or wrong signature (checked on the raw bytes, before parsing); 200 with
        nothing done for a replay of a signed request already received; 400 for a signed body that is not
        a Slack payload."""
        timestamp = headers.get("x-slack-request-timestamp", "")
        signature = headers.get("x-slack-signature", "")
        if not (timestamp.isascii() and timestamp.isdigit()) or not signature:
            return _slack_error(401, "missing or malformed Slack signature headers")
        if abs(time.time() - int(timestamp)) > SIGNATURE_WINDOW_S:
            return _slack_error(401, "expired Slack signature (timestamp more than 5 minutes off)")
        # Over the bytes as sent (slack_sdk's verifier decodes them first and fails on non-UTF-8 bodies).
        expected = "v0=" + hmac.new(self._secret, b"v0:" + timestamp.encode() + b":" + raw, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), signature.encode("latin-1")):
            return _slack_error(401, "invalid Slack signature")
        if not self.seen_signatures.add(signature, True):
            log.info("slack: replayed request (same signature) acknowledged without answering")
            return Response(status_code=200)
        problem = payload_problem(raw, headers.get("content-type", ""))
        if problem:
            log.info("slack: signed request refused: %s", problem)
            return _slack_error(400, f"malformed Slack request: {problem}")
        return None

    # -- wiring ------------------------------------------------------------------------------------

    def _register(self) -> None:
        app = self.app

        async def drop_redelivered(req: AsyncBoltRequest, next: Callable[[], Any]) -> BoltResponse | None:
            if self.is_redelivery(req):
                return BoltResponse(status=200, body="")
            return await next()

        async def ack_only(ack: Any) -> None:
            await ack()

        async def on_mention(body: dict, context: AsyncBoltContext) -> None:
            event = body.get("event")
            if isinstance(event, dict):
                await self.handle_message(event, context.bot_user_id)

        async def on_message(body: dict, context: AsyncBoltContext) -> None:
            event = body.get("event")
            if isinstance(event, dict) and event.get("channel_type") == "im":
                await self.handle_message(event, context.bot_user_id)

        async def ack_command(ack: Any, command: dict) -> None:
            if question_from_slack(command.get("text", "")):
                await ack(response_type="ephemeral", text=":mag: Looking that up in the sources…")
            else:
                await ack(response_type="ephemeral", text=self.usage)

        async def on_command(command: dict) -> None:
            await self.handle_command(command)

        async def on_share(body: dict) -> None:
            await self.handle_share(body)

        app.middleware(drop_redelivered)
        app.event("app_mention")(ack=ack_only, lazy=[on_mention])
        app.event("message")(ack=ack_only, lazy=[on_message])
        app.command(self.command)(ack=ack_command, lazy=[on_command])
        app.action(SHARE_ACTION_ID)(ack=ack_only, lazy=[on_share])

    def is_redelivery(self, req: AsyncBoltRequest) -> bool:
        """True for an event already received (same event_id), or a retry whose first delivery reached us."""
        body = req.body
        if body.get("type") != "event_callback":
            return False
        event_id = body.get("event_id")
        retry_num = _first_header(req, "x-slack-retry-num")
        reason = _first_header(req, "x-slack-retry-reason")
        # Socket Mode mirrors retry_attempt into this header, with "0" for a first delivery.
        retried = retry_num is not None and retry_num.strip() not in ("", "0")
        new = self.seen_events.add(event_id, True) if event_id else True
        if new and (not retried or reason in UNDELIVERED_RETRY_REASONS):
            return False
        log.info("slack: acknowledged without answering: event %s retry %s (%s)", event_id, retry_num, reason)
        return True

    @property
    def backend(self) -> Backend:
        return self._backend() if callable(self._backend) else self._backend

    # -- answering ---------------------------------------------------------------------------------

    async def ask(self, question: str, history: Sequence[Turn] = ()) -> Answer:
        """An answer from the backend (never on the event loop), within the request timeout."""
        return await asyncio.wait_for(self.backend.run(ask_assistant, question, tuple(history), None, None),
                                      timeout=self.settings.request_timeout_s)

    def render(self, answer: Answer) -> list[Block]:
        """The answer's blocks, titles linked to the original article when its URL is known."""
        catalog = self.backend.catalog()
        urls = {c.doc_id: url for c in answer.citations if (url := (catalog.get(c.doc_id) or {}).get("url"))}
        return answer_blocks(answer, public_url=self.settings.public_url, source_urls=urls)

    async def handle_message(self, event: Mapping[str, Any], bot_user_id: str | None) -> None:
        """Answer a mention or DM in its thread, with the thread's earlier questions as context."""
        if event.get("bot_id") or event.get("subtype") not in USER_MESSAGE_SUBTYPES:
            return
        user = event.get("user")
        if not user or user == bot_user_id:
            return
        channel, ts = event.get("channel"), event.get("ts")
        if not channel or not ts:
            return
        # A DM that mentions the bot can arrive as both app_mention and message.im: answer it once.
        if not self.answered_messages.add((channel, ts), True):
            return
        thread_ts = event.get("thread_ts") or ts
        question = question_from_slack(event.get("text", ""))
        if not question:
            await self.post(channel, thread_ts, self.usage, notice_blocks(self.usage))
            return
        history = self.history.turns(channel, thread_ts)
        if not history and thread_ts != ts:  # a thread we don't remember (e.g. after a restart)
            history = await self.thread_questions(channel, thread_ts, ts, bot_user_id)
        try:
            answer = await self.ask(question, history)
        except QuestionError as exc:
            message = f"I can't answer that: {exc}"
            await self.post(channel, thread_ts, message, notice_blocks(message))
            return
        except Exception:
            log.exception("slack: answering %r failed", question)
            message = "Sorry, something went wrong while answering. Please try again."
            await self.post(channel, thread_ts, message, notice_blocks(message))
            return
        self.history.add(channel, thread_ts, question)
        await self.post_answer(channel, thread_ts, answer)

    async def thread_questions(self, channel: str, thread_ts: str, before_ts: str, bot_user_id: str | None) -> list[Turn]:
        """Earlier questions of a thread read back with conversations.replies; [] when Slack refuses
        (channel threads need channels:history, which the manifest does not ask for)."""
        try:
            response = await self.client.conversations_replies(channel=channel, ts=thread_ts, limit=50)
        except SlackApiError as exc:
            log.debug("slack: conversations.replies in %s refused: %s", channel, exc.response.get("error"))
            return []
        except Exception:
            log.exception("slack: conversations.replies in %s failed", channel)
            return []
        questions = []
        for message in response.get("messages") or []:
            if (message.get("bot_id") or message.get("user") in (None, bot_user_id)
                    or message.get("subtype") not in USER_MESSAGE_SUBTYPES
                    or float(message.get("ts") or 0) >= float(before_ts)):
                continue
            if question := question_from_slack(message.get("text", "")):
                questions.append(question)
        return [Turn("user", q) for q in questions[-self.history.max_turns :]]

    async def post_answer(self, channel: str, thread_ts: str, answer: Answer) -> None:
        text = fallback_text(answer)
        for page in paginate(self.render(answer)):
            await self.post(channel, thread_ts, text, page)

    async def post(self, channel: str, thread_ts: str, text: str, blocks: list[Block]) -> bool:
        """chat.postMessage in the thread; Slack errors are logged (429s and 5xx were already retried)."""
        try:
            await self.client.chat_postMessage(
                channel=channel, thread_ts=thread_ts, text=text, blocks=blocks, unfurl_links=False, unfurl_media=False
            )
            return True
        except SlackApiError as exc:
            log.error("slack: chat.postMessage to %s failed: %s", channel, exc.response.get("error", exc))
        except Exception:
            log.exception("slack: chat.postMessage to %s failed", channel)
        return False

    async def respond(self, response_url: str, payload: dict[str, Any]) -> bool:
        """POST to a response_url (retrying 429s after Retry-After); errors are logged."""
        webhook = AsyncWebhookClient(response_url, retry_handlers=retry_handlers())
        try:
            response = await webhook.send_dict(payload)
        except Exception:
            log.exception("slack: response_url post failed")
            return False
        if response.status_code != 200:
            log.error("slack: response_url answered %s: %s", response.status_code, response.body)
            return False
        return True

    async def handle_command(self, command: Mapping[str, Any]) -> None:
        """`/ask <question>`: the answer goes to response_url, ephemeral, with a "Share in channel" button."""
        response_url = command.get("response_url")
        question = question_from_slack(command.get("text", ""))
        if not response_url or not question:
            return
        try:
            answer = await self.ask(question)
        except QuestionError as exc:
            await self.respond(response_url, {"response_type": "ephemeral", "text": f"I can't answer that: {exc}"})
            return
        except Exception:
            log.exception("slack: answering %r failed", question)
            text = "Sorry, something went wrong while answering. Please try again."
            await self.respond(response_url, {"response_type": "ephemeral", "text": text})
            return
        key = uuid.uuid4().hex
        text = fallback_text(answer)
        pages = paginate(self.render(answer), max_blocks=49)  # room for the button on the last page
        self.shared.set(key, SharedAnswer(question, text, pages))
        for i, page in enumerate(pages):
            blocks = page + [share_button(share_value(key, question))] if i == len(pages) - 1 else page
            await self.respond(response_url, {"response_type": "ephemeral", "text": text, "blocks": blocks})

    async def handle_share(self, body: Mapping[str, Any]) -> None:
        """The "Share in channel" button: post the answer in the channel and remove the ephemeral copy."""
        response_url = body.get("response_url")
        actions = body.get("actions") or [{}]
        user = (body.get("user") or {}).get("id")
        if not response_url:
            return
        try:
            value = json.loads(actions[0].get("value") or "{}")
        except json.JSONDecodeError:
            value = {}
        shared = self.shared.get(value.get("id", ""))
        if shared is None and value.get("q"):
            try:
                answer = await self.ask(value["q"])
            except Exception:
                log.exception("slack: re-asking a shared question failed")
                answer = None
            if answer is not None:
                shared = SharedAnswer(value["q"], fallback_text(answer), paginate(self.render(answer), 49))
        if shared is None:
            text = "This answer has expired; please ask again."
            await self.respond(response_url, {"response_type": "ephemeral", "replace_original": False, "text": text})
            return
        by = f"<@{user}> asked: " if user else "Asked: "
        asked = {"type": "context", "elements": [{"type": "mrkdwn", "text": truncate(by + escape(shared.question), 3000)}]}
        for i, page in enumerate(shared.pages):
            blocks = [asked, *page] if i == 0 else page
            payload = {"response_type": "in_channel", "replace_original": False, "text": shared.text, "blocks": blocks}
            if not await self.respond(response_url, payload):
                return
        await self.respond(response_url, {"delete_original": True})


def _slack_error(status: int, message: str) -> Response:
    return JSONResponse(error_body(message, "authentication_error" if status == 401 else "invalid_request_error"),
                        status_code=status)


def payload_problem(raw: bytes, content_type: str) -> str | None:
    """Why a (signed) body is not something Slack sends, or None: events are a JSON object with a string
    `type` (and an object `event` for event callbacks); commands and actions are forms, actions with a
    JSON object `payload`."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "the body is not UTF-8"
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "application/json":
        try:
            body = strict_json(raw)
        except json.JSONDecodeError as exc:
            return f"invalid JSON ({exc.msg})"
        if not isinstance(body, dict) or not isinstance(body.get("type"), str):
            return "a JSON event must be an object with a string 'type'"
        if body["type"] == "event_callback" and not isinstance(body.get("event"), dict):
            return "an event callback needs an 'event' object"
        return None
    if media == "application/x-www-form-urlencoded":
        form = parse_qs(text, keep_blank_values=True)
        if "payload" in form:
            try:
                payload = strict_json(form["payload"][0].encode("utf-8"))
            except json.JSONDecodeError as exc:
                return f"invalid JSON payload ({exc.msg})"
            if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
                return "the payload must be an object with a string 'type'"
            return None
        if not form.get("command"):
            return "a form needs a 'command' or a 'payload'"
        return None
    return f"unsupported content type {media or '(none)'!r}"


def mount_slack(app: FastAPI, backend: Backend | Callable[[], Backend], settings: Settings) -> bool:
    """Mount `POST /slack/events` (events, slash commands, interactivity) when the Slack bot token and
    signing secret are set; return whether it was mounted. `backend` may be a zero-argument callable
    returning it, for apps that load it after startup."""
    if not (settings.slack_bot_token and settings.slack_signing_secret):
        return False
    bot = SlackBot(backend, settings)
    handler = AsyncSlackRequestHandler(bot.app)

    async def slack_events(request: Request) -> Response:
        refused = bot.screen(await request.body(), request.headers)
        if refused is not None:
            return refused
        return await handler.handle(request)

    app.add_api_route(EVENTS_PATH, slack_events, methods=["POST"], include_in_schema=False, name="slack_events")
    app.state.slack_bot = bot
    log.info("slack: events, %s and interactivity at POST %s", settings.slack_command, EVENTS_PATH)
    return True


def _check_socket_mode(settings: Settings) -> str:
    token = settings.slack_app_token
    if not token:
        raise RagError("Socket Mode needs SLACK_APP_TOKEN: an app-level token (xapp-…) with connections:write")
    if not token.startswith("xapp-"):
        raise RagError("SLACK_APP_TOKEN must be an app-level token starting with 'xapp-'")
    return token


async def serve_socket_mode(assistant: Assistant, settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Connect over Socket Mode and answer with `assistant` (in worker threads) until `stop` is set
    (forever without one)."""
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    token = _check_socket_mode(settings)
    backend = LocalBackend(assistant)
    backend.follow_generations()
    bot = SlackBot(backend, settings, socket_mode=True)
    handler = AsyncSocketModeHandler(bot.app, token)  # apps.connections.open goes through bot.client
    await handler.connect_async()
    log.info("slack: connected over Socket Mode")
    try:
        await (stop or asyncio.Event()).wait()
    finally:
        await handler.close_async()
        await backend.close()


def run_socket_mode(assistant: Assistant, settings: Settings) -> None:
    """Run the bot over Socket Mode (SLACK_APP_TOKEN, no public URL needed) until interrupted."""
    _check_socket_mode(settings)
    if not settings.slack_bot_token:
        raise RagError("Slack needs SLACK_BOT_TOKEN (the app's xoxb- bot token)")
    asyncio.run(serve_socket_mode(assistant, settings))
