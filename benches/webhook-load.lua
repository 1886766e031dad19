-- wrk script for benches/webhook-load: every request is a signed push delivery with its
-- own X-GitHub-Delivery id, so each one goes through the signature check, the delivery
-- dedup, the payload parse and the intake queue up to its 202.
local counter = 0
local threads = {}

setup = function(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

codes = {}
response = function(status, headers, body)
  codes[status] = (codes[status] or 0) + 1
end
local body = os.getenv("DEEPLO_BENCH_BODY")
local signature = os.getenv("DEEPLO_BENCH_SIGNATURE")

request = function()
  counter = counter + 1
  local headers = {
    ["Content-Type"] = "application/json",
    ["X-GitHub-Event"] = "push",
    ["X-GitHub-Delivery"] = string.format("bench-%d-%d", tid or 0, counter),
    ["X-Hub-Signature-256"] = signature,
  }
  return wrk.format("POST", "/webhooks/github", headers, body)
end

done = function(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("codes")) do
      total[status] = (total[status] or 0) + n
    end
  end
  for status, n in pairs(total) do
    io.write(string.format("HTTP %d: %d\n", status, n))
  end
  io.write(string.format("requests %d, %.0f per second\n", summary.requests, summary.requests / (summary.duration / 1e6)))
  io.write(string.format("answers other than 2xx: %d, socket errors: %d\n", summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
  io.write(string.format("latency p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
