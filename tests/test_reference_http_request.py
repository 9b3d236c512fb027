"""The HTTP Request node's reference runs, so that it cannot rot.

docs/reference/http-request.md shows each option with ``$ curl`` commands and what they print, against a
server started with the page's workflows (the YAML block ``# http-examples.yaml``) and calling the page's
stand-in upstream (the Python block ``# upstream.py``). Here both run: the upstream on a free port (the
page's ``127.0.0.1:9100`` is replaced by it in the workflows and the commands, and back in the answers),
``hookline serve`` with the environment the page gives. Every command is run in the page's order with
``bash``; its output must match the page, where:

- ``...`` stands for anything;
- execution ids, ``"ms"`` values and ``waited_ms`` of attempts that waited a random backoff are those of
  one run and may differ; everything else must be as shown.

Every top-level option of the node must have a section (``### `option```) with an example that runs.
The page's other node configs (the opening one, the one using every option) must be accepted by the
server, and each row of its table of refused configs refused with the message it shows.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml
from hookline.testing import TEST_TOKEN, HooklineServer, free_port
from hookline_http.schema import CONFIG_SCHEMA

REPO = Path(__file__).resolve().parent.parent
PAGE = REPO / "docs" / "reference" / "http-request.md"
_BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
_HEADING = re.compile(r"^(#{1,4}) (.+)$", re.MULTILINE)
#: Where the page's upstream listens, and the environment the page starts the server with.
PAGE_UPSTREAM = "127.0.0.1:9100"
SERVER_ENV = {"HOOKLINE_HTTP_ALLOW": "127.0.0.1", "SHOP_TOKEN": "s3cr3t-token", "SHOP_PASSWORD": "pa55word"}


@dataclass(frozen=True)
class Example:
    section: str
    command: str
    expected: str
    line: int


def page_blocks() -> list[tuple[str, str, int]]:
    text = PAGE.read_text()
    return [(m.group(1), m.group(2), text.count("\n", 0, m.start(2)) + 1) for m in _BLOCK.finditer(text)]


def page_examples() -> list[Example]:
    text = PAGE.read_text()
    headings = [(m.start(), m.group(2)) for m in _HEADING.finditer(text)]
    examples = []
    for block in _BLOCK.finditer(text):
        if block.group(1) not in ("", "console"):
            continue
        section = [title for start, title in headings if start < block.start()][-1]
        first_line = text.count("\n", 0, block.start(2)) + 1
        lines = block.group(2).splitlines()
        for index, line in enumerate(lines):
            if line.startswith("$ ") and "127.0.0.1:8000" in line:
                output = []
                for following in lines[index + 1 :]:
                    if following.startswith("$ "):
                        break
                    output.append(following)
                examples.append(Example(section, line[2:], "\n".join(output).strip("\n"), first_line + index))
    return examples


def named_block(language: str, name: str) -> str:
    [body] = [body for lang, body, _ in page_blocks() if lang == language and re.match(rf"# {re.escape(name)}\b", body)]
    return body


EXAMPLES = page_examples()


@pytest.fixture(scope="module")
def upstream_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """The page's upstream.py, run on a free port."""
    root = tmp_path_factory.mktemp("reference-upstream")
    (root / "upstream.py").write_text(named_block("python", "upstream.py"))
    port = free_port()
    process = subprocess.Popen([sys.executable, "upstream.py", str(port)], cwd=root)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the page's upstream.py did not start") from None
                time.sleep(0.05)
        yield port
    finally:
        process.kill()
        process.wait(10)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, upstream_port: int) -> Iterator[HooklineServer]:
    if shutil.which("curl") is None or shutil.which("bash") is None:
        pytest.skip("the page's examples need curl and bash (apt-get install curl)")
    root = tmp_path_factory.mktemp("reference-http")
    workflows = root / "http-examples.yaml"
    workflows.write_text(named_block("yaml", "http-examples.yaml").replace(PAGE_UPSTREAM, f"127.0.0.1:{upstream_port}"))
    process = HooklineServer(f"sqlite://{root / 'examples.db'}", workflows=workflows, cwd=root, env=SERVER_ENV)
    process.start(root / "server.log")
    yield process
    process.stop()


def run(example: Example, server: HooklineServer, upstream_port: int, last_execution: list[str]) -> str:
    command = example.command.replace("127.0.0.1:8000", f"127.0.0.1:{server.port}")
    command = command.replace(PAGE_UPSTREAM, f"127.0.0.1:{upstream_port}")
    if last_execution:  # the page's execution id is the one its previous answer gave
        command = re.sub(r"/api/executions/\d+", f"/api/executions/{last_execution[-1]}", command)
    env = {**os.environ, "HOOKLINE_API_TOKEN": TEST_TOKEN}
    done = subprocess.run(
        ["bash", "-c", command], capture_output=True, env=env, timeout=60, cwd=server.cwd, check=False
    )
    output = done.stdout.decode("utf-8", "replace")
    output = output.replace(f"127.0.0.1:{server.port}", "127.0.0.1:8000").replace(
        f"127.0.0.1:{upstream_port}", PAGE_UPSTREAM
    )
    last_execution.extend(re.findall(r'"execution":(\d+)', output))
    return output


#: What changes from run to run, in the page's (escaped) text -> what it matches.
_VOLATILE = [
    (re.compile(r"\\\.\\\.\\\."), r".*?"),
    (re.compile(r'("execution":)\d+'), r"\g<1>\\d+"),
    (re.compile(r'("ms":(?:\\\ )?)\d+'), r"\g<1>\\d+"),
    # A backoff's pause is random; Retry-After's (1000) is not, and stays as shown.
    (re.compile(r'("waited_ms":(?:\\\ )?)(?!0\b|1000\b)\d+'), r"\g<1>\\d+"),
]


def pattern_of(expected: str) -> re.Pattern[str]:
    text = re.escape(expected)
    for volatile, replacement in _VOLATILE:
        text = volatile.sub(replacement, text)
    return re.compile(text, re.DOTALL)


def test_the_page_has_examples_for_every_option_and_not_too_many() -> None:
    sections = {example.section for example in EXAMPLES}
    missing = [option for option in sorted(CONFIG_SCHEMA["properties"]) if f"`{option}`" not in sections]
    assert missing == [], f"options without a curl example that runs: {missing}"
    assert 15 <= len(EXAMPLES) <= 30


@pytest.mark.server
def test_the_pages_other_configs_are_accepted(server: HooklineServer) -> None:
    """The YAML blocks that show a node (the opening one, the config using every option) are valid."""
    shown = [yaml.safe_load(body) for lang, body, _ in page_blocks() if lang == "yaml" and not body.startswith("# ")]
    nodes = [node for block in shown for node in block.get("nodes", [{"key": "call", "type": "http-request", **block}])]
    assert len(nodes) >= 3
    definition = {"key": "page-configs", "trigger": {"type": "webhook"}, "sync": True, "nodes": nodes}
    response = httpx.post(f"{server.base_url}/api/workflows", json=definition, headers=server.auth, timeout=30)
    assert response.status_code in (200, 201), response.text


def refusal_rows() -> list[tuple[dict[str, object], str]]:
    """The page's table of configs refused when saved: (config, expected ``location: message``)."""
    text = PAGE.read_text().split("Some of the problems:", 1)[1].split("\n\n", 2)[1]
    rows = []
    for line in text.splitlines()[2:]:
        config_cell, message_cell = line.strip("|").split(" | ")
        config: dict[str, object] = {"url": "http://a.example/"}
        for code in re.findall(r"`([^`]+)`", config_cell):
            parsed = yaml.safe_load(code if code.startswith("{") else "{" + code + "}")
            config.update(parsed)
        if config["url"] == "...":
            config["url"] = "http://a.example/"
        auth = config.get("auth")
        if isinstance(auth, dict):  # `...` stands for a valid method's settings
            placeholders = {"bearer": {"token": {"env": "T"}}, "header": {"name": "X-K", "value": {"env": "T"}}}
            config["auth"] = {name: placeholders[name] if value == "..." else value for name, value in auth.items()}
        rows.append((config, re.findall(r"`([^`]+)`", message_cell)[0]))
    return rows


@pytest.mark.server
def test_the_pages_refused_configs_are_refused_with_its_messages(server: HooklineServer) -> None:
    rows = refusal_rows()
    assert len(rows) >= 10
    failures = []
    for config, expected in rows:
        definition = {
            "key": "refused",
            "trigger": {"type": "webhook"},
            "nodes": [{"key": "call", "type": "http-request", "config": config}],
        }
        response = httpx.post(f"{server.base_url}/api/workflows", json=definition, headers=server.auth, timeout=30)
        problems = [f"{p['location']}: {p['message']}" for p in response.json().get("problems", [])]
        if response.status_code != 422 or not any(pattern_of(expected).fullmatch(p) for p in problems):
            failures.append(f"{config}: {response.status_code} {problems}, the page shows {expected}")
    assert not failures, "\n".join(failures)


@pytest.mark.server
def test_every_curl_example_prints_what_the_page_shows(server: HooklineServer, upstream_port: int) -> None:
    """In one test, in the page's order: some examples build on the ones before (flaky keys, ids)."""
    failures = []
    last_execution: list[str] = []
    for example in EXAMPLES:
        actual = run(example, server, upstream_port, last_execution).strip()
        if not pattern_of(example.expected.strip()).fullmatch(actual):
            failures.append(
                f"line {example.line} ({example.section}): $ {example.command}\nthe answer is\n{actual}\nthe page shows\n{example.expected}"
            )
    assert not failures, f"{len(failures)} of {len(EXAMPLES)} examples differ:\n\n" + "\n\n".join(failures)
