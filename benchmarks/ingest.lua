-- wrk script for benchmarks/ingest.py: POSTs Segment track messages, each with a unique messageId,
-- counts the answers by status, and prints one JSON line the Python side parses.
--
--   wrk -s benchmarks/ingest.lua URL -- PATH BATCH RUN AUTHORIZATION USERS
--
-- PATH is /v1/track (BATCH = 1) or /v1/batch; RUN prefixes every messageId, so the benchmark can
-- count afterwards how many of this run's messages the database holds; AUTHORIZATION is the whole
-- header value; USERS is how many distinct user ids the messages cycle through.
--
-- setup() and done() run in wrk's main Lua state, request() and response() in one state per
-- thread: the thread table kept by setup() is how done() collects the per-thread counts.

local threads = {}
local next_thread = 1

function setup(thread)
  thread:set("thread_id", next_thread)
  next_thread = next_thread + 1
  table.insert(threads, thread)
end

function init(args)
  path, batch, run, users = args[1], tonumber(args[2]), args[3], tonumber(args[5])
  wrk.method = "POST"
  wrk.headers["Authorization"] = args[4]
  wrk.headers["Content-Type"] = "application/json"
  sent, accepted, refused = 0, 0, 0
end

local function message(n)
  return string.format(
    '{"type":"track","userId":"u%d","event":"product_viewed","properties":{"sku":"s%d","category":"lens",' ..
    '"price":129.5},"messageId":"%s-%d-%d"}',
    n % users, n % 50, run, thread_id, n)
end

function request()
  local body
  if batch == 1 then
    sent = sent + 1
    body = message(sent)
  else
    local parts = {}
    for i = 1, batch do
      sent = sent + 1
      parts[i] = message(sent)
    end
    body = '{"batch":[' .. table.concat(parts, ",") .. ']}'
  end
  return wrk.format(nil, path, nil, body)
end

function response(status, headers, body)
  if status == 200 then
    accepted = accepted + 1
  else
    refused = refused + 1
  end
end

function done(summary, latency, requests)
  local accepted, refused = 0, 0
  for _, thread in ipairs(threads) do
    accepted = accepted + thread:get("accepted")
    refused = refused + thread:get("refused")
  end
  local e = summary.errors
  io.write(string.format(
    'wrk-json {"requests": %d, "duration_us": %d, "accepted": %d, "refused": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, accepted, refused, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
