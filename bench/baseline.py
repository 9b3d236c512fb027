"""Bare-Sanic baseline: the two benchmark shapes as plain handlers (no database, no engine).

    .venv/bin/python bench/baseline.py PORT

One process (single_process=True), no access log, no banner; listens on 127.0.0.1 only.
"""

import sys

from sanic import Sanic
from sanic.response import json, text

app = Sanic("bench_baseline")
app.config.ACCESS_LOG = False


@app.post("/bench-sync")
async def bench_sync(request):
    body = request.json or {}
    tier = "high" if (body.get("amount") or 0) > 100 else "low"
    return json({"ok": True, "tier": tier, "id": body.get("id")})


async def _downstream(body):
    # the trivial step, run after the answer was sent
    body["tier"] = "high" if (body.get("amount") or 0) > 100 else "low"


@app.post("/bench-async")
async def bench_async(request):
    app.add_task(_downstream(request.json or {}))
    return text("ok")


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(sys.argv[1]), single_process=True, access_log=False, motd=False)
