-- wrk script: POST the AdmissionReview files given after `--`, in turn, and
-- print one JSON line of results at the end (latencies in microseconds).
local requests = {}
local position = 0

function init(args)
  for _, path in ipairs(args) do
    local file = assert(io.open(path, "rb"))
    local body = file:read("*a")
    file:close()
    requests[#requests + 1] = wrk.format("POST", "/mutate",
      {["Content-Type"] = "application/json", ["Connection"] = "keep-alive"}, body)
  end
end

function request()
  position = position % #requests + 1
  return requests[position]
end

function done(summary, latency, _)
  local errors = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "errors": %d, "p50": %d, "p99": %d, "max": %d}\n',
    summary.requests, summary.duration,
    errors.connect + errors.read + errors.write + errors.status + errors.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
