-- wrk script of bench/run: one of four request kinds against POST /graphql.
--
--   wrk ... -s bench/load.lua URL -- MODE FILE DELAY_MS THREADS
--
-- MODE  me       `{ me { ... } }` with access tokens from FILE, round-robin
--       refresh  `refreshToken` with the tokens of FILE; each response's new refresh token
--                is spent next (a client's rotation chain); FILE is split between threads
--       login    `login` as the accounts (emails) of FILE, password `bench-password`
-- DELAY_MS  pause of each connection between its requests (0: closed loop, flat out)
--
-- A response counts as an error unless it is a 200 without "errors". done() prints one
-- line `BENCH {json}` with counts and latency percentiles (microseconds).

local counter = 0
local threads = {}

function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
  table.insert(threads, thread)
end

local mode, delay_ms
local items, pool = {}, {}
local idx = 0
local headers = { ["Content-Type"] = "application/json" }
local me_body = '{"query":"{ me { id email username createdAt updatedAt } }"}'
local refresh_query = 'mutation($t: String!) { refreshToken(refreshToken: $t) '
  .. '{ accessToken refreshToken expiresIn } }'
local login_query = 'mutation($e: String!, $p: String!) { login(input: {email: $e, password: $p}) '
  .. '{ accessToken refreshToken } }'
ok, errors = 0, 0

function init(args)
  mode = args[1]
  local file = args[2]
  delay_ms = tonumber(args[3] or "0")
  local nthreads = tonumber(args[4] or "1")
  local all = {}
  for line in io.lines(file) do
    if #line > 0 then all[#all + 1] = line end
  end
  -- Each thread takes every nthreads-th line, so no token is used by two threads.
  for i = tid, #all, nthreads do items[#items + 1] = all[i] end
  if mode == "refresh" then
    for i = #items, 1, -1 do pool[#pool + 1] = items[i] end
  end
  idx = 0
  if delay_ms > 0 then
    delay = function() return delay_ms end
  end
end

local function next_item()
  idx = idx % #items + 1
  return items[idx]
end

function request()
  if mode == "me" then
    headers["Authorization"] = "Bearer " .. next_item()
    return wrk.format("POST", "/graphql", headers, me_body)
  elseif mode == "refresh" then
    local token = table.remove(pool) or "spent-chain-nothing-left-to-refresh-0000000"
    local body = '{"query":"' .. refresh_query .. '","variables":{"t":"' .. token .. '"}}'
    return wrk.format("POST", "/graphql", headers, body)
  else
    local body = '{"query":"' .. login_query .. '","variables":{"e":"' .. next_item()
      .. '","p":"bench-password"}}'
    return wrk.format("POST", "/graphql", headers, body)
  end
end

function response(status, hdrs, body)
  if status ~= 200 or string.find(body, '"errors"', 1, true) then
    errors = errors + 1
    return
  end
  ok = ok + 1
  if mode == "refresh" then
    local token = string.match(body, '"refreshToken":"([%w_%-]+)"')
    if token then pool[#pool + 1] = token end
  end
end

function done(summary, latency, requests)
  local o, e = 0, 0
  for _, t in ipairs(threads) do
    o = o + (t:get("ok") or 0)
    e = e + (t:get("errors") or 0)
  end
  local se = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"ok":%d,"errors":%d,"socket_errors":%d,"secs":%.3f,'
      .. '"p50":%.1f,"p90":%.1f,"p99":%.1f,"p999":%.1f,"max":%.1f,"mean":%.1f}\n',
    summary.requests, o, e, se.connect + se.read + se.write + se.timeout,
    summary.duration / 1e6,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, latency.mean))
end
