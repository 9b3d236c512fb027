"""The webhook reference's curl examples are run, so that they cannot rot.

docs/reference/webhook.md shows each option with ``$ curl ...`` commands and what they print, against a
server started with the page's example workflows (the first YAML block under "Examples used on this
page", and the ``webhook-slow.yaml`` one, whose ``delay`` node comes from the guide's ``hookline-set``).
Here that server runs (``hookline serve`` on 127.0.0.1, with ``HOOK_PASSWORD=s3cret`` and the tokens the
page uses), every command is run in the page's order with ``bash``, and its output must match the page:

- an answer shown with its headers (``curl -i``) must have that status and each header shown (others,
  such as ``connection`` and ``date``, may be there too);
- ``...`` and ``{...}`` stand for anything; execution ids, status URL tokens, timestamps and
  ``content-length`` values are those of one run and may differ; everything else must be as shown.

Commands that are not curl calls to the server (``hookline ...``) are not run. A command that cannot run
here says why in SKIPPED; every top-level trigger option must have an example that runs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import pip_install
from hookline.testing import TEST_TOKEN, HooklineServer
from hookline_webhook.trigger import CONFIG_SCHEMA

REPO = Path(__file__).resolve().parent.parent
PAGE = REPO / "docs" / "reference" / "webhook.md"
EXAMPLE_SET = REPO / "examples" / "plugins" / "hookline-set"
_BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
_HEADING = re.compile(r"^(#{1,4}) (.+)$", re.MULTILINE)
#: The JWT secret of the page's ``jwt`` workflow (``JWT_SECRET`` in the server's environment).
JWT_SECRET = "an-example-secret-of-at-least-32-bytes"

#: Commands that do not run here, by a fragment of their text, with why.
SKIPPED: dict[str, str] = {
    # The page shows the same call on a server started without HOOK_PASSWORD.
    "secured-env -u hook:s3cret   # a server without": "needs a second server, started without HOOK_PASSWORD",
    # The status URL's token is the server's; no answer on the page gave it for this execution.
    "secured/executions/16?token=Vq3Ck0xH2mSWb1p8XcGf7A' -u": "the token of an execution no answer showed",
}


@dataclass(frozen=True)
class Example:
    section: str
    command: str
    expected: str
    line: int

    @property
    def id(self) -> str:
        return f"L{self.line}-{re.sub(r'[^a-z0-9]+', '-', self.section.lower()).strip('-')}"


def page_examples() -> list[Example]:
    text = PAGE.read_text()
    headings = [(m.start(), m.group(2)) for m in _HEADING.finditer(text)]
    examples = []
    for block in _BLOCK.finditer(text):
        if block.group(1) not in ("", "console", "shell"):
            continue
        section = [title for start, title in headings if start < block.start()][-1]
        first_line = text.count("\n", 0, block.start(2)) + 1
        lines = block.group(2).splitlines()
        index = 0
        while index < len(lines):
            if not lines[index].startswith("$ "):
                index += 1
                continue
            start = index
            command = lines[index][2:]
            index += 1
            output = []
            while index < len(lines) and not lines[index].startswith("$ "):
                output.append(lines[index])
                index += 1
            if "127.0.0.1:8000" in command:
                examples.append(Example(section, command, "\n".join(output).strip("\n"), first_line + start))
    return examples


EXAMPLES = page_examples()


def workflow_files(tmp: Path) -> Path:
    """The page's example workflows, as the page says to save them."""
    text = PAGE.read_text()
    folder = tmp / "workflows"
    folder.mkdir()
    for block in _BLOCK.finditer(text):
        body = block.group(2)
        name = re.match(r"# ([\w-]+\.yaml)\n", body)
        if block.group(1) == "yaml" and name:
            (folder / name.group(1)).write_text(body)
    return folder


def jwt(claims: dict[str, object]) -> str:
    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    signing_input = f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}"
    signature = hmac.new(JWT_SECRET.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


#: What the page's commands use besides curl.
TOOLS = ("curl", "openssl", "python3", "bash")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HooklineServer]:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"the page's examples need {', '.join(missing)} (apt-get install {' '.join(missing)})")
    root = tmp_path_factory.mktemp("reference-examples")
    site = pip_install(EXAMPLE_SET, root / "set-site")  # the delay node of the timeout examples
    env = {
        "HOOK_PASSWORD": "s3cret",
        "JWT_SECRET": JWT_SECRET,
        "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
    }
    (root / "r.pdf").write_bytes(b"%PDF-1.4 \x00\xff")  # the page's multipart examples upload it
    process = HooklineServer(f"sqlite://{root / 'examples.db'}", workflows=workflow_files(root), cwd=root, env=env)
    process.start(root / "server.log")
    yield process
    process.stop()


#: A status URL in an answer: its workflow, execution and token.
_STATUS_URL = re.compile(r"/api/webhooks/([\w.-]+)/executions/(\d+)\?token=([\w-]+)")


def run(example: Example, server: HooklineServer, status_urls: dict[str, str]) -> str:
    """``example``'s output. ``status_urls``: the last status URL path each workflow's answers
    gave, put in place of the page's in later commands (its token is this server's)."""
    now = int(time.time())
    env = {
        **os.environ,
        "HOOKLINE_API_TOKEN": TEST_TOKEN,
        "TOKEN": jwt({"sub": "shop-42", "aud": "hookline", "exp": now + 300}),
        "EXPIRED_TOKEN": jwt({"sub": "shop-42", "aud": "hookline", "exp": now - 3600}),
    }
    command = _STATUS_URL.sub(lambda m: status_urls.get(m.group(1), m.group(0)), example.command)
    command = command.replace("127.0.0.1:8000", f"127.0.0.1:{server.port}")
    done = subprocess.run(["bash", "-c", command], capture_output=True, env=env, timeout=60, cwd=server.cwd, check=False)
    output = (
        done.stdout.decode("utf-8", "replace")
        .replace("\r\n", "\n")
        .replace(f"127.0.0.1:{server.port}", "127.0.0.1:8000")
    )
    for match in _STATUS_URL.finditer(output):
        status_urls[match.group(1)] = match.group(0)
    return output


#: What changes from run to run, in the page's text -> what it matches in an answer.
_VOLATILE = [
    (re.compile(r"\\\.\\\.\\\."), r".*?"),  # ... (escaped)
    (re.compile(r"(x\\-hookline\\-execution:\\ )\d+"), r"\g<1>\\d+"),
    (re.compile(r'("(?:execution|id|capture)":)\d+'), r"\g<1>\\d+"),
    (re.compile(r'("execution":")\d+(")'), r"\g<1>\\d+\g<2>"),
    (re.compile(r"(/executions/)\d+"), r"\g<1>\\d+"),
    (re.compile(r"(token=)[A-Za-z0-9_\\-]+"), r"\g<1>[A-Za-z0-9_-]+"),
    (re.compile(r"\d{4}\\-\d\d\\-\d\dT[0-9:.+\\-]+(?:Z)?"), r"[0-9T:.+Z-]+"),
]


def pattern_of(expected: str) -> re.Pattern[str]:
    text = re.escape(expected).replace(r"\{\.\.\.\}", r"\.\.\.")
    for volatile, replacement in _VOLATILE:
        text = volatile.sub(replacement, text)
    return re.compile(text, re.DOTALL)


def mismatch(expected: str, actual: str) -> str | None:
    """Why ``actual`` is not what the page shows, or ``None``."""
    if expected.startswith("HTTP/1.1 "):
        head, _, body = expected.partition("\n\n")
        got_head, _, got_body = actual.partition("\n\n")
        status, *headers = head.splitlines()
        got_status, *got_headers = got_head.splitlines()
        if status.split()[1] != (got_status.split() + ["", ""])[1]:
            return f"status {got_status!r}, the page shows {status!r}"
        got = [_header(line) for line in got_headers]
        for line in headers:
            if line.strip() == "..." or line.lower().startswith("content-length:"):
                continue
            if not any(pattern_of(_header(line)).fullmatch(header) for header in got):
                return f"header {line!r} not in the answer's {got_headers}"
        expected, actual = body, got_body
    if not expected.strip():  # no output shown: only that it ran
        return None
    if not pattern_of(expected.strip()).fullmatch(actual.strip()):
        return f"the answer is\n{actual.strip()}\nthe page shows\n{expected.strip()}"
    return None


def _header(line: str) -> str:
    name, _, value = line.partition(":")
    return f"{name.strip().lower()}: {value.strip()}"


@pytest.mark.server
def test_the_page_has_examples_for_every_option() -> None:
    sections = {example.section for example in EXAMPLES if not any(fragment in example.command for fragment in SKIPPED)}
    # Every option, and each way to authenticate.
    options = sorted(CONFIG_SCHEMA["properties"]) + [
        f"auth.{method}" for method in CONFIG_SCHEMA["properties"]["auth"]["properties"]
    ]
    grouped = {
        "timeout_response": "timeout",
        "path_params": "path",
        "headers": "Declared",
        "query": "Declared",
        "body": "Declared",
    }
    missing = [
        option
        for option in options
        if not any(
            f"`{grouped.get(option, option)}" in section or grouped.get(option, "\0") in section for section in sections
        )
    ]
    assert missing == [], f"options without a curl example that runs: {missing}"


@pytest.mark.server
def test_every_curl_example_prints_what_the_page_shows(server: HooklineServer) -> None:
    """In one test, in the page's order: the examples build on each other (ids, captures, limits)."""
    failures = []
    status_urls: dict[str, str] = {}
    for example in EXAMPLES:
        if any(fragment in example.command for fragment in SKIPPED):
            continue
        problem = mismatch(example.expected, run(example, server, status_urls))
        if problem is not None:
            failures.append(f"line {example.line} ({example.section}): $ {example.command}\n{problem}")
    assert not failures, f"{len(failures)} of {len(EXAMPLES)} examples differ:\n\n" + "\n\n".join(failures)
