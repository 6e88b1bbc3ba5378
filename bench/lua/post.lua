-- A POST of a body of N bytes (first script argument, default 1 MiB) to the URL's path.
--   wrk -t1 -c16 -d10s -s bench/lua/post.lua http://127.0.0.1:8000/echo -- 1048576
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "report.lua")

function init(args)
   local size = tonumber(args[1]) or 1048576
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/octet-stream"
   -- wrk.format() adds the Content-Length of the body.
   wrk.body = string.rep("x", size)
end
