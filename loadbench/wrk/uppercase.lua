-- wrk script for the load benchmark: POSTs {"s":"hello, world"} to /uppercase; an answer with
-- "err":"..." in its body is an in-band error. Counting, pacing and the report: report.lua.

wrk.method = "POST"
wrk.path = "/uppercase"
wrk.body = '{"s":"hello, world"}'
wrk.headers["Content-Type"] = "application/json"
inband_marker = '"err":"'

dofile(string.match(debug.getinfo(1, "S").source, "^@(.-)[^/]*$") .. "report.lua")
