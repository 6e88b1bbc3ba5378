-- HTTP/1.1 pipelining: each write carries DEPTH GETs of the URL's path (first script
-- argument, default 16); wrk counts every response, and latency is per batch.
--   wrk -t1 -c32 -d10s -s bench/lua/pipeline.lua http://127.0.0.1:8000/ -- 16
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "report.lua")

local batch = nil

function init(args)
   local depth = tonumber(args[1]) or 16
   local requests = {}
   for i = 1, depth do
      requests[i] = wrk.format()
   end
   batch = table.concat(requests)
end

function request()
   return batch
end
