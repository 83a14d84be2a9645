-- wrk script for profilesvc's scenarios: GETs an existing profile, or POSTs new ones (a fresh id
-- each time); an answer with {"error":"..."} is an in-band error. The benchmark replaces MODE
-- with "get" or "post" and RUN with a string unique to the run, so that ids never repeat across
-- runs on one database. Counting, pacing and the report: report.lua.

local mode = "MODE"
local run = "RUN"
inband_marker = '"error":"'

function request()
    if mode == "get" then
        return wrk.format("GET", "/profiles/1234")
    end
    counter = counter + 1
    local body = string.format('{"id":"%s-%d-%d","name":"Go Kit","addresses":[{"id":"home","location":"Here"}]}',
        run, thread_id, counter)
    return wrk.format("POST", "/profiles/", {["Content-Type"] = "application/json"}, body)
end

dofile(string.match(debug.getinfo(1, "S").source, "^@(.-)[^/]*$") .. "report.lua")
