-- wrk script: POST the benchmark's JSON webhook payload; print one machine-readable line at the end:
--   RESULT {"label":..., "requests":..., "rps":..., "lat_p50_ms":..., ..., "err_status":...}
-- Usage: WRK_LABEL=text wrk -t1 -c32 -d10s --latency -s bench/post.lua http://127.0.0.1:PORT/PATH
-- (adapted from ../shared/peers-bench/post.lua, without the mixed-amount mode)
-- With WRK_KEY_PREFIX=/api/webhooks/bench-wf- WRK_KEY_COUNT=10000, each call goes to another path,
-- PREFIX00001 .. PREFIX10000 (5 digits), every one in turn in a scattered order; the URL's host
-- and port are used, its path is not.
local label = os.getenv("WRK_LABEL") or ""
local key_prefix = os.getenv("WRK_KEY_PREFIX")
local key_count = tonumber(os.getenv("WRK_KEY_COUNT") or "0")
-- WRK_KEY_SUFFIX: what follows the 5 digits (a custom path's rest: /orders/42)
local key_suffix = os.getenv("WRK_KEY_SUFFIX") or ""

wrk.method = "POST"
wrk.body = '{"id":"abc123","amount":150,"customer":{"email":"a@b.c"}}'
wrk.headers["Content-Type"] = "application/json"

if key_prefix and key_count > 0 then
  local n = 0
  request = function()
    n = n + 1
    -- 7919 is prime: n * 7919 mod count visits every key once per count calls (count not a multiple of it)
    local i = (n * 7919) % key_count + 1
    return wrk.format(nil, string.format("%s%05d%s", key_prefix, i, key_suffix))
  end
end

function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    'RESULT {"label":"%s","requests":%d,"duration_s":%.3f,"rps":%.1f,' ..
    '"lat_mean_ms":%.3f,"lat_p50_ms":%.3f,"lat_p90_ms":%.3f,"lat_p99_ms":%.3f,"lat_max_ms":%.3f,' ..
    '"err_connect":%d,"err_read":%d,"err_write":%d,"err_status":%d,"err_timeout":%d}\n',
    label, summary.requests, secs, summary.requests / secs,
    latency.mean / 1000, latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000,
    e.connect, e.read, e.write, e.status, e.timeout))
end
