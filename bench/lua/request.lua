-- One wrk request shape for every benchmark target, from the environment that bench/loadgen.py sets:
--   BENCH_METHOD         POST (a token request) or GET (a resource request)
--   BENCH_BODY           the form body (application/x-www-form-urlencoded), POST only
--   BENCH_AUTHORIZATION  the Authorization header ("Basic ..." for a client, "Bearer ..." for a resource)
--   BENCH_EXPECT         a string every good response body contains ("access_token"); empty: status only
--   BENCH_TOKENS_FILE    optional: bearer tokens, one a line, sent in turn (GET only); each request then
--                        carries the next token, so a cache keyed by the token never hits once the pool
--                        is larger than the cache
--   BENCH_DPOP_FILE      optional: DPoP proofs, one a line (POST only); each request carries the next one in a
--                        DPoP header. A proof is good once: a run that sends more requests than the file holds
--                        reuses proofs, which the server refuses, so such a run shows errors, never better figures
-- done() prints one line "BENCH_JSON {...}" with the counts and latency percentiles (microseconds).

local method = os.getenv("BENCH_METHOD") or "POST"
local body = os.getenv("BENCH_BODY") or ""
local authorization = os.getenv("BENCH_AUTHORIZATION") or ""
local expect = os.getenv("BENCH_EXPECT") or ""

wrk.method = method
if method == "POST" then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end
if authorization ~= "" then
  wrk.headers["Authorization"] = authorization
end

local tokens_file = os.getenv("BENCH_TOKENS_FILE") or ""
if tokens_file ~= "" then
  local tokens = {}
  for line in io.lines(tokens_file) do
    tokens[#tokens + 1] = line
  end
  local next_token = 0
  function request()
    next_token = next_token % #tokens + 1
    return wrk.format(nil, nil, { ["Authorization"] = "Bearer " .. tokens[next_token] })
  end
end

local dpop_file = os.getenv("BENCH_DPOP_FILE") or ""
if dpop_file ~= "" then
  local proofs = {}
  for line in io.lines(dpop_file) do
    proofs[#proofs + 1] = line
  end
  local next_proof = 0
  function request()
    next_proof = next_proof % #proofs + 1
    -- wrk.format takes the headers as a whole: the fixed ones, plus this request's proof.
    local headers = {}
    for name, value in pairs(wrk.headers) do
      headers[name] = value
    end
    headers["DPoP"] = proofs[next_proof]
    return wrk.format(nil, nil, headers)
  end
end

-- A 200 whose body is not a token is an error too: wrk alone counts only non-2xx/3xx statuses.
bad_body = 0
if expect ~= "" then
  function response(status, headers, response_body)
    if status == 200 and not string.find(response_body, expect, 1, true) then
      bad_body = bad_body + 1
    end
  end
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function done(summary, latency, requests)
  local bad = 0
  for _, thread in ipairs(threads) do
    bad = bad + (thread:get("bad_body") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d, "body": %d}, ' ..
    '"latency_us": {"p50": %d, "p90": %d, "p99": %d, "max": %d, "mean": %.1f}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout, bad,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
