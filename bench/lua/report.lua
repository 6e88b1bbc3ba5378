-- Shared by every bench script: print one machine-readable summary line when wrk is done.
-- bench/_wrk.py reads the line that starts with "BENCH "; latencies are in microseconds.
function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCH {"requests": %.0f, "duration_us": %.0f, "bytes": %.0f, '
         .. '"socket_errors": %.0f, "status_errors": %.0f, "timeouts": %.0f, '
         .. '"p50_us": %.0f, "p99_us": %.0f, "max_us": %.0f}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect + e.read + e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(99), latency.max))
end
