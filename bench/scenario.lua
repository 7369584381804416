-- wrk script for bench/run: every request picks a random existing id.
--
--   wrk -t1 -c64 -d10s --latency -s bench/scenario.lua http://127.0.0.1:PORT -- MODE IDS KEY TENANT BASE
--
-- MODE   face | devcenter | devcentercold | sphere | google | devcenter304 | create | patch
--        (google: google.longrunning GetOperation over HTTP/JSON)
--        (devcentercold: devcenter over ids spread across every stored operation)
-- IDS    a file of "id etag" lines (etag with its quotes, for devcenter304)
-- KEY    the API key (Bearer, or Ocp-Apim-Subscription-Key for face)
-- TENANT the Sphere tenant of the ids (sphere only)
-- BASE   patch only: where percentComplete starts. Each pass over the ids
--        adds 0.001, so values only grow within a run; give each run a
--        higher BASE than the last run reached.
--
-- bench/run uses one wrk thread (-t1). With more, each thread would PATCH
-- the same ids in the same order and lose compare-and-swap races (409s).
--
-- done() prints one line, "WRK_RESULT {json}", with the counts per HTTP
-- status, so non-2xx answers are reported for every scenario.

local mode, key, tenant, base
local ids, requests = {}, {}
local sent = 0
statuses = {} -- global: done() reads it from each thread

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

local function get(path, headers)
  return wrk.format("GET", path, headers)
end

function init(args)
  local file
  mode, file, key, tenant, base = args[1], args[2], args[3], args[4], tonumber(args[5] or "0")
  for line in io.lines(file) do
    local id, etag = line:match("^(%S+)%s*(%S*)$")
    if id then table.insert(ids, { id = id, etag = etag }) end
  end
  assert(#ids > 0, "no ids in " .. file)
  -- Each thread its own sequence (the table's address differs per thread).
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16) % 100000)
  local bearer = { ["Authorization"] = "Bearer " .. key }
  for i, op in ipairs(ids) do
    if mode == "face" then
      requests[i] = get("/face/v1.0/operations/" .. op.id, { ["Ocp-Apim-Subscription-Key"] = key })
    elseif mode == "devcenter" or mode == "devcentercold" then
      requests[i] = get("/projects/benchproj/operationstatuses/" .. op.id .. "?api-version=2025-02-01", bearer)
    elseif mode == "devcenter304" then
      requests[i] = get("/projects/benchproj/operationstatuses/" .. op.id .. "?api-version=2025-02-01",
        { ["Authorization"] = "Bearer " .. key, ["If-None-Match"] = op.etag })
    elseif mode == "sphere" then
      requests[i] = get("/v2/tenants/" .. tenant .. "/operations/" .. op.id, bearer)
    elseif mode == "google" then
      requests[i] = get("/v1/projects/benchproj/operations/" .. op.id, bearer)
    end
  end
  if mode == "create" then
    requests[1] = wrk.format("POST", "/v1/operations",
      { ["Authorization"] = "Bearer " .. key, ["Content-Type"] = "application/json" },
      '{"scope":"projects/benchproj","kind":"deleteDevBox"}')
  end
  assert(mode == "patch" or #requests > 0, "unknown mode " .. tostring(mode))
end

function request()
  if mode == "create" then
    return requests[1]
  elseif mode == "patch" then
    -- Round-robin over the ids, so one id is patched again only after every
    -- other one was: percentComplete grows by 0.001 per pass.
    local i = sent % #ids
    local percent = base + math.floor(sent / #ids) * 0.001
    sent = sent + 1
    if percent > 100 then percent = 100 end
    return wrk.format("PATCH", "/v1/operations/" .. ids[i + 1].id,
      { ["Authorization"] = "Bearer " .. key, ["Content-Type"] = "application/json" },
      string.format('{"state":"Running","percentComplete":%.3f}', percent))
  end
  return requests[math.random(#requests)]
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local counts = {}
  for _, thread in ipairs(threads) do
    local theirs = thread:get("statuses")
    for status, n in pairs(theirs) do
      counts[status] = (counts[status] or 0) + n
    end
  end
  local parts = {}
  for status, n in pairs(counts) do
    table.insert(parts, string.format('"%d":%d', status, n))
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"mean":%.1f,"max":%d,"p50":%d,"p90":%d,"p99":%d,"p999":%d},"statuses":{%s}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.max, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), table.concat(parts, ",")))
end
