"""The error trigger's reference page (docs/reference/execution-failed.md): its examples are run.

A real server (``hookline serve``) runs the page's example workflows (its YAML blocks named
``# NAME.yaml``) with ``HOOKLINE_HTTP_ALLOW=127.0.0.1``, as the page says; each ``$ curl`` command of
the page runs in order with ``bash`` and its output must match the page, as for the webhook reference
(tests/test_reference_examples.py: ``...`` stands for anything; ids and times may differ). A command
reading the history (``/api/executions``) reads what runs in the background: it is run again until it
matches, for at most a minute (a reader of the page would see it a moment later too).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hookline.testing import TEST_TOKEN, HooklineServer
from hookline_error_trigger.trigger import ExecutionFailedTrigger
from test_reference_examples import _BLOCK, _HEADING, Example, mismatch

REPO = Path(__file__).resolve().parent.parent
PAGE = REPO / "docs" / "reference" / "execution-failed.md"
#: Seconds a command reading the history is retried until it matches.
HISTORY_WAIT = 60.0


def page_examples() -> list[Example]:
    text = PAGE.read_text()
    headings = [(m.start(), m.group(2)) for m in _HEADING.finditer(text)]
    examples = []
    for block in _BLOCK.finditer(text):
        if block.group(1) != "console":
            continue
        section = [title for start, title in headings if start < block.start()][-1]
        first_line = text.count("\n", 0, block.start(2)) + 1
        lines = block.group(2).splitlines()
        starts = [i for i, line in enumerate(lines) if line.startswith("$ ")]
        for start, end in zip(starts, starts[1:] + [len(lines)]):
            output = "\n".join(lines[start + 1 : end]).strip("\n")
            examples.append(Example(section, lines[start][2:], output, first_line + start))
    return examples


EXAMPLES = page_examples()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HooklineServer]:
    missing = [tool for tool in ("curl", "bash", "python3") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"the page's examples need {', '.join(missing)} (apt-get install {' '.join(missing)})")
    root = tmp_path_factory.mktemp("execution-failed-examples")
    process = HooklineServer(f"sqlite://{root / 'examples.db'}", cwd=root, env={"HOOKLINE_HTTP_ALLOW": "127.0.0.1"})
    folder = root / "workflows"
    folder.mkdir()
    text = PAGE.read_text()
    for block in _BLOCK.finditer(text):
        name = re.match(r"# ([\w-]+\.yaml)\n", block.group(2))
        if block.group(1) == "yaml" and name:
            # The page's server listens on 8000; this one on a free port.
            (folder / name.group(1)).write_text(block.group(2).replace("127.0.0.1:8000", f"127.0.0.1:{process.port}"))
    process.command += ["--workflows", str(folder)]
    process.start(root / "server.log")
    yield process
    process.stop()


#: An execution in a list answer: its id and workflow.
_LISTED = re.compile(r'"id": ?(\d+), ?"workflow": ?"([\w-]+)"')


def run(example: Example, server: HooklineServer, ids: dict[str, str]) -> str:
    """``example``'s output. ``ids``: the page's execution ids -> this server's, learnt from the list
    answers so far (the ids of one run differ from the page's), put in later commands' URLs."""
    command = re.sub(r"(/api/executions/)(\d+)", lambda m: m.group(1) + ids.get(m.group(2), m.group(2)), example.command)
    command = command.replace("127.0.0.1:8000", f"127.0.0.1:{server.port}")
    env = {**os.environ, "HOOKLINE_API_TOKEN": TEST_TOKEN}
    done = subprocess.run(["bash", "-c", command], capture_output=True, env=env, timeout=60, cwd=server.cwd, check=False)
    output = done.stdout.decode("utf-8", "replace").replace(f"127.0.0.1:{server.port}", "127.0.0.1:8000")
    shown, got = _LISTED.findall(example.expected), _LISTED.findall(output)
    if [workflow for _, workflow in shown] == [workflow for _, workflow in got]:
        ids.update({page: actual for (page, _), (actual, _) in zip(shown, got)})
    return output


def test_the_page_has_an_example_for_every_option() -> None:
    text = PAGE.read_text()
    sections = {example.section for example in EXAMPLES}
    for option in ExecutionFailedTrigger.config_schema["properties"]:
        assert f"| `{option}` |" in text, f"option {option!r} is not in the options table"
        assert any(f"`{option}`" in section for section in sections), f"option {option!r} has no example that runs"


@pytest.mark.server
def test_every_curl_example_prints_what_the_page_shows(server: HooklineServer) -> None:
    failures = []
    ids: dict[str, str] = {}
    for example in EXAMPLES:
        deadline = time.monotonic() + (HISTORY_WAIT if "/api/executions" in example.command else 0)
        while True:
            problem = mismatch(example.expected, run(example, server, ids))
            if problem is None or time.monotonic() >= deadline:
                break
            time.sleep(0.2)
        if problem is not None:
            failures.append(f"line {example.line} ({example.section}): $ {example.command}\n{problem}")
    assert not failures, f"{len(failures)} of {len(EXAMPLES)} examples differ:\n\n" + "\n\n".join(failures)
