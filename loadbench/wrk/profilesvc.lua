-- wrk script for profilesvc's scenarios: GETs an existing profile, or POSTs new ones (a fresh id
-- each time), counts non-2xx answers and error bodies ({"error":"..."}), and prints one JSON line
-- with the results, as uppercase.lua does. The benchmark replaces MODE with "get" or "post" and
-- RUN with a string unique to the run, so that ids never repeat across runs on one database.

local mode = "MODE"
local run = "RUN"
local threads = {}
local next_thread = 0

function setup(thread)
    thread:set("thread_id", next_thread)
    next_thread = next_thread + 1
    table.insert(threads, thread)
end

function init(args)
    inband = 0
    non2xx = 0
    counter = 0
end

-- PACING

function request()
    if mode == "get" then
        return wrk.format("GET", "/profiles/1234")
    end
    counter = counter + 1
    local body = string.format('{"id":"%s-%d-%d","name":"Go Kit","addresses":[{"id":"home","location":"Here"}]}',
        run, thread_id, counter)
    return wrk.format("POST", "/profiles/", {["Content-Type"] = "application/json"}, body)
end

function response(status, headers, body)
    if status < 200 or status > 299 then
        non2xx = non2xx + 1
    end
    if body ~= nil and string.find(body, '"error":"', 1, true) then
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
