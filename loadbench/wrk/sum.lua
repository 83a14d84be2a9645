-- wrk script for the load benchmark: POSTs {"a":1,"b":2} to /sum; an answer with "err":"..." in
-- its body is an in-band error. Counting, pacing and the report: report.lua.

wrk.method = "POST"
wrk.path = "/sum"
wrk.body = '{"a":1,"b":2}'
wrk.headers["Content-Type"] = "application/json"
inband_marker = '"err":"'

dofile(string.match(debug.getinfo(1, "S").source, "^@(.-)[^/]*$") .. "report.lua")
