-- GET / counting every non-2xx response (bench/lifecycle.sh); one summary line at the end.
local threads = {}
setup = function(thread) table.insert(threads, thread) end
init = function(args) non2xx = 0 end
response = function(status, headers, body)
   if status < 200 or status > 299 then non2xx = non2xx + 1 end
end
done = function(summary, latency, requests)
   local bad = 0
   for _, t in ipairs(threads) do bad = bad + t:get("non2xx") end
   local e = summary.errors
   io.write(string.format("RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d connect=%d read=%d write=%d status=%d timeout=%d non2xx=%d\n",
      summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
      e.connect, e.read, e.write, e.status, e.timeout, bad))
end
