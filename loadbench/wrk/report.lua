-- What every wrk script of the load benchmark shares; each scenario's script sets up its
-- requests and the text that marks an in-band error in an answer (`inband_marker`), then loads
-- this file from beside it. Counts non-2xx answers and in-band errors, optionally paces each
-- connection, and prints one JSON line with the results.
--
-- To hold the load below saturation, the benchmark replaces the PACING line below with a
-- `delay()` function: each connection then waits between its requests a random time around a
-- mean (loadbench/run.py's `pacing`), so that requests arrive spread out, as from independent
-- clients.

local threads = {}

function setup(thread)
    -- A number a thread, for scripts that make ids of their own (profilesvc.lua).
    thread:set("thread_id", #threads)
    table.insert(threads, thread)
end

function init(args)
    inband = 0
    non2xx = 0
    counter = 0
end

-- PACING

function response(status, headers, body)
    if status < 200 or status > 299 then
        non2xx = non2xx + 1
    end
    if body ~= nil and string.find(body, inband_marker, 1, true) then
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
