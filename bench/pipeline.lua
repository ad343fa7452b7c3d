-- 16 pipelined GET / requests per write (wrk counts each response), with the same summary line.
local depth = 16
init = function(args)
   local r = {}
   for i = 1, depth do r[i] = wrk.format("GET", "/") end
   req = table.concat(r)
end
request = function() return req end
done = function(summary, latency, requests)
   local e = summary.errors
   io.write(string.format("RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d connect=%d read=%d write=%d status=%d timeout=%d\n",
      summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
      e.connect, e.read, e.write, e.status, e.timeout))
end
