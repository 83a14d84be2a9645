-- wrk script for the load benchmark: POSTs {"a":1,"b":2} to /sum, counts non-2xx
-- answers and in-band errors ("err":"..." in the body), optionally paces each connection, and
-- prints one JSON line with the results.
--
-- To hold the load below saturation, the benchmark replaces the PACING line below with a
-- `delay()` function: each connection then waits between its requests a random time around a
-- mean (loadbench/run.py's `pacing`), so that requests arrive spread out, as from independent
-- clients.

wrk.method = "POST"
wrk.path = "/sum"
wrk.body = '{"a":1,"b":2}'
wrk.headers["Content-Type"] = "application/json"

local threads = {}

function setup(thread)
    table.insert(threads, thread)
end

function init(args)
    inband = 0
    non2xx = 0
end

-- PACING

function response(status, headers, body)
    if status < 200 or status > 299 then
        non2xx = non2xx + 1
    end
    if body ~= nil and string.find(body, '"err":"', 1, true) then
        inband = inband + 1
    end
end

function done(summary, latency, requests)
    local total_inband, total_non2xx = 0, 0
    for _, thread in ipairs(threads) do
        total_inband = total_inband + thread:get("inband")
        total_non2xx = total_non2xx + thread:get("non2xx")
    end
    local e = summary.errors
    io.write(string.format(
        '{"requests":%d,"duration_us":%d,"connect_errors":%d,"read_errors":%d,"write_errors":%d,' ..
        '"timeouts":%d,"non2xx":%d,"inband_errors":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\n',
        summary.requests, summary.duration, e.connect, e.read, e.write, e.timeout,
        total_non2xx, total_inband,
        latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
